//! The first hour on a real Discord server (issue 16), against the fake
//! Discord: the commands Discord really shows and can invoke; channels and
//! people found by name.

use serde_json::{json, Value};

use crate::discord::{content, Live, BOB, OLIVIA, OPS, WAIT};
use crate::fake_discord::FakeDiscord;

/// Discord cannot invoke a command that also has subcommands (the fake
/// refuses such a registration, and sends no interaction for a path it does
/// not show): everything `/help` names is a command Discord shows, `/build`
/// and `/oncall` as `/build run` and `/oncall show`, and both answer.
#[test]
fn discord_shows_every_command_help_names_and_each_can_be_invoked() {
    let live = Live::start();
    let shown = live.fake.invocable_commands();
    for want in [
        "build run",
        "build cancel",
        "oncall show",
        "oncall set",
        "ticket open",
        "help",
        "whoami",
        "build-web",
    ] {
        assert!(
            shown.iter().any(|s| s == want),
            "/{want} not invocable: {shown:?}"
        );
    }
    assert!(!shown.iter().any(|s| s == "build" || s == "oncall"));

    let help = live.answer((OLIVIA, "olivia"), OPS, &["help"], &[]);
    let help = content(&help);
    assert!(help.starts_with("Commands you may run:"), "{help}");
    for line in help.lines().filter_map(|l| l.trim().strip_prefix('/')) {
        let Some((name, _)) = line.split_once(" — ") else {
            continue;
        };
        let path: Vec<&str> = name
            .split(' ')
            .take_while(|w| !w.contains(':') && !w.starts_with('['))
            .collect();
        let path = path.join(" ");
        assert!(
            shown.contains(&path),
            "/help names /{path}, which Discord does not show: {shown:?}\n{help}"
        );
    }
    assert!(help.contains("/build run — "), "{help}");
    assert!(help.contains("/oncall show — "), "{help}");

    let one = live.answer(
        (OLIVIA, "olivia"),
        OPS,
        &["help"],
        &[("command", json!("build"))],
    );
    assert!(
        content(&one).starts_with("/build run job:<job> [ref:<text>]"),
        "{}",
        content(&one)
    );

    let oncall = live.answer((BOB, "bob"), OPS, &["oncall", "show"], &[]);
    assert!(content(&oncall).contains("backend"), "{}", content(&oncall));
    let build = live.answer(
        (BOB, "bob"),
        OPS,
        &["build", "run"],
        &[("job", json!("build-web"))],
    );
    assert!(
        content(&build).starts_with("Started **RUN-1**: build-web"),
        "{}",
        content(&build)
    );
}

/// The shipped config with `#ops` mapped by id, every other channel left to
/// be found by name, bob named by his Discord username and quinn by one
/// that no member has.
fn by_names(text: String) -> String {
    use crate::discord::{ALERTS, BACKEND, INFRA, QA, QUINN};
    text.replace(&format!("backend = {BACKEND}\n"), "")
        .replace(&format!("alerts = \"{ALERTS}\"\n"), "")
        .replace(&format!("qa = \"{QA}\"\n"), "")
        .replace(&format!("infra = \"{INFRA}\"\n"), "")
        .replace(&format!("bob = \"{BOB}\"\n"), "bob = \"Bob.Builds\"\n")
        .replace(&format!("quinn = \"{QUINN}\"\n"), "quinn = \"quinn.q\"\n")
}

const BACKEND_HERE: u64 = crate::discord_fixtures::CHANNEL_ID + 51;
const ALERTS_HERE: u64 = crate::discord_fixtures::CHANNEL_ID + 52;
const QA_HERE: u64 = crate::discord_fixtures::CHANNEL_ID + 53;
const INFRA_LATER: u64 = crate::discord_fixtures::CHANNEL_ID + 54;

fn setup_posts(fake: &FakeDiscord) -> Vec<Value> {
    fake.messages(OPS)
        .into_iter()
        .filter(|m| content(m).starts_with("Setting up on Discord"))
        .collect()
}

/// A fake Discord whose guild has these channels (id, name).
fn discord_with(channels: &[(u64, &str)]) -> FakeDiscord {
    let fake = FakeDiscord::start();
    for (id, name) in channels {
        fake.add_channel(*id, name);
    }
    fake
}

