//! What the real Discord refuses, checked on every request the way Discord
//! checks it (limits on content, embeds, components, choices, modals and
//! commands), and whom a message would ping under `allowed_mentions`.

use std::collections::HashSet;

use regex::Regex;
use serde_json::{json, Value};

use super::fx;
use super::wire::Reply;

pub(super) type Check = Result<(), Reply>;

pub(super) fn check_len(path: &str, s: &str, min: usize, max: usize) -> Check {
    let n = s.chars().count();
    if n < min {
        return Err(Reply::invalid(
            path,
            "BASE_TYPE_MIN_LENGTH",
            &format!("Must be {min} or more in length."),
        ));
    }
    if n > max {
        return Err(Reply::invalid(
            path,
            "BASE_TYPE_MAX_LENGTH",
            &format!("Must be {max} or fewer in length."),
        ));
    }
    Ok(())
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_default()
}

/// The nonce of a message post (a string or a number), of 25 characters at
/// most.
pub(super) fn nonce(body: &Value) -> Result<Option<String>, Reply> {
    let nonce = match &body["nonce"] {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    check_len("nonce", nonce.as_deref().unwrap_or(""), 0, 25)?;
    Ok(nonce)
}

/// An answer of type `kind` to an interaction of type `ix_kind`: a type that
/// interaction may be answered with, and its `data` within the limits.
pub(super) fn validate_response(ix_kind: u8, kind: u64, data: &Value) -> Check {
    let allowed: &[u64] = match ix_kind {
        fx::APPLICATION_COMMAND => &[4, 5, 9],
        fx::MESSAGE_COMPONENT => &[4, 5, 6, 7, 9],
        fx::AUTOCOMPLETE => &[8],
        fx::MODAL_SUBMIT => &[4, 5, 6, 7],
        _ => &[],
    };
    if !allowed.contains(&kind) {
        return Err(Reply::invalid(
            "type",
            "INTERACTION_RESPONSE_TYPE_INVALID",
            &format!(
                "Interaction response type {kind} is not valid for interaction type {ix_kind}"
            ),
        ));
    }
    match kind {
        4 => validate_message(data, false, true),
        7 => validate_message(data, false, false),
        8 => validate_choices(data),
        9 => validate_modal(data),
        _ => Ok(()),
    }
}

/// A message body (create, edit, interaction reply, follow-up): not empty
/// (when `need_something`), content ≤ 2000 characters, ≤ 10 embeds within
/// their limits (6000 characters in all), ≤ 5 action rows of ≤ 5 components,
/// custom ids unique and ≤ 100 characters, labels ≤ 80.
pub(super) fn validate_message(body: &Value, has_files: bool, need_something: bool) -> Check {
    let content = text(body, "content");
    check_len("content", content, 0, 2000)?;
    let embeds = body["embeds"].as_array().cloned().unwrap_or_default();
    let components = body["components"].as_array().cloned().unwrap_or_default();
    let stickers = body["sticker_ids"]
        .as_array()
        .is_some_and(|s| !s.is_empty());
    if need_something
        && content.is_empty()
        && embeds.is_empty()
        && components.is_empty()
        && !has_files
        && !stickers
        && body["poll"].is_null()
    {
        return Err(Reply::error(400, 50006, "Cannot send an empty message"));
    }
    if embeds.len() > 10 {
        return Err(Reply::invalid(
            "embeds",
            "BASE_TYPE_MAX_LENGTH",
            "Must be 10 or fewer in length.",
        ));
    }
    let mut total = 0;
    for (i, e) in embeds.iter().enumerate() {
        let p = |k: &str| format!("embeds.{i}.{k}");
        for (key, max) in [("title", 256), ("description", 4096)] {
            check_len(&p(key), text(e, key), 0, max)?;
            total += text(e, key).chars().count();
        }
        check_len(&p("footer.text"), text(&e["footer"], "text"), 0, 2048)?;
        check_len(&p("author.name"), text(&e["author"], "name"), 0, 256)?;
        total +=
            text(&e["footer"], "text").chars().count() + text(&e["author"], "name").chars().count();
        let fields = e["fields"].as_array().cloned().unwrap_or_default();
        if fields.len() > 25 {
            return Err(Reply::invalid(
                &p("fields"),
                "BASE_TYPE_MAX_LENGTH",
                "Must be 25 or fewer in length.",
            ));
        }
        for (j, f) in fields.iter().enumerate() {
            check_len(&p(&format!("fields.{j}.name")), text(f, "name"), 1, 256)?;
            check_len(&p(&format!("fields.{j}.value")), text(f, "value"), 1, 1024)?;
            total += text(f, "name").chars().count() + text(f, "value").chars().count();
        }
    }
    if total > 6000 {
        return Err(Reply::invalid(
            "embeds",
            "MAX_EMBED_SIZE_EXCEEDED",
            "Embed size exceeds maximum size of 6000",
        ));
    }
    validate_components(&components)
}

fn validate_components(rows: &[Value]) -> Check {
    if rows.len() > 5 {
        return Err(Reply::invalid(
            "components",
            "BASE_TYPE_MAX_LENGTH",
            "Must be 5 or fewer in length.",
        ));
    }
    let mut ids = HashSet::new();
    for (i, row) in rows.iter().enumerate() {
        let inner = row["components"].as_array().cloned().unwrap_or_default();
        if row["type"] != 1 || inner.is_empty() || inner.len() > 5 {
            return Err(Reply::invalid(
                &format!("components.{i}"),
                "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                "An action row needs 1 to 5 components",
            ));
        }
        for (j, c) in inner.iter().enumerate() {
            let p = format!("components.{i}.components.{j}");
            let link = c["type"] == 2 && c["style"] == 5;
            if link {
                if text(c, "url").is_empty() {
                    return Err(Reply::invalid(
                        &format!("{p}.url"),
                        "BASE_TYPE_REQUIRED",
                        "This field is required",
                    ));
                }
                link_url(&format!("{p}.url"), text(c, "url"))?;
            } else {
                let id = text(c, "custom_id");
                check_len(&format!("{p}.custom_id"), id, 1, 100)?;
                if !ids.insert(id.to_string()) {
                    return Err(Reply::invalid(
                        &format!("{p}.custom_id"),
                        "COMPONENT_CUSTOM_ID_DUPLICATED",
                        "Component custom id cannot be duplicated",
                    ));
                }
            }
            if c["type"] == 2 {
                check_len(&format!("{p}.label"), text(c, "label"), 0, 80)?;
            }
        }
    }
    Ok(())
}

/// A link button's URL as Discord takes it: at most 512 characters, scheme
/// `http`, `https` or `discord`, and well formed (a host, no spaces).
fn link_url(path: &str, url: &str) -> Check {
    check_len(path, url, 1, 512)?;
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(Reply::invalid(
            path,
            "URL_TYPE_INVALID_URL",
            "Not a well formed URL.",
        ));
    };
    if !["http", "https", "discord"].contains(&scheme.to_ascii_lowercase().as_str()) {
        return Err(Reply::invalid(
            path,
            "URL_TYPE_INVALID_SCHEME",
            &format!(
                "Scheme \"{scheme}\" is not supported. Scheme must be one of ('http', 'https', 'discord')."
            ),
        ));
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Reply::invalid(
            path,
            "URL_TYPE_INVALID_URL",
            "Not a well formed URL.",
        ));
    }
    Ok(())
}

