//! Alertmanager as a new user wires it (issue 15): the receiver example of
//! the README run as it is by a real Alertmanager, a group of 40 alerts in
//! one webhook as one thread post.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::alertmanager::{alert, ticket, wait_for, Alertmanager};
use crate::harness::{Env, LiveBot, TOKEN};

/// The `alertmanager.yml` block of the README, as it is written there.
fn readme_receiver() -> String {
    let readme = std::fs::read_to_string(crate::kit::root().join("README.md")).expect("README.md");
    let start = readme
        .find("```yaml\n# alertmanager.yml\n")
        .expect("the README has a ```yaml block starting with # alertmanager.yml");
    let body = &readme[start + "```yaml\n".len()..];
    let end = body.find("\n```").expect("the yaml block ends");
    body[..end + 1].to_string()
}

/// The README's receiver pointed at `bot` (its address is the one thing
/// changed), with the token file it names beside it.
fn start_from_readme(env: &Env, bot: &LiveBot) -> Alertmanager {
    let yml = readme_receiver();
    let shipped = "http://127.0.0.1:8787";
    assert_eq!(
        yml.matches(shipped).count(),
        1,
        "the receiver names the bot's default address once:\n{yml}"
    );
    for must in [
        "send_resolved: true",
        "type: Bearer",
        "credentials_file: opsbot-token",
        "group_by:",
        "group_wait:",
        "group_interval:",
        "repeat_interval:",
    ] {
        assert!(
            yml.contains(must),
            "the README's receiver lacks `{must}`:\n{yml}"
        );
    }
    env.write("opsbot-token", TOKEN);
    Alertmanager::start_with(env.dir.path(), &yml.replace(shipped, &bot.base))
}

#[test]
fn the_readme_receiver_delivers_a_group_of_40_alerts_as_one_ticket_and_one_thread_post() {
    let env = Env::shipped();
    let bot = env.live(&[]);
    let am = start_from_readme(&env, &bot);
    let started = Instant::now();
    let alerts: Vec<Value> = (1..=40)
        .map(|i| {
            alert(
                "HighLatency",
                "checkout",
                &format!("web-{i}:9100"),
                "p99 above 2s",
            )
        })
        .collect();
    am.push(&Value::Array(alerts));
    // group_wait is 10 s in the README: the first notification comes then.
    let t = wait_for(&bot, "OPS-1", "all 40 alerts on the ticket", |t| {
        t["alerts"]["count"] == json!(40)
    });
    assert!(
        started.elapsed() >= Duration::from_secs(9),
        "Alertmanager sent before its group_wait: {:?}",
        started.elapsed()
    );
    assert_eq!(t["team"], "backend", "{t:#}");
    assert_eq!(
        t["alerts"]["group"],
        "web-critical/alertname=HighLatency, service=checkout"
    );
    assert!(ticket(&bot, "OPS-2").is_none(), "one group, one ticket");
    drop(am);
    let run = bot.finish();
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let thread = run.in_thread("ops", "OPS-1");
    let joins: Vec<&&str> = thread
        .iter()
        .filter(|l| l.contains("joined this ticket"))
        .collect();
    assert_eq!(joins.len(), 1, "one post for 39 joins: {thread:#?}");
    assert!(
        joins[0].starts_with("+39 alerts joined this ticket: HighLatency checkout")
            && joins[0].ends_with(" and 36 more"),
        "{joins:?}"
    );
}
