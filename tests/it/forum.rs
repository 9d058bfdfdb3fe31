//! Forum mode (`[discord] tickets = "forum"`, issue 16), against the fake
//! Discord: the operations channel is a forum channel, each ticket a post
//! (its card the starter message, its story in the post), its state the
//! post's tag; the tags the forum lacks are added once, its own kept.

use serde_json::{json, Value};

use crate::discord::{content, Live, ALERTS, BACKEND, BOB, INFRA, OLIVIA, OPS, QA, WAIT};
use crate::discord_fixtures as fx;
use crate::fake_discord::FakeDiscord;
use crate::harness::{shipped_config, Env};

const MANAGE_CHANNELS: u64 = 1 << 4;
const STATES: [&str; 6] = [
    "open",
    "assigned",
    "in_progress",
    "resolved",
    "qa",
    "closed",
];

/// A fake whose #ops is a forum with one tag of its own (`urgent`), the
/// bot allowed to manage its tags.
pub(crate) fn forum_fake() -> (FakeDiscord, u64) {
    let (fake, urgent) = forum_without_manage_channels();
    fake.give_bot_role(fx::GUILD_ID + 77, "opsbot", MANAGE_CHANNELS);
    (fake, urgent)
}

fn forum_without_manage_channels() -> (FakeDiscord, u64) {
    let fake = FakeDiscord::start();
    for (id, name) in [
        (BACKEND, "backend"),
        (ALERTS, "alerts"),
        (QA, "qa"),
        (INFRA, "infra"),
    ] {
        fake.add_channel(id, name);
    }
    fake.add_forum(OPS, "ops");
    let urgent = fake.add_forum_tag(OPS, "urgent");
    (fake, urgent)
}

pub(crate) fn forum_mode(text: String) -> String {
    text.replace("[discord]\n", "[discord]\ntickets = \"forum\"\n")
}

fn patches_of_forum(fake: &FakeDiscord) -> usize {
    fake.count(&format!("PATCH /api/v10/channels/{OPS}"))
}

/// Opens a ticket for backend as olivia; the id the answer names.
fn open(live: &Live, title: &str) -> String {
    let r = live.answer(
        (OLIVIA, "olivia"),
        OPS,
        &["ticket", "open"],
        &[("title", json!(title)), ("team", json!("backend"))],
    );
    let text = content(&r);
    assert!(text.contains("Opened **OPS-"), "{r}");
    let id = text.split("**").nth(1).unwrap_or_default().to_string();
    assert!(id.starts_with("OPS-"), "{r}");
    id
}

/// The post (its id) of ticket `id` in the forum, once there.
fn post_of(live: &Live, id: &str) -> u64 {
    let want = format!("{id} · ");
    live.fake
        .wait_until(&format!("the forum post of {id}"), WAIT, |f| {
            f.forum_posts(OPS).into_iter().find(|p| {
                f.message(*p).is_some_and(|m| {
                    m["embeds"][0]["title"]
                        .as_str()
                        .is_some_and(|t| t.starts_with(&want))
                })
            })
        })
}

/// Waits until post `post` is tagged `state` (and only that); its card then.
fn tagged(live: &Live, post: u64, state: &str) -> Value {
    live.fake
        .wait_until(&format!("post {post} tagged {state}"), WAIT, |f| {
            (f.applied_tags(post) == [state]).then_some(())
        });
    live.fake.message(post).expect("the post's starter message")
}