fn validate_choices(data: &Value) -> Check {
    let choices = data["choices"].as_array().cloned().unwrap_or_default();
    if choices.len() > 25 {
        return Err(Reply::invalid(
            "data.choices",
            "BASE_TYPE_MAX_LENGTH",
            "Must be 25 or fewer in length.",
        ));
    }
    for (i, c) in choices.iter().enumerate() {
        check_len(&format!("data.choices.{i}.name"), text(c, "name"), 1, 100)?;
        if let Some(v) = c["value"].as_str() {
            check_len(&format!("data.choices.{i}.value"), v, 1, 100)?;
        }
    }
    Ok(())
}

fn validate_modal(data: &Value) -> Check {
    check_len("data.title", text(data, "title"), 1, 45)?;
    check_len("data.custom_id", text(data, "custom_id"), 1, 100)?;
    let rows = data["components"].as_array().cloned().unwrap_or_default();
    if rows.is_empty() || rows.len() > 5 {
        return Err(Reply::invalid(
            "data.components",
            "BASE_TYPE_BAD_LENGTH",
            "Must be between 1 and 5 in length.",
        ));
    }
    for (i, row) in rows.iter().enumerate() {
        let inner = row["components"].as_array().cloned().unwrap_or_default();
        if inner.len() != 1 || inner[0]["type"] != 4 {
            return Err(Reply::invalid(
                &format!("data.components.{i}"),
                "COMPONENT_TYPE_INVALID",
                "A modal row holds one text input",
            ));
        }
        check_len(
            &format!("data.components.{i}.components.0.label"),
            text(&inner[0], "label"),
            1,
            45,
        )?;
        check_len(
            &format!("data.components.{i}.components.0.custom_id"),
            text(&inner[0], "custom_id"),
            1,
            100,
        )?;
    }
    Ok(())
}

