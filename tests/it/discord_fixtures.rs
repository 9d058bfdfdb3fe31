//! Discord payloads as `serde_json::Value`, built by role: users, members, the
//! READY dispatch, interactions (slash command, autocomplete, button, select,
//! modal submit) and messages.
//!
//! serenity drops a gateway dispatch it cannot parse without a word (it becomes
//! `Event::Unknown`, logged at DEBUG), so a wrong fixture would show up as a
//! handler that never runs. Every builder here is checked against serenity's own
//! model types in the tests at the end of this file, and [`check_dispatch`]
//! (which `FakeDiscord::dispatch` calls) refuses a payload serenity would drop.
//!
//! Ids are `u64` in the signatures and strings on the wire, as Discord sends
//! them. The default ids are as large as real snowflakes (above 2^53), so code
//! that squeezes an id through an `f64` or an `i32` breaks here too.

// A kit for tests still to be written: not every builder is used yet.
#![allow(dead_code)]

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{json, Map, Value};

/// The application id; Discord gives a bot user the id of its application.
pub const APP_ID: u64 = 1_180_000_000_000_000_001;
pub const BOT_ID: u64 = APP_ID;
pub const BOT_NAME: &str = "opsbot";
pub const GUILD_ID: u64 = 1_180_000_000_000_000_100;
pub const CHANNEL_ID: u64 = 1_180_000_000_000_000_200;
pub const USER_ID: u64 = 1_180_000_000_000_000_300;
pub const USER_NAME: &str = "alice";
/// `attachment_size_limit` of an interaction (serenity requires the field).
pub const ATTACHMENT_SIZE_LIMIT: u32 = 10 * 1024 * 1024;

/// Interaction types, as in `"type"` of an interaction.
pub const APPLICATION_COMMAND: u8 = 2;
pub const MESSAGE_COMPONENT: u8 = 3;
pub const AUTOCOMPLETE: u8 = 4;
pub const MODAL_SUBMIT: u8 = 5;

/// Now, as Discord writes timestamps (RFC 3339, milliseconds, UTC).
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A fresh snowflake-sized id, unique in this test process.
pub fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1_300_000_000_000_000_000);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The id Discord would give the command `name` of our application; the fake
/// answers a command registration with the same ids, so the two agree.
pub fn command_id(name: &str) -> u64 {
    let mut h = DefaultHasher::new();
    name.hash(&mut h);
    1_200_000_000_000_000_000 + h.finish() % 1_000_000_000_000
}

/// A (human) user.
pub fn user(id: u64, name: &str) -> Value {
    json!({
        "id": id.to_string(),
        "username": name,
        "discriminator": "0",
        "global_name": name,
        "avatar": null,
        "bot": false,
    })
}

/// A bot user.
pub fn bot_user(id: u64, name: &str) -> Value {
    let mut u = user(id, name);
    u["bot"] = json!(true);
    u["global_name"] = Value::Null;
    u
}

/// A guild member, as in `member` of a guild interaction.
pub fn member(user_id: u64, name: &str, roles: &[u64]) -> Value {
    json!({
        "user": user(user_id, name),
        "nick": null,
        "avatar": null,
        "roles": ids(roles),
        "joined_at": "2024-01-02T03:04:05.000Z",
        "premium_since": null,
        "deaf": false,
        "mute": false,
        "flags": 0,
        "pending": false,
    })
}

/// A guild role (`colors` is required by serenity: without it a whole
/// GUILD_CREATE is dropped).
pub fn role(id: u64, name: &str) -> Value {
    json!({
        "id": id.to_string(),
        "name": name,
        "color": 0,
        "colors": {"primary_color": 0, "secondary_color": null, "tertiary_color": null},
        "hoist": false,
        "managed": false,
        "mentionable": true,
        "permissions": "0",
        "position": 1,
        "icon": null,
        "unicode_emoji": null,
        "flags": 0,
    })
}