fn state_field(card: &Value) -> String {
    card["embeds"][0]["fields"]
        .as_array()
        .and_then(|fs| fs.iter().find(|f| f["name"] == "State"))
        .and_then(|f| f["value"].as_str())
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_forum_ticket_is_a_post_whose_tag_follows_its_state_and_tags_are_added_once() {
    let (fake, urgent) = forum_fake();
    let mut live = Live::start_on(fake, forum_mode);
    // The ticket states' tags are added, the forum's own kept (same id).
    let tags = live.fake.wait_until("the states' tags", WAIT, |f| {
        let tags = f.forum_tags(OPS);
        (tags.len() == 7).then_some(tags)
    });
    assert_eq!(tags[0], (urgent, "urgent".to_string()), "{tags:?}");
    let names: Vec<&str> = tags[1..].iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(names, STATES, "{tags:?}");
    assert_eq!(patches_of_forum(&live.fake), 1);

    let id = open(&live, "Checkout returns 502");
    let post = post_of(&live, &id);
    // Opened for a team, it is assigned to it: so its card and its tag.
    let card = tagged(&live, post, "assigned");
    assert_eq!(state_field(&card), "assigned", "{card}");
    let name = live.fake.forum_post_name(post);
    assert!(
        name.starts_with(&format!("{id} · Checkout returns 502")),
        "{name}"
    );
    // Nothing is posted into the forum as a plain message (Discord refuses it).
    assert!(live.fake.messages(OPS).is_empty());

    let r = live.answer(
        (BOB, "bob"),
        BACKEND,
        &["ticket", "take"],
        &[("id", json!(id))],
    );
    assert!(content(&r).contains(&id), "{r}");
    let taken = live
        .fake
        .wait_until("the post's tag after take", WAIT, |f| {
            let t = f.applied_tags(post);
            (t.len() == 1 && t[0] != "assigned").then_some(t[0].clone())
        });
    assert_eq!(taken, "in_progress");
    live.fake.wait_until("the card after take", WAIT, |f| {
        f.message(post).filter(|m| state_field(m) == taken)
    });

    let r = live.answer(
        (BOB, "bob"),
        BACKEND,
        &["ticket", "resolve"],
        &[("id", json!(id)), ("note", json!("rolled back"))],
    );
    assert!(content(&r).contains("resolved"), "{r}");
    tagged(&live, post, "resolved");
    live.fake.wait_until("the card resolved", WAIT, |f| {
        f.message(post).filter(|m| state_field(m) == "resolved")
    });

    let r = live.answer(
        (OLIVIA, "olivia"),
        OPS,
        &["ticket", "verify"],
        &[("id", json!(id))],
    );
    assert!(content(&r).contains("closed"), "{r}");
    tagged(&live, post, "closed");
    live.fake.wait_until("the card closed", WAIT, |f| {
        f.message(post).filter(|m| state_field(m) == "closed")
    });
    // The ticket's story is in its post, after the starter message.
    let story = live.fake.wait_until("the story in the post", WAIT, |f| {
        let m = f.messages(post);
        (m.len() >= 2).then_some(m)
    });
    assert_eq!(story[0]["id"], json!(post.to_string()), "{story:?}");
    assert!(
        story[1..]
            .iter()
            .any(|m| content(m).contains("rolled back")),
        "{story:?}"
    );

    // A restart finds the tags there: none added again.
    live.stop();
    live.spawn();
    let again = open(&live, "Search is slow");
    let second = post_of(&live, &again);
    assert_ne!(second, post);
    tagged(&live, second, "assigned");
    assert_eq!(live.fake.forum_tags(OPS), tags);
    assert_eq!(
        patches_of_forum(&live.fake),
        1,
        "{:?}",
        live.fake.requests()
    );
    assert_eq!(live.fake.forum_posts(OPS).len(), 2);
    assert!(live.fake.messages(OPS).is_empty());
    assert!(
        live.fake.unexpected().is_empty(),
        "{:?}",
        live.fake.unexpected()
    );
}

/// The fake refuses what Discord refuses in a forum.
#[test]
fn the_fake_forum_refuses_what_discord_refuses() {
    let (fake, urgent) = forum_fake();
    let http = fake.http();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let code = |r: serenity::Result<serenity::all::GuildChannel>| match r {
        Err(serenity::Error::Http(serenity::http::HttpError::UnsuccessfulRequest(e))) => {
            (e.status_code.as_u16(), e.error.code)
        }
        other => panic!("not refused: {other:?}"),
    };
    rt.block_on(async {
        let forum = serenity::all::ChannelId::new(OPS);
        // A plain message in a forum.
        let r = forum
            .send_message(&http, serenity::all::CreateMessage::new().content("hi"))
            .await;
        match r {
            Err(serenity::Error::Http(serenity::http::HttpError::UnsuccessfulRequest(e))) => {
                assert_eq!((e.status_code.as_u16(), e.error.code), (400, 50008))
            }
            other => panic!("not refused: {other:?}"),
        }
        // A post without a message.
        let r = http
            .create_forum_post(forum, &json!({"name": "no message"}), None)
            .await;
        assert_eq!(code(r), (400, 50035));
        // An applied tag the forum does not have; more than 5.
        let post =
            |tags: Value| json!({"name": "p", "message": {"content": "x"}, "applied_tags": tags});
        let r = http
            .create_forum_post(forum, &post(json!(["12345"])), None)
            .await;
        assert_eq!(code(r), (400, 50035));
        let six = json!(vec![urgent.to_string(); 6]);
        let r = http.create_forum_post(forum, &post(six), None).await;
        assert_eq!(code(r), (400, 50035));
        // A good post, then a tag it cannot have.
        let ok = http
            .create_forum_post(forum, &post(json!([urgent.to_string()])), None)
            .await
            .expect("a good post");
        let r = http
            .edit_thread(ok.id, &json!({"applied_tags": ["999"]}), None)
            .await;
        assert_eq!(code(r), (400, 50035));
        // Tags: a name over 20 characters, more than 20 tags.
        let long = json!({"available_tags": [{"name": "x".repeat(21)}]});
        assert_eq!(
            code(http.edit_channel(forum, &long, None).await),
            (400, 50035)
        );
        let many: Vec<Value> = (0..21).map(|i| json!({"name": format!("t{i}")})).collect();
        let many = json!({ "available_tags": many });
        assert_eq!(
            code(http.edit_channel(forum, &many, None).await),
            (400, 50035)
        );
    });
    assert_eq!(fake.applied_tags(fake.forum_posts(OPS)[0]), ["urgent"]);
    assert_eq!(fake.forum_tags(OPS).len(), 1);
}

#[test]
fn check_validates_the_tickets_key_and_says_what_forum_mode_does() {
    let env = Env::shipped_with(
        &shipped_config().replace("[discord]\n", "[discord]\ntickets = \"forums\"\n"),
    );
    let run = env.opsbot(&["check"], "");
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains("`discord.tickets`"), "{}", run.stderr);
    assert!(
        run.stderr.contains("`forums` is not a way to show tickets"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("\"threads\"") && run.stderr.contains("\"forum\""));

    let env = Env::shipped_with(&forum_mode(shipped_config()));
    let run = env.opsbot(&["check"], "");
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        run.stdout
            .contains("discord: tickets as posts in the forum channel #ops"),
        "{}",
        run.stdout
    );
    // The invite asks for Manage Channels (the forum's tags), then only.
    let invite = env.opsbot(&["invite", "--client-id", "1234"], "");
    assert_eq!(invite.code, Some(0), "{invite:?}");
    assert!(
        invite.stdout.contains("add the ticket states' tags"),
        "{}",
        invite.stdout
    );
    let bits = |out: &str| -> u64 {
        let at = out.find("permissions=").expect("permissions in the URL") + 12;
        out[at..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(bits(&invite.stdout) & MANAGE_CHANNELS, MANAGE_CHANNELS);

    // The default, threads, says nothing of forums.
    let threads = Env::shipped_with(&shipped_config());
    let run = threads.opsbot(&["check"], "");
    assert!(!run.stdout.contains("forum"), "{}", run.stdout);
    let invite = threads.opsbot(&["invite", "--client-id", "1234"], "");
    assert_eq!(
        bits(&invite.stdout) & MANAGE_CHANNELS,
        0,
        "{}",
        invite.stdout
    );
}

/// Without Manage Channels the forum's tags cannot be added: that is told,
/// and tickets are still posts, untagged.
#[test]
fn without_manage_channels_tickets_are_untagged_posts_and_the_lack_is_told() {
    let (fake, _) = forum_without_manage_channels();
    let live = Live::start_on(fake, forum_mode);
    let id = open(&live, "Disk full on db-2");
    let post = post_of(&live, &id);
    assert!(live.fake.applied_tags(post).is_empty());
    assert_eq!(live.fake.forum_tags(OPS).len(), 1);
    // The start's permission check names what is missing in #ops.
    let told = live
        .fake
        .wait_until("the missing permission told", WAIT, |f| {
            f.forum_posts(OPS)
                .into_iter()
                .filter_map(|p| f.message(p))
                .map(|m| content(&m).to_string())
                .find(|c| c.contains("Manage Channels"))
        });
    assert!(told.contains("#ops"), "{told}");
    // Taken, the card still follows; no tag is set.
    let r = live.answer(
        (BOB, "bob"),
        BACKEND,
        &["ticket", "take"],
        &[("id", json!(id))],
    );
    assert!(content(&r).contains(&id), "{r}");
    live.fake.wait_until("the card after take", WAIT, |f| {
        f.message(post).filter(|m| state_field(m) == "in_progress")
    });
    assert!(live.fake.applied_tags(post).is_empty());
    assert!(
        live.fake.unexpected().is_empty(),
        "{:?}",
        live.fake.unexpected()
    );
}

/// Discord makes a forum post but its answer is lost (as when the bot dies
/// before noting the post's id): delivered again, the post is found among
/// the guild's active threads by its name and adopted, not made twice. A
/// post Discord archived after days idle is unarchived before its tag
/// changes, its card is edited or its story goes on (Discord refuses all
/// three in an archived thread, 50083).
#[test]
fn a_lost_forum_post_is_adopted_not_repeated_and_an_archived_post_is_unarchived() {
    let (fake, _) = forum_fake();
    let live = Live::start_on(fake, forum_mode);
    live.fake.wait_until("the states' tags", WAIT, |f| {
        (f.forum_tags(OPS).len() == 7).then_some(())
    });
    live.fake.lose_next_forum_posts(1);
    let id = open(&live, "Checkout returns 502");
    let post = post_of(&live, &id);
    // The bot heard nothing of it, and looked for it before posting again.
    let active = format!("GET /api/v10/guilds/{}/threads/active", fx::GUILD_ID);
    live.fake
        .wait_until("a second look for the post", WAIT, |f| {
            (f.count(&active) >= 2).then_some(())
        });
    // It knows the post as its ticket's: take moves its tag and its card.
    let r = live.answer(
        (BOB, "bob"),
        BACKEND,
        &["ticket", "take"],
        &[("id", json!(id))],
    );
    assert!(content(&r).contains(&id), "{r}");
    tagged(&live, post, "in_progress");
    live.fake.wait_until("the card after take", WAIT, |f| {
        f.message(post).filter(|m| state_field(m) == "in_progress")
    });
    assert_eq!(live.fake.forum_posts(OPS), vec![post]);

    // Archived by Discord: the next change unarchives it first.
    live.fake.archive_thread(post);
    let r = live.answer(
        (BOB, "bob"),
        BACKEND,
        &["ticket", "comment"],
        &[("id", json!(id)), ("text", json!("rollback under way"))],
    );
    assert!(!content(&r).is_empty(), "{r}");
    let story = live
        .fake
        .wait_until("the comment in the archived post", WAIT, |f| {
            let m = f.messages(post);
            m.iter()
                .any(|m| content(m).contains("rollback under way"))
                .then_some(m)
        });
    assert!(!live.fake.is_archived(post), "{story:?}");
    live.fake.archive_thread(post);
    let r = live.answer(
        (BOB, "bob"),
        BACKEND,
        &["ticket", "resolve"],
        &[("id", json!(id)), ("note", json!("rolled back"))],
    );
    assert!(content(&r).contains("resolved"), "{r}");
    tagged(&live, post, "resolved");
    live.fake
        .wait_until("the card resolved in the archived post", WAIT, |f| {
            f.message(post).filter(|m| state_field(m) == "resolved")
        });
    assert!(!live.fake.is_archived(post));
    assert_eq!(live.fake.forum_posts(OPS), vec![post]);
}

/// A post Discord archived, whose id the bot never noted, is found among
/// the forum's archived posts and adopted too.
#[test]
fn a_lost_forum_post_archived_since_is_found_among_the_archived() {
    let (fake, _) = forum_fake();
    let live = Live::start_on(fake, forum_mode);
    live.fake.wait_until("the states' tags", WAIT, |f| {
        (f.forum_tags(OPS).len() == 7).then_some(())
    });
    live.fake.lose_next_forum_post_archived();
    let id = open(&live, "Search is slow");
    let post = post_of(&live, &id);
    let archived = format!("GET /api/v10/channels/{OPS}/threads/archived/public");
    live.fake
        .wait_until("a look among the archived posts", WAIT, |f| {
            (f.count(&archived) >= 2 && f.forum_posts(OPS).len() == 1).then_some(())
        });
    let r = live.answer(
        (BOB, "bob"),
        BACKEND,
        &["ticket", "take"],
        &[("id", json!(id))],
    );
    assert!(content(&r).contains(&id), "{r}");
    tagged(&live, post, "in_progress");
    assert!(!live.fake.is_archived(post));
    assert_eq!(live.fake.forum_posts(OPS), vec![post]);
}