/// A command (or option) name: 1 to 32 of lowercase letters, digits, `-`, `_`.
fn valid_name(name: &str) -> bool {
    let n = name.chars().count();
    (1..=32).contains(&n)
        && name.chars().all(|c| {
            c == '-' || c == '_' || c.is_numeric() || (c.is_alphabetic() && !c.is_uppercase())
        })
}

pub(super) fn validate_command(c: &Value, path: &str) -> Check {
    let kind = c["type"].as_u64().unwrap_or(1);
    let name = text(c, "name");
    if kind == 1 && !valid_name(name) {
        return Err(Reply::invalid(
            &format!("{path}.name"),
            "APPLICATION_COMMAND_INVALID_NAME",
            &format!("Command name is invalid: {name:?}"),
        ));
    }
    check_len(&format!("{path}.name"), name, 1, 32)?;
    if kind == 1 {
        check_len(
            &format!("{path}.description"),
            text(c, "description"),
            1,
            100,
        )?;
    } else if !text(c, "description").is_empty() {
        return Err(Reply::invalid(
            &format!("{path}.description"),
            "APPLICATION_COMMAND_CONTEXT_MENU_DESCRIPTION",
            "Context menu commands cannot have description",
        ));
    }
    let options = c["options"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    validate_nesting(options, &format!("{path}.options"), Level::Command)?;
    validate_options(options, &format!("{path}.options"))
}

/// Where a list of options sits: on a command, in a subcommand group, in a
/// subcommand.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Command,
    Group,
    Sub,
}