/// The `d` of the READY dispatch for bot `bot_id` of application `app_id`,
/// on a gateway at `ws://127.0.0.1:{port}/gateway`, in no guild yet.
pub fn ready(app_id: u64, bot_id: u64, port: u16) -> Value {
    json!({
        "v": 10,
        "user": bot_user(bot_id, BOT_NAME),
        "guilds": [],
        "session_id": format!("fake-session-{}", next_id()),
        "resume_gateway_url": format!("ws://127.0.0.1:{port}/gateway"),
        "shard": [0, 1],
        "application": {"id": app_id.to_string(), "flags": 0},
    })
}

/// A message as the REST API returns it (and as MESSAGE_CREATE carries it,
/// less `guild_id` and `member`). `author` is a [`user`] or [`bot_user`].
pub fn message(id: u64, channel_id: u64, author: Value, content: &str) -> Value {
    json!({
        "id": id.to_string(),
        "channel_id": channel_id.to_string(),
        "author": author,
        "content": content,
        "timestamp": now(),
        "edited_timestamp": null,
        "tts": false,
        "mention_everyone": false,
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": [],
        "components": [],
        "pinned": false,
        "type": 0,
        "flags": 0,
    })
}

/// A user option for [`slash`], with the user in `resolved` as Discord sends
/// it (without it `CommandData::options()` says `Unresolved`).
pub fn user_option(id: u64, name: &str) -> Value {
    json!({"type": 6, "value": id.to_string(),
           "resolved": {"users": {id.to_string(): user(id, name)}}})
}

/// A channel option for [`slash`] (a text channel), resolved.
pub fn channel_option(id: u64, name: &str) -> Value {
    json!({"type": 7, "value": id.to_string(),
           "resolved": {"channels": {id.to_string():
               {"id": id.to_string(), "name": name, "type": 0, "permissions": "0"}}}})
}

/// A role option for [`slash`], resolved.
pub fn role_option(id: u64, name: &str) -> Value {
    json!({"type": 8, "value": id.to_string(),
           "resolved": {"roles": {id.to_string(): role(id, name)}}})
}

/// A slash command (interaction type 2) by a guild member.
///
/// `path` is the command as typed: `["deploy"]`, `["ticket", "open"]` (a
/// subcommand, option type 1) or `["ticket", "admin", "close"]` (a subcommand
/// group, type 2, holding a subcommand). `options` are the options of the last
/// part of the path; a value's option type comes from its JSON type (string 3,
/// integer 4, boolean 5, float 10); use [`user_option`], [`channel_option`] or
/// [`role_option`] for those types, or pass `{"type": N, "value": …}` yourself.
#[allow(clippy::too_many_arguments)]
pub fn slash(
    interaction_id: u64,
    token: &str,
    channel_id: u64,
    guild_id: u64,
    user_id: u64,
    user_name: &str,
    roles: &[u64],
    path: &[&str],
    options: &[(&str, Value)],
) -> Value {
    let (data, _) = command_data(path, options, None);
    interaction(
        APPLICATION_COMMAND,
        interaction_id,
        token,
        channel_id,
        guild_id,
        member(user_id, user_name, roles),
        data,
    )
}

/// An autocomplete request (interaction type 4): like [`slash`], with the
/// option named `focused` being typed (Discord sends what was typed so far as a
/// string, whatever the option's type, and marks it `"focused": true`).
#[allow(clippy::too_many_arguments)]
pub fn autocomplete(
    interaction_id: u64,
    token: &str,
    channel_id: u64,
    guild_id: u64,
    user_id: u64,
    user_name: &str,
    roles: &[u64],
    path: &[&str],
    options: &[(&str, Value)],
    focused: &str,
) -> Value {
    let (data, found) = command_data(path, options, Some(focused));
    assert!(
        found,
        "autocomplete: no option named {focused:?} in {options:?}"
    );
    interaction(
        AUTOCOMPLETE,
        interaction_id,
        token,
        channel_id,
        guild_id,
        member(user_id, user_name, roles),
        data,
    )
}

