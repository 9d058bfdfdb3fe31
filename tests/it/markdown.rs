//! Text from others on Discord looks like itself (issue 16): escaped where
//! Discord renders markdown, as written where it does not (thread and forum
//! post names, buttons, footers: no stray backslash), pinging nobody, and
//! breaking no formatting. Checked on what the fake Discord says a reader
//! sees (`fake_discord::markdown`).

use serde_json::json;

use crate::discord::{content, Live, BACKEND, BOB, OLIVIA, OPS, WAIT};
use crate::fake_discord::markdown::{to_json, Place};
use crate::fake_discord::FakeDiscord;
use crate::forum::{forum_fake, forum_mode};

/// A title that would bold, italicise, quote as code, mention user 123 and
/// ping everyone, were it taken for markdown.
const TITLE: &str = "**x** _y_ `z` <@123> @everyone";

/// Everywhere the title's words show, they show as written; nowhere is a
/// backslash seen, user 123 mentioned, or anyone pinged by the title.
fn looks_like_itself(fake: &FakeDiscord) -> Vec<Place> {
    let places = fake.rendered();
    let all = to_json(&places);
    for p in &places {
        assert!(
            !p.seen.contains('\\'),
            "a stray backslash at {}: {all:#}",
            p.at
        );
        assert!(
            !p.seen.contains("@user-123"),
            "user 123 mentioned at {}: {all:#}",
            p.at
        );
        // Its words, where they show, are whole: not half formatted.
        if p.seen.contains("_y_") || p.seen.contains("`z`") {
            assert!(p.seen.contains(TITLE), "mangled at {}: {all:#}", p.at);
        }
        assert!(!p.seen.contains("x y z"), "formatted at {}: {all:#}", p.at);
    }
    for (id, pings) in fake.all_pings() {
        assert_eq!(pings["everyone"], false, "message {id} pings everyone");
        let users = pings["users"].as_array().cloned().unwrap_or_default();
        assert!(!users.contains(&json!("123")), "message {id} pings 123");
    }
    places
}

fn open(live: &Live) {
    let r = live.answer(
        (OLIVIA, "olivia"),
        OPS,
        &["ticket", "open"],
        &[
            ("title", json!(TITLE)),
            ("description", json!(TITLE)),
            ("team", json!("backend")),
        ],
    );
    assert!(content(&r).contains("OPS-1"), "{r}");
}

fn comment_and_take(live: &Live) {
    let r = live.answer(
        (BOB, "bob"),
        BACKEND,
        &["ticket", "comment"],
        &[("id", json!("OPS-1")), ("text", json!(TITLE))],
    );
    assert!(!content(&r).is_empty(), "{r}");
    let r = live.answer(
        (BOB, "bob"),
        BACKEND,
        &["ticket", "take"],
        &[("id", json!("OPS-1"))],
    );
    assert!(content(&r).contains("OPS-1"), "{r}");
}

#[test]
fn a_hostile_title_looks_like_itself_everywhere_in_threads_mode() {
    let live = Live::start();
    open(&live);
    comment_and_take(&live);
    // The card (edited by take), its thread with the comment, #backend's post.
    let card = live.fake.wait_until("the card taken", WAIT, |f| {
        f.messages(OPS)
            .into_iter()
            .find(|m| m["edits"].as_u64().unwrap_or(0) > 0 && !m["embeds"][0].is_null())
    });
    let thread = live
        .fake
        .wait_until("the comment in the card's thread", WAIT, |f| {
            f.threads(OPS).into_iter().find(|t| {
                let id: u64 = t["id"].as_str().and_then(|s| s.parse().ok()).unwrap_or(0);
                f.messages(id).iter().any(|m| content(m).contains("x"))
            })
        });
    live.fake.wait_messages(BACKEND, 1, WAIT);
    let places = looks_like_itself(&live.fake);
    let all = to_json(&places);
    let at = |suffix: &str| -> Vec<&Place> {
        places.iter().filter(|p| p.at.ends_with(suffix)).collect()
    };
    let card_id = card["id"].as_str().unwrap_or_default();
    // The card's title and description: markdown, escaped, seen as written.
    let title = places
        .iter()
        .find(|p| p.at == format!("message {card_id} embeds.0.title"))
        .unwrap_or_else(|| panic!("no card title: {all:#}"));
    assert_eq!(title.seen, format!("OPS-1 · {TITLE}"), "{all:#}");
    assert!(title.formatting.is_empty(), "{all:#}");
    assert_ne!(title.raw, title.seen, "escaped as sent");
    let description = places
        .iter()
        .find(|p| p.at == format!("message {card_id} embeds.0.description"))
        .unwrap_or_else(|| panic!("no card description: {all:#}"));
    assert_eq!(description.seen, TITLE, "{all:#}");
    // Posts (the team's, the comment in the thread, the answers) show it whole.
    let whole = at("content")
        .into_iter()
        .filter(|p| p.seen.contains(TITLE))
        .count();
    assert!(whole >= 2, "{all:#}");
    // Buttons and names show no markdown: none carries an escape (checked
    // above: no backslash is seen anywhere).
    assert!(places
        .iter()
        .any(|p| !p.markdown && p.at.ends_with("label")));
    assert!(thread["name"]
        .as_str()
        .is_some_and(|n| n.starts_with("OPS-1")));
}

#[test]
fn a_hostile_title_is_a_forum_posts_name_as_written() {
    let (fake, _) = forum_fake();
    let live = Live::start_on(fake, forum_mode);
    live.fake.wait_until("the states' tags", WAIT, |f| {
        (f.forum_tags(OPS).len() == 7).then_some(())
    });
    open(&live);
    comment_and_take(&live);
    let post = live.fake.wait_until("the forum post", WAIT, |f| {
        f.forum_posts(OPS).first().copied()
    });
    live.fake.wait_until("the comment in the post", WAIT, |f| {
        (f.messages(post).len() >= 2).then_some(())
    });
    let places = looks_like_itself(&live.fake);
    let all = to_json(&places);
    let name = places
        .iter()
        .find(|p| p.at == format!("thread {post} name"))
        .unwrap_or_else(|| panic!("no post name: {all:#}"));
    // A post's name shows no markdown: the title as written, unescaped.
    assert_eq!(name.raw, format!("OPS-1 · {TITLE}"), "{all:#}");
    let title = places
        .iter()
        .find(|p| p.at == format!("message {post} embeds.0.title"))
        .unwrap_or_else(|| panic!("no card title: {all:#}"));
    assert_eq!(title.seen, format!("OPS-1 · {TITLE}"), "{all:#}");
}