/// Discord's rule on subcommands (type 1) and groups (type 2): at one level
/// they are mutually exclusive with every other option type (a command with
/// subcommands cannot be invoked itself, so it takes no options of its
/// own); a group holds only subcommands, a subcommand only plain options.
fn validate_nesting(options: &[Value], path: &str, level: Level) -> Check {
    let kind = |o: &Value| o["type"].as_u64().unwrap_or(0);
    let subs = options.iter().filter(|o| matches!(kind(o), 1 | 2)).count();
    if subs > 0 && subs < options.len() {
        return Err(Reply::invalid(
            path,
            "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
            "Sub-command and sub-command group option types are mutually exclusive to all other types",
        ));
    }
    for (i, o) in options.iter().enumerate() {
        let allowed = match (level, kind(o)) {
            (Level::Command, _) => true,
            (Level::Group, k) => k == 1,
            (Level::Sub, k) => k != 1 && k != 2,
        };
        if !allowed {
            return Err(Reply::invalid(
                &format!("{path}.{i}.type"),
                "APPLICATION_COMMAND_OPTION_TYPE_INVALID",
                "A sub-command group holds only sub-commands; a sub-command holds no sub-commands",
            ));
        }
        let inner = o["options"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        let p = format!("{path}.{i}.options");
        match kind(o) {
            1 => validate_nesting(inner, &p, Level::Sub)?,
            2 => validate_nesting(inner, &p, Level::Group)?,
            _ => {}
        }
    }
    Ok(())
}

fn validate_options(options: &[Value], path: &str) -> Check {
    if options.len() > 25 {
        return Err(Reply::invalid(
            path,
            "BASE_TYPE_MAX_LENGTH",
            "Must be 25 or fewer in length.",
        ));
    }
    let mut seen_optional = false;
    let mut names = HashSet::new();
    for (i, o) in options.iter().enumerate() {
        let p = format!("{path}.{i}");
        let name = text(o, "name");
        if !valid_name(name) {
            return Err(Reply::invalid(
                &format!("{p}.name"),
                "APPLICATION_COMMAND_INVALID_NAME",
                &format!("Option name is invalid: {name:?}"),
            ));
        }
        if !names.insert(name) {
            return Err(Reply::invalid(
                &format!("{p}.name"),
                "APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS",
                "Option names must be unique",
            ));
        }
        check_len(&format!("{p}.description"), text(o, "description"), 1, 100)?;
        let kind = o["type"].as_u64().unwrap_or(0);
        if kind == 1 || kind == 2 {
            validate_options(
                o["options"].as_array().map(Vec::as_slice).unwrap_or(&[]),
                &format!("{p}.options"),
            )?;
            continue;
        }
        if o["required"] == true {
            if seen_optional {
                return Err(Reply::invalid(
                    &p,
                    "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                    "Required options must be placed before non-required options",
                ));
            }
        } else {
            seen_optional = true;
        }
        let choices = o["choices"].as_array().map_or(0, Vec::len);
        if choices > 25 {
            return Err(Reply::invalid(
                &format!("{p}.choices"),
                "BASE_TYPE_MAX_LENGTH",
                "Must be 25 or fewer in length.",
            ));
        }
        if choices > 0 && o["autocomplete"] == true {
            return Err(Reply::invalid(
                &format!("{p}.autocomplete"),
                "APPLICATION_COMMAND_OPTION_AUTOCOMPLETE_WITH_CHOICES",
                "Autocomplete cannot be enabled on options that have choices",
            ));
        }
    }
    Ok(())
}

/// Who Discord would notify for `content` under `allowed_mentions` (absent:
/// everything mentioned).
pub(super) fn pings(content: &str, allowed: Option<&Value>) -> Value {
    let users_re = Regex::new(r"<@!?(\d+)>").unwrap();
    let roles_re = Regex::new(r"<@&(\d+)>").unwrap();
    let users: Vec<String> = users_re
        .captures_iter(content)
        .map(|c| c[1].to_string())
        .collect();
    let roles: Vec<String> = roles_re
        .captures_iter(content)
        .map(|c| c[1].to_string())
        .collect();
    let everyone = content.contains("@everyone") || content.contains("@here");
    let ids = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| {
                        x.as_str()
                            .map(str::to_string)
                            .or_else(|| x.as_u64().map(|n| n.to_string()))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let (users, roles, everyone) = match allowed.filter(|a| a.is_object()) {
        None => (users, roles, everyone),
        Some(a) => {
            let parse: Vec<&str> = a["parse"]
                .as_array()
                .map(|p| p.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let allow_users = ids(&a["users"]);
            let allow_roles = ids(&a["roles"]);
            (
                users
                    .into_iter()
                    .filter(|u| parse.contains(&"users") || allow_users.contains(u))
                    .collect(),
                roles
                    .into_iter()
                    .filter(|r| parse.contains(&"roles") || allow_roles.contains(r))
                    .collect(),
                everyone && parse.contains(&"everyone"),
            )
        }
    };
    let dedup = |mut v: Vec<String>| {
        let mut seen = HashSet::new();
        v.retain(|x| seen.insert(x.clone()));
        v
    };
    json!({"everyone": everyone, "users": dedup(users), "roles": dedup(roles)})
}