/// A click on button `custom_id` of `message` (a [`message`] value; interaction
/// type 3) by [`USER_NAME`] in [`GUILD_ID`], in the message's channel. The
/// interaction gets a fresh id and the token `button-{id}`; change them with
/// [`with_ids`], the user with [`with_member`].
pub fn button(custom_id: &str, message: &Value) -> Value {
    component(
        custom_id,
        json!({"custom_id": custom_id, "component_type": 2}),
        message,
    )
}

/// A choice in string select menu `custom_id` of `message` (interaction type 3,
/// component type 3), like [`button`].
pub fn select(custom_id: &str, values: &[&str], message: &Value) -> Value {
    component(
        custom_id,
        json!({"custom_id": custom_id, "component_type": 3, "values": values}),
        message,
    )
}

/// A submitted modal `custom_id` (interaction type 5): `fields` are
/// (input `custom_id`, value), each in its own action row as Discord sends
/// them. By [`USER_NAME`] in [`CHANNEL_ID`] of [`GUILD_ID`]; a fresh id and the
/// token `modal-{id}` (see [`with_ids`], [`with_member`], [`in_channel`]).
pub fn modal_submit(custom_id: &str, fields: &[(&str, &str)]) -> Value {
    let rows: Vec<Value> = fields
        .iter()
        .map(|(id, value)| {
            json!({"type": 1, "components": [{"type": 4, "custom_id": id, "value": value}]})
        })
        .collect();
    let id = next_id();
    interaction(
        MODAL_SUBMIT,
        id,
        &format!("modal-{id}"),
        CHANNEL_ID,
        GUILD_ID,
        member(USER_ID, USER_NAME, &[]),
        json!({"custom_id": custom_id, "components": rows}),
    )
}

/// `interaction` with another id and token.
pub fn with_ids(mut interaction: Value, id: u64, token: &str) -> Value {
    interaction["id"] = json!(id.to_string());
    interaction["token"] = json!(token);
    interaction
}

/// `interaction` by another guild member.
pub fn with_member(mut interaction: Value, user_id: u64, name: &str, roles: &[u64]) -> Value {
    interaction["member"] = member(user_id, name, roles);
    interaction
}

/// `interaction` in another channel.
pub fn in_channel(mut interaction: Value, channel_id: u64) -> Value {
    interaction["channel_id"] = json!(channel_id.to_string());
    interaction["channel"]["id"] = json!(channel_id.to_string());
    interaction
}

/// Whether serenity turns the dispatch `kind` with payload `d` into a real event
/// (and not the `Event::Unknown` it drops silently); the error says why not.
pub fn check_dispatch(kind: &str, d: &Value) -> Result<(), String> {
    use serenity::model::event::{Event, GatewayEvent};
    let frame = json!({"op": 0, "s": 1, "t": kind, "d": d});
    match serde_json::from_value::<GatewayEvent>(frame) {
        Err(e) => Err(format!("the {kind} frame does not parse: {e}")),
        Ok(GatewayEvent::Dispatch(_, Event::Unknown(_))) => Err(format!(
            "serenity would drop this {kind} dispatch silently (Event::Unknown){}",
            typed_error(kind, d)
        )),
        Ok(GatewayEvent::Dispatch(..)) => Ok(()),
        Ok(other) => Err(format!("not a dispatch: {other:?}")),
    }
}

/// Why `d` does not parse as the type serenity expects for `kind`, if known.
fn typed_error(kind: &str, d: &Value) -> String {
    use serenity::all::{Interaction, Message};
    use serenity::model::gateway::Ready;
    let d = d.clone();
    let err = match kind {
        "INTERACTION_CREATE" => serde_json::from_value::<Interaction>(d).err(),
        "READY" => serde_json::from_value::<Ready>(d).err(),
        "MESSAGE_CREATE" => serde_json::from_value::<Message>(d).err(),
        _ => None,
    };
    err.map(|e| format!(": {e}")).unwrap_or_default()
}