/// A fake Discord with the teams' channels of the shipped config, by their
/// ids and names.
fn discord_with_the_teams_channels() -> FakeDiscord {
    use crate::discord::{ALERTS, BACKEND, INFRA, QA};
    discord_with(&[
        (BACKEND, "backend"),
        (ALERTS, "alerts"),
        (QA, "qa"),
        (INFRA, "infra"),
    ])
}

/// olivia opens "Checkout fails" for backend: the bot's answer.
fn open_checkout_ticket(live: &Live) -> Value {
    live.answer(
        (OLIVIA, "olivia"),
        OPS,
        &["ticket", "open"],
        &[
            ("title", json!("Checkout fails")),
            ("team", json!("backend")),
        ],
    )
}

/// Channels are found by their name in the guild (an id in the config
/// wins), people by their username among the members (paged); what is
/// missing is told once in #ops, with the exact names looked for; a
/// channel created later is taken up as it appears.
#[test]
fn channels_and_people_are_found_by_name_and_what_is_missing_is_told_once() {
    let fake = discord_with(&[
        (BACKEND_HERE, "backend"),
        (ALERTS_HERE, "alerts"),
        (QA_HERE, "qa"),
    ]);
    // More members than one page holds: bob is on the second page.
    for i in 0..1000u64 {
        fake.add_member(BOB - 2000 + i, &format!("member{i}"));
    }
    fake.add_member(BOB, "bob.builds");
    let live = Live::start_on(fake, by_names);
    let fake = &live.fake;

    let told = fake.wait_until("the setup post in #ops", WAIT, |f| {
        let p = setup_posts(f);
        (!p.is_empty()).then_some(p)
    });
    let text = content(&told[0]).to_string();
    assert!(
        text.contains("No channel named infra in the guild"),
        "{text}"
    );
    assert!(!text.contains("backend"), "{text}");
    assert!(text.contains("the username of quinn (quinn.q)"), "{text}");
    assert!(!text.contains("bob"), "{text}");
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.contains("/members?") && r.contains("after=")),
        "the members were not paged: {:?}",
        fake.requests()
    );
    let logs = live.logs();
    assert!(logs.contains("#infra"), "{logs}");
    assert!(logs.contains("quinn (quinn.q)"), "{logs}");

    // bob acts as bob, by his username.
    let who = live.answer((BOB, "bob.builds"), OPS, &["whoami"], &[]);
    assert!(content(&who).contains("bob"), "{}", content(&who));
    assert!(
        !content(&who).contains("does not name you")
            && content(&who).contains("Teams: backend (lead)."),
        "{}",
        content(&who)
    );

    // A ticket for backend is posted in the channel found by name, and
    // pings bob by the id his username led to.
    let opened = open_checkout_ticket(&live);
    assert!(content(&opened).contains("OPS-1"), "{}", content(&opened));
    let assigned = live.answer(
        (OLIVIA, "olivia"),
        OPS,
        &["ticket", "assign"],
        &[("id", json!("OPS-1")), ("user", json!("bob"))],
    );
    assert!(
        content(&assigned).contains("OPS-1"),
        "{}",
        content(&assigned)
    );
    let posts = fake.wait_until("a ping of bob in #backend", WAIT, |f| {
        let p = f.messages(BACKEND_HERE);
        p.iter()
            .any(|m| m["pings"]["users"] == json!([BOB.to_string()]))
            .then_some(p)
    });
    assert!(
        posts.iter().all(|m| content(m).contains("OPS-1")),
        "{posts:?}"
    );

    // #infra appears later: taken up as it is created.
    fake.create_channel(INFRA_LATER, "infra");
    std::thread::sleep(std::time::Duration::from_millis(300));
    live.answer(
        (OLIVIA, "olivia"),
        OPS,
        &["ticket", "open"],
        &[("title", json!("Disk full")), ("team", json!("infra"))],
    );
    fake.wait_messages(INFRA_LATER, 1, WAIT);

    // Told once: a gateway that drops and resumes tells nothing again.
    fake.close_gateway(4000);
    fake.wait_until("the session resumed", WAIT, |f| {
        (f.resumes() > 0).then_some(())
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(setup_posts(fake).len(), 1);
}

/// Without the Server Members intent enabled for the application, Discord
/// refuses the member list: #ops is told so, naming who could not be looked
/// up. A channel renamed away is no longer taken for the name; the one
/// renamed to it is.
#[test]
fn a_refused_member_list_is_told_and_renamed_channels_are_followed() {
    let fake = discord_with(&[
        (BACKEND_HERE, "backend"),
        (ALERTS_HERE, "alerts"),
        (QA_HERE, "qa"),
        (INFRA_LATER, "infra"),
    ]);
    fake.add_member(BOB, "bob.builds");
    fake.set_members_intent(false);
    let live = Live::start_on(fake, by_names);
    let fake = &live.fake;
    let told = fake.wait_until("the setup post in #ops", WAIT, |f| {
        let p = setup_posts(f);
        (!p.is_empty()).then_some(p)
    });
    let text = content(&told[0]).to_string();
    assert!(text.contains("Server Members Intent"), "{text}");
    assert!(text.contains("bob (bob.builds), quinn (quinn.q)"), "{text}");
    assert!(!text.contains("No channel named"), "{text}");

    // #backend is renamed away and another channel takes its name.
    const NEW_BACKEND: u64 = crate::discord_fixtures::CHANNEL_ID + 60;
    fake.rename_channel(BACKEND_HERE, "backend-archive");
    fake.add_channel(NEW_BACKEND, "scratch");
    fake.rename_channel(NEW_BACKEND, "backend");
    std::thread::sleep(std::time::Duration::from_millis(300));
    live.answer(
        (OLIVIA, "olivia"),
        OPS,
        &["ticket", "open"],
        &[("title", json!("Slow search")), ("team", json!("backend"))],
    );
    fake.wait_messages(NEW_BACKEND, 1, WAIT);
    assert!(fake.messages(BACKEND_HERE).is_empty());
}

/// `[discord.users]` takes a user id or a Discord username; `check` counts a
/// username as a mapping and names a value that is neither.
#[test]
fn check_takes_usernames_and_names_what_is_neither_id_nor_username() {
    use crate::harness::{shipped_config, Env};
    let good = Env::shipped_with(&crate::kit::in_section(
        &shipped_config(),
        "[discord.users]",
        "olivia = \"Olivia.K\"\nbob = \"423456789012345678\"\n",
    ));
    let run = good.opsbot(&["check"], "");
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        run.stdout.contains("2 people, 0 roles mapped"),
        "{}",
        run.stdout
    );
    let unmapped = run
        .stdout
        .lines()
        .find(|l| l.starts_with("discord: no Discord user for "))
        .unwrap_or_else(|| panic!("{}", run.stdout));
    assert!(
        !unmapped.contains("olivia") && !unmapped.contains("bob"),
        "{unmapped}"
    );

    // The invite says the Server Members intent is needed then.
    let invite = good.opsbot(&["invite", "--client-id", "1234"], "");
    assert_eq!(invite.code, Some(0), "{invite:?}");
    assert!(
        invite.stdout.contains("Server Members intent"),
        "{}",
        invite.stdout
    );
    let plain = Env::shipped_with(&shipped_config()).opsbot(&["invite", "--client-id", "1234"], "");
    assert!(!plain.stdout.contains("Server Members"), "{}", plain.stdout);

    let bad = Env::shipped_with(&crate::kit::in_section(
        &shipped_config(),
        "[discord.users]",
        "olivia = \"olivia#1234\"\n",
    ));
    let run = bad.opsbot(&["check"], "");
    assert_eq!(run.code, Some(1), "{run:?}");
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(all.contains("discord.users.olivia"), "{all}");
    assert!(
        all.contains("`olivia#1234` is neither a Discord user id"),
        "{all}"
    );
}

