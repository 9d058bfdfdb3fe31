//! Silences kept in Alertmanager too (`[alerts.alertmanager]`, issue 15):
//! the id Alertmanager gave a silence the bot asked for, and the silences
//! made in Alertmanager itself, as its API lists them. `/alert silence`,
//! `/alert unsilence` and `/alert silences` are in [`super::alerts`].

use crate::domain::silences::{marked, AmOrder, AmSilence};
use crate::engine::context::Cx;
use crate::engine::effect::{Decision, Effect, Write};
use crate::error::EngineError;

/// Alertmanager made the bot's silence `silence` as `am_id`: noted on the
/// silence, or, when it was ended (or ran out) meanwhile, ended there too.
pub(crate) fn silence_made(
    cx: &Cx<'_>,
    silence: u64,
    am_id: &str,
) -> Result<Decision, EngineError> {
    let mut book = cx.view.silences()?;
    let mut writes = Vec::new();
    match book
        .silences
        .iter_mut()
        .find(|s| s.id == silence && s.active(cx.now))
    {
        Some(s) if s.am_id.as_deref() == Some(am_id) => return Ok(Decision::default()),
        Some(s) => s.am_id = Some(am_id.to_string()),
        None => {
            let order = AmOrder::Expire {
                id: am_id.to_string(),
            };
            writes.push(Write::Effect(Effect::Alertmanager(order)));
        }
    }
    // Listed as made elsewhere by a read that came first: it is ours.
    book.external.retain(|s| s.id != am_id);
    writes.push(Write::Silences(book));
    Ok(Decision {
        writes,
        ..Decision::default()
    })
}

/// The silences in force in Alertmanager now: those the bot did not make
/// are kept for `/alert silences` (written only when they changed).
pub(crate) fn alertmanager_silences(
    cx: &Cx<'_>,
    silences: &[AmSilence],
) -> Result<Decision, EngineError> {
    let mut book = cx.view.silences()?;
    let ours = |s: &AmSilence| {
        book.silences
            .iter()
            .any(|b| b.am_id.as_deref() == Some(s.id.as_str()))
            || marked(&s.comment).is_some()
    };
    let mut theirs: Vec<AmSilence> = silences
        .iter()
        .filter(|s| s.ends_at > cx.now && !ours(s))
        .cloned()
        .collect();
    theirs.sort_by(|a, b| a.ends_at.cmp(&b.ends_at).then_with(|| a.id.cmp(&b.id)));
    if theirs == book.external {
        return Ok(Decision::default());
    }
    book.external = theirs;
    Ok(Decision {
        writes: vec![Write::Silences(book)],
        ..Decision::default()
    })
}