fn ids(ids: &[u64]) -> Vec<String> {
    ids.iter().map(u64::to_string).collect()
}

fn interaction(
    kind: u8,
    id: u64,
    token: &str,
    channel_id: u64,
    guild_id: u64,
    member: Value,
    data: Value,
) -> Value {
    json!({
        "id": id.to_string(),
        "application_id": APP_ID.to_string(),
        "type": kind,
        "token": token,
        "version": 1,
        "channel_id": channel_id.to_string(),
        "channel": {"id": channel_id.to_string(), "type": 0},
        "guild_id": guild_id.to_string(),
        "member": member,
        "locale": "en-US",
        "guild_locale": "en-US",
        "entitlements": [],
        "authorizing_integration_owners": {"0": guild_id.to_string()},
        "context": 0,
        "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
        "data": data,
    })
}

fn component(custom_id: &str, data: Value, message: &Value) -> Value {
    let channel_id = message["channel_id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("a message with a channel_id");
    let id = next_id();
    let kind = if data["component_type"] == 2 {
        "button"
    } else {
        "select"
    };
    let mut v = interaction(
        MESSAGE_COMPONENT,
        id,
        &format!("{kind}-{id}"),
        channel_id,
        GUILD_ID,
        member(USER_ID, USER_NAME, &[]),
        data,
    );
    assert!(!custom_id.is_empty(), "a component needs a custom_id");
    v["message"] = message.clone();
    v
}

/// `data` of a command interaction, and whether the `focused` option was found.
fn command_data(path: &[&str], options: &[(&str, Value)], focused: Option<&str>) -> (Value, bool) {
    assert!(
        (1..=3).contains(&path.len()),
        "a command path is a command, a subcommand and a group at most: {path:?}"
    );
    let mut resolved = Map::new();
    let mut found = false;
    let mut opts = Vec::new();
    for (name, value) in options {
        let mut o = option(name, value);
        if let Some(Value::Object(r)) = o.as_object_mut().and_then(|m| m.remove("resolved")) {
            for (kind, entries) in r {
                let slot = resolved.entry(kind).or_insert_with(|| json!({}));
                if let (Some(slot), Value::Object(entries)) = (slot.as_object_mut(), entries) {
                    slot.extend(entries);
                }
            }
        }
        if focused == Some(*name) {
            found = true;
            o["focused"] = json!(true);
            o["value"] = match &o["value"] {
                Value::String(s) => json!(s),
                other => json!(other.to_string()),
            };
        }
        opts.push(o);
    }
    let opts = match path {
        [_] => opts,
        [_, sub] => vec![json!({"name": sub, "type": 1, "options": opts})],
        [_, group, sub] => vec![json!({"name": group, "type": 2, "options": [
            {"name": sub, "type": 1, "options": opts}
        ]})],
        _ => unreachable!(),
    };
    let mut data = json!({
        "id": command_id(path[0]).to_string(),
        "name": path[0],
        "type": 1,
        "options": opts,
    });
    if !resolved.is_empty() {
        data["resolved"] = Value::Object(resolved);
    }
    (data, found)
}

/// One command option `name` with `value` (see [`slash`] for the types).
fn option(name: &str, value: &Value) -> Value {
    if value.get("type").is_some() {
        let mut o = value.clone();
        o["name"] = json!(name);
        return o;
    }
    let kind = match value {
        Value::String(_) => 3,
        Value::Bool(_) => 5,
        Value::Number(n) if n.is_i64() || n.is_u64() => 4,
        Value::Number(_) => 10,
        other => panic!(
            "option {name}: cannot tell the option type of {other}; \
             use user_option/channel_option/role_option or {{\"type\": N, \"value\": …}}"
        ),
    };
    json!({"name": name, "type": kind, "value": value})
}

#[cfg(test)]
mod tests {
    use super::*;
    use serenity::all::{
        ActionRowComponent, CommandDataOptionValue, CommandOptionType,
        ComponentInteractionDataKind, Interaction, Member, Message, ResolvedValue, User,
    };
    use serenity::model::gateway::Ready;

    fn parse_interaction(v: &Value) -> Interaction {
        check_dispatch("INTERACTION_CREATE", v).unwrap();
        serde_json::from_value(v.clone()).unwrap()
    }

    #[test]
    fn user_and_member_parse() {
        let u: User = serde_json::from_value(user(USER_ID, "alice")).unwrap();
        assert_eq!(u.id.get(), USER_ID);
        assert_eq!(u.name, "alice");
        assert!(!u.bot);
        assert_eq!(u.discriminator, None);
        let b: User = serde_json::from_value(bot_user(BOT_ID, "opsbot")).unwrap();
        assert!(b.bot);
        let m: Member = serde_json::from_value(member(USER_ID, "alice", &[7, 8])).unwrap();
        assert_eq!(m.user.id.get(), USER_ID);
        let roles: Vec<u64> = m.roles.iter().map(|r| r.get()).collect();
        assert_eq!(roles, vec![7, 8]);
        let r: serenity::all::Role = serde_json::from_value(role(9, "oncall")).unwrap();
        assert_eq!((r.id.get(), r.name.as_str()), (9, "oncall"));
    }

    #[test]
    fn ready_parses_as_a_dispatch() {
        let d = ready(APP_ID, BOT_ID, 4321);
        check_dispatch("READY", &d).unwrap();
        let r: Ready = serde_json::from_value(d).unwrap();
        assert_eq!(r.application.id.get(), APP_ID);
        assert_eq!(r.user.id.get(), BOT_ID);
        assert_eq!(r.user.name, BOT_NAME);
        assert!(r.user.bot);
        assert_eq!(r.resume_gateway_url, "ws://127.0.0.1:4321/gateway");
        assert_eq!(r.version, 10);
    }

    #[test]
    fn slash_with_top_level_options() {
        let v = slash(
            77,
            "tok-77",
            CHANNEL_ID,
            GUILD_ID,
            USER_ID,
            "alice",
            &[55],
            &["deploy"],
            &[
                ("env", json!("staging")),
                ("replicas", json!(3)),
                ("force", json!(true)),
                ("ratio", json!(0.5)),
            ],
        );
        let Interaction::Command(c) = parse_interaction(&v) else {
            panic!("not a command: {v}")
        };
        assert_eq!(c.id.get(), 77);
        assert_eq!(c.token, "tok-77");
        assert_eq!(c.application_id.get(), APP_ID);
        assert_eq!(c.channel_id.get(), CHANNEL_ID);
        assert_eq!(c.guild_id.map(|g| g.get()), Some(GUILD_ID));
        // serenity copies member.user into user.
        assert_eq!(c.user.id.get(), USER_ID);
        assert_eq!(c.user.name, "alice");
        let m = c.member.as_ref().unwrap();
        assert_eq!(
            m.roles.iter().map(|r| r.get()).collect::<Vec<_>>(),
            vec![55]
        );
        assert_eq!(c.data.name, "deploy");
        assert_eq!(c.data.id.get(), command_id("deploy"));
        let got: Vec<(&str, &CommandDataOptionValue)> = c
            .data
            .options
            .iter()
            .map(|o| (o.name.as_str(), &o.value))
            .collect();
        assert_eq!(
            got,
            vec![
                ("env", &CommandDataOptionValue::String("staging".into())),
                ("replicas", &CommandDataOptionValue::Integer(3)),
                ("force", &CommandDataOptionValue::Boolean(true)),
                ("ratio", &CommandDataOptionValue::Number(0.5)),
            ]
        );
    }

    #[test]
    fn slash_with_a_subcommand_and_a_group() {
        let v = slash(
            78,
            "tok-78",
            CHANNEL_ID,
            GUILD_ID,
            USER_ID,
            "alice",
            &[],
            &["ticket", "open"],
            &[("title", json!("disk full on db-1"))],
        );
        let Interaction::Command(c) = parse_interaction(&v) else {
            panic!("not a command")
        };
        assert_eq!(c.data.name, "ticket");
        assert_eq!(c.data.options.len(), 1);
        let sub = &c.data.options[0];
        assert_eq!(sub.name, "open");
        assert_eq!(sub.kind(), CommandOptionType::SubCommand);
        let CommandDataOptionValue::SubCommand(inner) = &sub.value else {
            panic!("not a subcommand: {:?}", sub.value)
        };
        assert_eq!(inner[0].name, "title");
        assert_eq!(
            inner[0].value,
            CommandDataOptionValue::String("disk full on db-1".into())
        );

        // A subcommand without options still needs `"options": []`.
        let v = slash(
            79,
            "t",
            CHANNEL_ID,
            GUILD_ID,
            USER_ID,
            "alice",
            &[],
            &["ticket", "admin", "purge"],
            &[],
        );
        let Interaction::Command(c) = parse_interaction(&v) else {
            panic!("not a command")
        };
        let group = &c.data.options[0];
        assert_eq!(
            (group.name.as_str(), group.kind()),
            ("admin", CommandOptionType::SubCommandGroup)
        );
        let CommandDataOptionValue::SubCommandGroup(subs) = &group.value else {
            panic!("not a group")
        };
        assert_eq!(subs[0].name, "purge");
        assert_eq!(subs[0].value, CommandDataOptionValue::SubCommand(vec![]));
    }

    #[test]
    fn slash_with_resolved_user_channel_and_role() {
        let v = slash(
            80,
            "t",
            CHANNEL_ID,
            GUILD_ID,
            USER_ID,
            "alice",
            &[],
            &["page"],
            &[
                ("who", user_option(42, "bob")),
                ("where", channel_option(43, "alerts")),
                ("team", role_option(44, "sre")),
            ],
        );
        let Interaction::Command(c) = parse_interaction(&v) else {
            panic!("not a command")
        };
        let opts = c.data.options();
        match &opts[0].value {
            ResolvedValue::User(u, _) => assert_eq!((u.id.get(), u.name.as_str()), (42, "bob")),
            other => panic!("user option: {other:?}"),
        }
        match &opts[1].value {
            ResolvedValue::Channel(ch) => {
                assert_eq!((ch.id.get(), ch.name.as_deref()), (43, Some("alerts")))
            }
            other => panic!("channel option: {other:?}"),
        }
        match &opts[2].value {
            ResolvedValue::Role(r) => assert_eq!((r.id.get(), r.name.as_str()), (44, "sre")),
            other => panic!("role option: {other:?}"),
        }
    }

    #[test]
    fn autocomplete_marks_the_focused_option() {
        let v = autocomplete(
            81,
            "tok-81",
            CHANNEL_ID,
            GUILD_ID,
            USER_ID,
            "alice",
            &[],
            &["deploy", "service"],
            &[("env", json!("prod")), ("name", json!("pay"))],
            "name",
        );
        let Interaction::Autocomplete(c) = parse_interaction(&v) else {
            panic!("not an autocomplete: {v}")
        };
        assert_eq!(c.id.get(), 81);
        let focused = c.data.autocomplete().expect("a focused option");
        assert_eq!((focused.name, focused.value), ("name", "pay"));
        assert_eq!(focused.kind, CommandOptionType::String);

        // A focused integer option comes as the text typed so far.
        let v = autocomplete(
            82,
            "t",
            CHANNEL_ID,
            GUILD_ID,
            USER_ID,
            "alice",
            &[],
            &["scale"],
            &[("replicas", json!(12))],
            "replicas",
        );
        let Interaction::Autocomplete(c) = parse_interaction(&v) else {
            panic!("not an autocomplete")
        };
        let focused = c.data.autocomplete().unwrap();
        assert_eq!(
            (focused.kind, focused.value),
            (CommandOptionType::Integer, "12")
        );
    }

    #[test]
    fn button_and_select_carry_their_message() {
        let msg = message(90, CHANNEL_ID, bot_user(BOT_ID, BOT_NAME), "Deploy?");
        let v = button("deploy:yes", &msg);
        let Interaction::Component(c) = parse_interaction(&v) else {
            panic!("not a component: {v}")
        };
        assert_eq!(c.data.custom_id, "deploy:yes");
        assert!(matches!(c.data.kind, ComponentInteractionDataKind::Button));
        assert_eq!(c.message.id.get(), 90);
        assert_eq!(c.message.content, "Deploy?");
        assert_eq!(c.channel_id.get(), CHANNEL_ID);
        assert_eq!(c.user.id.get(), USER_ID);
        assert_eq!(c.token, format!("button-{}", c.id.get()));

        let v = with_member(with_ids(v, 91, "tok-91"), 5, "carol", &[6]);
        let Interaction::Component(c) = parse_interaction(&v) else {
            panic!("not a component")
        };
        assert_eq!((c.id.get(), c.token.as_str()), (91, "tok-91"));
        assert_eq!((c.user.id.get(), c.user.name.as_str()), (5, "carol"));

        let v = select("env", &["prod"], &msg);
        let Interaction::Component(c) = parse_interaction(&v) else {
            panic!("not a component")
        };
        match &c.data.kind {
            ComponentInteractionDataKind::StringSelect { values } => assert_eq!(values, &["prod"]),
            other => panic!("not a select: {other:?}"),
        }
    }

    #[test]
    fn modal_submit_carries_its_fields() {
        let v = in_channel(
            modal_submit("ticket:new", &[("title", "db down"), ("body", "since 3am")]),
            12345,
        );
        let Interaction::Modal(m) = parse_interaction(&v) else {
            panic!("not a modal: {v}")
        };
        assert_eq!(m.data.custom_id, "ticket:new");
        assert_eq!(m.channel_id.get(), 12345);
        let fields: Vec<(String, Option<String>)> = m
            .data
            .components
            .iter()
            .flat_map(|row| row.components.iter())
            .map(|c| match c {
                ActionRowComponent::InputText(t) => (t.custom_id.clone(), t.value.clone()),
                other => panic!("not an input: {other:?}"),
            })
            .collect();
        assert_eq!(
            fields,
            vec![
                ("title".to_string(), Some("db down".to_string())),
                ("body".to_string(), Some("since 3am".to_string())),
            ]
        );
    }

    #[test]
    fn message_parses_and_dispatches() {
        let v = message(92, CHANNEL_ID, user(USER_ID, "alice"), "hello");
        let m: Message = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(m.id.get(), 92);
        assert_eq!(m.channel_id.get(), CHANNEL_ID);
        assert_eq!(m.author.name, "alice");
        assert_eq!(m.content, "hello");
        assert!(m.edited_timestamp.is_none());
        check_dispatch("MESSAGE_CREATE", &v).unwrap();
    }

    #[test]
    fn a_payload_serenity_would_drop_is_refused() {
        let mut v = slash(
            93,
            "t",
            CHANNEL_ID,
            GUILD_ID,
            USER_ID,
            "alice",
            &[],
            &["ping"],
            &[],
        );
        v.as_object_mut().unwrap().remove("attachment_size_limit");
        let err = check_dispatch("INTERACTION_CREATE", &v).unwrap_err();
        assert!(err.contains("Event::Unknown"), "{err}");
        assert!(err.contains("attachment_size_limit"), "{err}");

        let mut r = ready(APP_ID, BOT_ID, 1);
        r["application"].as_object_mut().unwrap().remove("flags");
        let err = check_dispatch("READY", &r).unwrap_err();
        assert!(err.contains("flags"), "{err}");
    }
}