/// The bot's permissions in each channel it uses are computed as Discord
/// does (@everyone, its roles, then the channel's overwrites), and what it
/// lacks is told once in #ops, by channel, with Discord's names.
#[test]
fn missing_permissions_are_told_once_by_channel() {
    use crate::discord::{BACKEND, INFRA, QA};
    const EMBED: u64 = 1 << 14;
    const ATTACH: u64 = 1 << 15;
    const THREADS: u64 = 1 << 35;
    const SEND: u64 = 1 << 11;
    const VIEW: u64 = 1 << 10;
    const BOT_ROLE: u64 = crate::discord_fixtures::GUILD_ID + 77;
    let fake = discord_with_the_teams_channels();
    // @everyone may only view and send; the bot's role adds embeds, files
    // and threads; #backend denies the bot's role embeds; #qa denies
    // @everyone files, but allows them to the bot itself.
    fake.set_everyone_permissions(VIEW | SEND | (1 << 16) | (1 << 38));
    fake.give_bot_role(BOT_ROLE, "opsbot", EMBED | ATTACH | THREADS);
    fake.add_overwrite(BACKEND, BOT_ROLE, false, 0, EMBED);
    fake.add_overwrite(QA, crate::discord_fixtures::GUILD_ID, false, 0, ATTACH);
    fake.add_overwrite(QA, crate::discord_fixtures::BOT_ID, true, ATTACH, 0);
    // #infra: the bot's role may not create threads there (not needed
    // outside #ops) nor attach files (needed).
    fake.add_overwrite(INFRA, BOT_ROLE, false, 0, THREADS | ATTACH);
    let live = Live::start_on(fake, |t| t);
    let fake = &live.fake;
    let told = fake.wait_until("the permissions post in #ops", WAIT, |f| {
        let p: Vec<Value> = f
            .messages(OPS)
            .into_iter()
            .filter(|m| content(m).starts_with("I lack permissions"))
            .collect();
        (!p.is_empty()).then_some(p)
    });
    let text = content(&told[0]).to_string();
    assert!(
        text.starts_with(
            "I lack permissions I need on Discord: in #backend: Embed Links; in #infra: Attach Files."
        ),
        "{text}"
    );
    assert!(!text.contains("#qa") && !text.contains("#ops"), "{text}");
    assert!(live.logs().contains("lacks permissions"), "{}", live.logs());
    fake.close_gateway(4000);
    fake.wait_until("the session resumed", WAIT, |f| {
        (f.resumes() > 0).then_some(())
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    let again = fake
        .messages(OPS)
        .into_iter()
        .filter(|m| content(m).starts_with("I lack permissions"))
        .count();
    assert_eq!(again, 1);
}

/// Posts about a ticket in a team's channel carry the buttons its state
/// allows, as the card in #ops does; a press there acts (the engine still
/// decides who may).
#[test]
fn posts_in_team_channels_carry_the_buttons_the_state_allows() {
    use crate::discord::BACKEND;
    let live = Live::start();
    let fake = &live.fake;
    open_checkout_ticket(&live);
    let posts = fake.wait_messages(BACKEND, 1, WAIT);
    let ids = |m: &Value| -> Vec<String> {
        m["components"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
            .filter_map(|c| c["custom_id"].as_str().map(str::to_string))
            .collect()
    };
    let first = ids(&posts[0]);
    assert!(
        first.contains(&"opsbot:take:OPS-1".to_string()),
        "{first:?}"
    );
    assert!(
        !first.iter().any(|i| i.starts_with("opsbot:verify")),
        "{first:?}"
    );

    // bob takes it from #backend.
    let press = crate::discord_fixtures::with_member(
        crate::discord_fixtures::button("opsbot:take:OPS-1", &posts[0]["message"]),
        BOB,
        "bob",
        &[],
    );
    let token = press["token"].as_str().unwrap().to_string();
    fake.dispatch("INTERACTION_CREATE", press);
    let r = fake.wait_reply(&token, WAIT);
    assert!(content(&r).contains("OPS-1"), "{r}");
    assert!(!content(&r).contains("cannot"), "{r}");

    // Resolved, then handed to QA: the post in #qa offers Verify and
    // Reject, and no Take.
    live.answer(
        (BOB, "bob"),
        BACKEND,
        &["ticket", "resolve"],
        &[("id", json!("OPS-1")), ("note", json!("fixed"))],
    );
    live.answer(
        (OLIVIA, "olivia"),
        OPS,
        &["ticket", "qa"],
        &[("id", json!("OPS-1"))],
    );
    let qa = fake.wait_messages(crate::discord::QA, 1, WAIT);
    let later = ids(&qa[0]);
    assert!(
        later.contains(&"opsbot:verify:OPS-1".to_string()),
        "{later:?}"
    );
    assert!(
        later.contains(&"opsbot:reject:OPS-1".to_string()),
        "{later:?}"
    );
    assert!(
        !later.iter().any(|i| i.starts_with("opsbot:take")),
        "{later:?}"
    );
}

/// A failed job's last lines reach Discord as a code block (what it prints
/// is not taken for markdown), the words around it as they are.
#[test]
fn a_failed_jobs_output_is_a_code_block_on_discord() {
    let live = Live::start();
    let fake = &live.fake;
    let started = live.answer((BOB, "bob"), OPS, &["test-web"], &[("fail", json!("yes"))]);
    assert!(content(&started).contains("RUN-1"), "{}", content(&started));
    let failed = fake.wait_until("the failure's output in #ops", WAIT, |f| {
        f.messages(OPS)
            .into_iter()
            .find(|m| content(m).contains("The output ends with"))
    });
    let text = content(&failed);
    assert!(
        text.contains("The output ends with:\n```\ntesting main\nFAIL checkout_test: expected 200, got 500\n3 of 120 tests failed\n```"),
        "{text}"
    );
    assert_eq!(text.matches("```").count(), 2, "{text}");
}

/// Times in posts are Discord timestamps, which every reader sees in their
/// own time zone; the console keeps the readable UTC time.
#[test]
fn times_in_posts_are_discord_timestamps() {
    let live = Live::start();
    let fake = &live.fake;
    let r = live.answer(
        (BOB, "bob"),
        OPS,
        &["alert", "silence"],
        &[
            ("matchers", json!("alertname=DiskFull")),
            ("duration", json!("2h")),
        ],
    );
    let text = content(&r).to_string();
    // Until when: the moment, and how far it is from now (the same second).
    let re = regex::Regex::new(
        r"^Silence 1 is on until <t:(\d{10}):f> \(<t:(\d{10}):R>\); /alert unsilence",
    )
    .unwrap();
    let caps = re.captures(&text).unwrap_or_else(|| panic!("{text}"));
    assert_eq!(caps[1], caps[2], "{text}");
    let until: i64 = caps[1].parse().unwrap();
    let in_two_hours = chrono::Utc::now().timestamp() + 7200;
    assert!(
        (in_two_hours - 60..=in_two_hours).contains(&until),
        "{text}"
    );
    let post = fake.wait_until("the silence's post in #ops", WAIT, |f| {
        f.messages(OPS)
            .into_iter()
            .find(|m| content(m).contains("silenced alerts"))
    });
    assert!(
        content(&post).contains(&format!("(until <t:{until}:f> (<t:{until}:R>))")),
        "{}",
        content(&post)
    );
    // (The console's words, readable UTC times, are the snapshots' and
    // the console tests'.)
}

/// An on-call override names its end as a Discord timestamp, to the second
/// it was set for: in the answer, in the team channel's post (which Discord
/// shows as a timestamp, not as text) and in `/oncall show`.
#[test]
fn an_on_call_override_says_until_when_as_a_discord_timestamp() {
    use crate::discord::BACKEND;
    let live = Live::start();
    let fake = &live.fake;
    // A whole minute a day from now, as `/oncall set` takes it.
    let now = chrono::Utc::now().timestamp();
    let until = (now / 60 + 24 * 60) * 60;
    let rfc = chrono::DateTime::from_timestamp(until, 0)
        .unwrap()
        .to_rfc3339();
    let stamp = format!("<t:{until}:f> (<t:{until}:R>)");
    let r = live.answer(
        (BOB, "bob"),
        BACKEND,
        &["oncall", "set"],
        &[
            ("team", json!("backend")),
            ("user", json!("bob")),
            ("until", json!(rfc)),
        ],
    );
    assert_eq!(
        content(&r),
        format!("bob is on call for backend until {stamp}."),
        "{r}"
    );
    let post = fake.wait_until("the override's post in #backend", WAIT, |f| {
        f.messages(BACKEND)
            .into_iter()
            .find(|m| content(m).starts_with("On call for backend now"))
    });
    assert_eq!(
        content(&post),
        format!("On call for backend now: <@{BOB}> until {stamp} (override set by bob).")
    );
    let id = post["id"].as_str().unwrap_or_default().to_string();
    let seen = fake
        .rendered()
        .into_iter()
        .find(|p| p.at == format!("message {id} content"))
        .expect("the post's content as Discord shows it");
    assert_eq!(
        seen.formatting.iter().filter(|f| *f == "timestamp").count(),
        2,
        "{seen:?}"
    );
    assert!(
        seen.seen
            .contains(&format!("until [time {until}] ([time {until}])")),
        "{seen:?}"
    );
    let show = live.answer((BOB, "bob"), BACKEND, &["oncall", "show"], &[]);
    assert!(
        content(&show).contains("override: bob from <t:")
            && content(&show).contains(&format!(" until {stamp} (by bob)")),
        "{}",
        content(&show)
    );
}

/// `/whoami` on Discord: a person bot.toml maps is told their name, teams,
/// roles and what they may run; someone it does not is told exactly what an
/// operator adds, with their own Discord id.
#[test]
fn whoami_on_discord_for_a_known_and_an_unknown_person() {
    use crate::discord::STRANGER;
    let live = Live::start();
    let known = live.answer((OLIVIA, "olivia"), OPS, &["whoami"], &[]);
    let known = content(&known);
    assert!(known.starts_with("You are olivia, on discord."), "{known}");
    assert!(known.contains("Roles: operator"), "{known}");
    assert!(known.contains("/ticket verify"), "{known}");
    assert!(!known.contains("does not name you"), "{known}");

    let unknown = live.answer((STRANGER, "stranger"), OPS, &["whoami"], &[]);
    let unknown = content(&unknown);
    assert!(unknown.contains("bot.toml does not name you"), "{unknown}");
    assert!(
        unknown.contains(&format!(
            "under [discord.users] a line `yourname = \"{STRANGER}\"`"
        )),
        "{unknown}"
    );
    assert!(unknown.contains("/whoami"), "{unknown}");
    assert!(!unknown.contains("/ticket verify"), "{unknown}");
}

/// The bot's secrets, each with a value no log line could hold by chance.
const SECRETS: &[(&str, &str)] = &[
    ("DISCORD_TOKEN", "discord-token-Zx81"),
    ("OPSBOT_HOOK_TOKEN", "hook-token-Qw72"),
    ("OPSBOT_API_TOKEN", "api-token-As27"),
    ("OPSBOT_SUPPORT_SECRET", "support-secret-Er63"),
    ("JENKINS_TOKEN", "jenkins-token-Ty54"),
    ("SMTP_USER", "smtp-user-Ui45"),
    ("SMTP_PASSWORD", "smtp-password-Op36"),
];

/// Secrets never reach the log, at any level of the bot's own logging (and
/// its libraries' info), in text and in JSON: the console with every secret
/// the config names set, through tickets, a failed job, a silence.
#[test]
fn secrets_never_reach_the_log_at_any_level() {
    let text = crate::harness::shipped_config().replace(
        "tls = \"none\"",
        "tls = \"none\"\nuser_env = \"SMTP_USER\"\npassword_env = \"SMTP_PASSWORD\"",
    );
    assert!(text.contains("SMTP_PASSWORD"));
    let text = format!(
        "{text}\n[ci.jenkins]\nurl = \"http://127.0.0.1:9\"\nuser = \"ci\"\ntoken_env = \"JENKINS_TOKEN\"\n"
    );
    for format in ["text", "json"] {
        let env =
            crate::harness::Env::shipped_with(&format!("{text}\n[log]\nformat = \"{format}\"\n"));
        let mut vars = SECRETS.to_vec();
        vars.push(("RUST_LOG", "info,opsbot=trace"));
        let run = env.opsbot_env(
            &["console"],
            "/ticket open title:\"Checkout fails\" team:backend\n:as bob\n/ticket take id:OPS-1\n/test-web fail:yes\n/alert silence matchers:alertname=DiskFull duration:2h\n/whoami\n",
            &vars,
        );
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        assert!(
            run.stderr.matches("decided").count() >= 5,
            "{format}: the logs are on: {}",
            run.stderr
        );
        for (var, value) in SECRETS {
            assert!(
                !run.stderr.contains(value) && !run.stdout.contains(value),
                "{format}: {var}'s value in the output:\n{}\n{}",
                run.stderr,
                run.stdout
            );
        }
    }
}

/// The Discord token never reaches the log of `opsbot run`, connected,
/// answering, posting and reloading, with the bot's logging at trace.
#[test]
fn the_discord_token_never_reaches_the_log_of_run() {
    use crate::discord::BACKEND;
    let fake = discord_with_the_teams_channels();
    let mut live = Live::start_logging(fake, |t| t, "info,opsbot=trace");
    let r = open_checkout_ticket(&live);
    assert!(content(&r).contains("OPS-1"), "{r}");
    live.fake.wait_messages(BACKEND, 1, WAIT);
    let pid = live.pid().expect("running");
    let ok = std::process::Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .expect("kill -HUP")
        .success();
    assert!(ok);
    live.fake.wait_until("the reload said", WAIT, |f| {
        f.messages(OPS)
            .iter()
            .any(|m| content(m).starts_with("Reloaded bot.toml"))
            .then_some(())
    });
    live.stop();
    let logs = live.logs();
    assert!(
        logs.matches("decided").count() >= 2,
        "the logs are on: {logs}"
    );
    assert!(
        !logs.contains(crate::fake_discord::TOKEN),
        "the token in the log: {logs}"
    );
}

/// The Message Content intent (privileged: enabled by hand in the Developer
/// Portal) is asked for only with message rules: without them the bot
/// connects with the guild intent alone, and its invite asks for no
/// history (`cli::invite_asks_for_the_permissions_the_config_needs`).
#[test]
fn without_message_rules_the_bot_asks_for_no_message_intents() {
    let live = Live::start_with(|text| {
        let start = text
            .find("[[alerts.message_rules]]")
            .expect("the shipped rule");
        let end = start + text[start..].find("\n\n").expect("its end");
        format!("{}{}", &text[..start], &text[end..])
    });
    let intents = live.fake.identify_intents().expect("an IDENTIFY");
    assert_eq!(intents, serenity::all::GatewayIntents::GUILDS.bits());
    // And it works: a command is answered.
    let r = live.answer((OLIVIA, "olivia"), OPS, &["whoami"], &[]);
    assert!(content(&r).starts_with("You are olivia"), "{r}");
}

/// An id in `[discord.channels]` wins over a channel of the guild that has
/// the name: the team's posts go to the channel of the id, never to the
/// one found by name.
#[test]
fn an_id_in_bot_toml_wins_over_a_channel_found_by_name() {
    use crate::discord::{ALERTS, BACKEND, INFRA, QA};
    let fake = discord_with(&[
        (BACKEND, "team-backend"),
        (BACKEND_HERE, "backend"),
        (ALERTS, "alerts"),
        (QA, "qa"),
        (INFRA, "infra"),
    ]);
    let live = Live::start_on(fake, |t| t);
    let r = open_checkout_ticket(&live);
    assert!(content(&r).contains("OPS-1"), "{r}");
    let posted = live.fake.wait_messages(BACKEND, 1, WAIT);
    assert!(content(&posted[0]).contains("OPS-1"), "{posted:?}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        live.fake.messages(BACKEND_HERE).is_empty(),
        "{:?}",
        live.fake.messages(BACKEND_HERE)
    );
    // Nothing is missing, so #ops hears no setup post.
    assert!(setup_posts(&live.fake).is_empty());
}

/// The README names the commands as Discord shows them: every inline
/// `` `/command …` `` whose name Discord knows is a command path Discord
/// can invoke (`/build run`, `/oncall show`), and a bare group (`/build`,
/// `/oncall`, the console's forms) only on a line that also names the form
/// Discord shows.
#[test]
fn the_readme_names_the_commands_discord_shows() {
    let live = Live::start();
    let shown = live.fake.invocable_commands();
    let top: std::collections::BTreeSet<&str> =
        shown.iter().filter_map(|p| p.split(' ').next()).collect();
    let groups: std::collections::BTreeSet<&str> = shown
        .iter()
        .filter(|p| p.contains(' '))
        .filter_map(|p| p.split(' ').next())
        .collect();
    let readme = std::fs::read_to_string(crate::kit::root().join("README.md")).expect("README.md");
    let span = regex::Regex::new(r"`(/[a-z][^`]*)`").unwrap();
    let mut checked = 0;
    for (n, line) in readme.lines().enumerate() {
        let paths: Vec<String> = span
            .captures_iter(line)
            .map(|c| {
                c[1][1..]
                    .split(' ')
                    .take_while(|w| {
                        !w.is_empty() && w.chars().all(|ch| ch.is_ascii_lowercase() || ch == '-')
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .filter(|p| p.split(' ').next().is_some_and(|w| top.contains(w)))
            .collect();
        for p in &paths {
            checked += 1;
            if shown.contains(p) {
                continue;
            }
            let group_named_with_its_form = groups.contains(p.as_str())
                && paths
                    .iter()
                    .any(|q| q.starts_with(&format!("{p} ")) && shown.contains(q));
            assert!(
                group_named_with_its_form,
                "README.md:{}: `/{p}` is not a command Discord shows ({shown:?}):\n{line}",
                n + 1
            );
        }
    }
    assert!(checked >= 20, "only {checked} commands found in the README");
}
