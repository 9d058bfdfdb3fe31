//! `GET /api/v1/tickets`: the tickets, newest first, a page at a time, with
//! the total count (the ticket API's token).
//!
//! Query parameters, each optional:
//!
//! | parameter | meaning |
//! | --- | --- |
//! | `state` | one of the ticket states; without it, every state but `closed` |
//! | `team` | a team of the config |
//! | `assignee` | a person: the tickets assigned to them |
//! | `limit` | tickets per page, 1 to 100 (25) |
//! | `page` | which page, from 1 (1) |
//! | `cursor` | instead of `page`: the `next_cursor` of the page before |
//!
//! The answer: `{"tickets":[…],"total":N,"limit":L,"page":P,"pages":M,
//! "next_page":P+1|null,"next_cursor":"OPS-7"|null}` (`page` and `pages`
//! are `null` when paging by cursor). A cursor pages through the tickets
//! that existed when the first page was read, each exactly once, even
//! while new ones open (they are newer: they come before the first page);
//! page numbers shift by the tickets opened meanwhile. The total, the
//! page and the tickets come from one snapshot of committed state, read
//! from the list's index and counts: the cost of a page does not grow with
//! the store. Bad parameters are `400` with what would be right; a page
//! past the last is `404`.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde_json::{json, Value};

use super::{bearer, err, internal, read_error, ApiError, HttpState};
use crate::domain::{TeamName, TicketId, TicketState, UserName};
use crate::engine::{messages, ListAt, ListFilter, QueryView};

/// Tickets per page unless `limit` says.
const DEFAULT_LIMIT: usize = 25;
/// The most tickets a page holds.
const MAX_LIMIT: usize = 100;

fn bad(msg: impl Into<String>) -> ApiError {
    err(StatusCode::BAD_REQUEST, msg)
}

fn whole(name: &str, v: &str, max: u64) -> Result<u64, ApiError> {
    v.trim()
        .parse::<u64>()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| {
            bad(format!(
                "`{name}` must be a whole number from 1 to {max}; got `{}`",
                crate::domain::rich::clip_plain(v, 40)
            ))
        })
}

pub(super) async fn list(
    State(s): State<HttpState>,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    bearer(s.api_token.as_ref(), &s.api_token_var, &headers)?;
    let Query(params) = query.map_err(|e| bad(format!("the query cannot be read: {e}")))?;
    let config = s.bot.engine().config().clone();
    let mut filter = ListFilter::default();
    let mut limit = DEFAULT_LIMIT;
    let mut page: Option<u64> = None;
    let mut cursor: Option<u64> = None;
    let mut seen = std::collections::HashSet::new();
    for (k, v) in &params {
        if !seen.insert(k.as_str()) {
            return Err(bad(format!("`{k}` is given twice; give it once")));
        }
        match k.as_str() {
            "state" => {
                filter.state = Some(
                    v.parse::<TicketState>()
                        .map_err(|e| bad(e.to_string()))?,
                )
            }
            "team" => {
                let team = TeamName::parse(v).map_err(|e| bad(e.to_string()))?;
                if config.org.team(&team).is_none() {
                    return Err(bad(format!(
                        "there is no team `{team}`; known teams: {}",
                        config.org.team_names()
                    )));
                }
                filter.team = Some(team);
            }
            "assignee" => {
                filter.assignee = Some(UserName::parse(v).map_err(|e| bad(e.to_string()))?)
            }
            "limit" => limit = whole("limit", v, MAX_LIMIT as u64)? as usize,
            // A page past any store (10^15 tickets) is refused as such.
            "page" => page = Some(whole("page", v, 1 << 50)?),
            "cursor" => {
                let id = TicketId::parse(v, &config.tickets.prefix)
                    .map_err(|e| bad(format!("`cursor` must be a ticket id: {e}")))?;
                cursor = Some(id.num());
            }
            other => {
                return Err(bad(format!(
                    "unknown parameter `{}`; the parameters are state, team, assignee, limit, page, cursor",
                    crate::domain::rich::clip_plain(other, 40)
                )))
            }
        }
    }
    if page.is_some() && cursor.is_some() {
        return Err(bad("give `page` or `cursor`, not both"));
    }
    let page_no = page.unwrap_or(1);
    let offset = match cursor {
        Some(_) => 0,
        None => (page_no - 1).saturating_mul(limit as u64),
    };
    // One more than the page: whether a next one exists.
    let at = ListAt {
        offset,
        limit: limit + 1,
        before: cursor,
    };
    let store = s.bot.store().map_err(read_error)?;
    let (mut tickets, total) = tokio::task::spawn_blocking(move || {
        store.snapshot(|v| v.list(&filter, &at)).and_then(|r| r)
    })
    .await
    .map_err(|e| internal(&e, "the list task failed"))?
    .map_err(|e| internal(&e, "cannot read the list"))?;
    let more = tickets.len() > limit;
    tickets.truncate(limit);
    if cursor.is_none() && page_no > 1 && tickets.is_empty() {
        return Err(err(
            StatusCode::NOT_FOUND,
            messages::list_past_end(page_no, total, "listed", limit),
        ));
    }
    let next_cursor = more
        .then(|| tickets.last().map(|t| t.id.to_string()))
        .flatten();
    let pages = total.div_ceil(limit as u64).max(1);
    let body: Vec<Value> = tickets
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<_, _>>()
        .map_err(|e| internal(&e, "cannot encode a ticket"))?;
    Ok(Json(json!({
        "tickets": body,
        "total": total,
        "limit": limit,
        "page": cursor.is_none().then_some(page_no),
        "pages": cursor.is_none().then_some(pages),
        "next_page": (cursor.is_none() && more).then_some(page_no + 1),
        "next_cursor": next_cursor,
    })))
}
