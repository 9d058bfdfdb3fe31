//! The command line around the bot: version, completions, man page.

use crate::harness::run_bin_env;

fn opsbot(args: &[&str]) -> crate::harness::Run {
    run_bin_env(args, "", std::path::Path::new("/"), &[])
}

#[test]
fn the_version_names_the_commit_it_was_built_from() {
    let run = opsbot(&["--version"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let want = head.unwrap_or_else(|| "unknown".into());
    assert_eq!(
        run.stdout.trim(),
        format!("opsbot {} (commit {want})", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn completions_are_generated_for_each_shell() {
    for (shell, mark) in [
        ("bash", "complete -F _opsbot"),
        ("zsh", "#compdef opsbot"),
        ("fish", "complete -c opsbot"),
    ] {
        let run = opsbot(&["completions", shell]);
        assert_eq!(run.code, Some(0), "{shell}: {}", run.stderr);
        assert!(run.stdout.contains(mark), "{shell}: {}", run.stdout);
        for sub in ["console", "check", "export", "import"] {
            assert!(run.stdout.contains(sub), "{shell} completes {sub}");
        }
    }
    let bad = opsbot(&["completions", "tcsh"]);
    assert_eq!(bad.code, Some(2));
    assert!(bad.stderr.contains("possible values"), "{}", bad.stderr);
    assert!(bad.stderr.contains("bash"), "{}", bad.stderr);
}

#[test]
fn the_man_page_is_roff_and_names_every_subcommand() {
    let run = opsbot(&["man"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stdout.starts_with(".ie") || run.stdout.contains(".TH opsbot 1"),
        "{}",
        &run.stdout[..run.stdout.len().min(200)]
    );
    for sub in ["run", "console", "check", "export", "import", "completions"] {
        assert!(run.stdout.contains(sub), "the man page names {sub}");
    }
}

/// `[log] format = "json"`: every log line is one JSON object; with
/// `RUST_LOG=info` each event's line names its kind, person, channel,
/// source and the tickets it changed, so one ticket can be followed.
#[test]
fn json_logs_are_one_object_per_line_with_the_events_fields() {
    let env = crate::harness::Env::shipped();
    let text = std::fs::read_to_string(&env.config).unwrap() + "\n[log]\nformat = \"json\"\n";
    std::fs::write(&env.config, text).unwrap();
    let run = env.opsbot_env(
        &["console"],
        "/ticket open title:\"json log\"\n",
        &[("RUST_LOG", "opsbot=info")],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let logs: Vec<serde_json::Value> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let decided = logs
        .iter()
        .find(|v| v["fields"]["message"] == "decided" && v["span"]["kind"] == "command")
        .unwrap_or_else(|| panic!("no event line in {}", run.stderr));
    assert_eq!(decided["level"], "INFO");
    assert_eq!(decided["span"]["person"], "olivia");
    assert_eq!(decided["span"]["channel"], "ops");
    assert_eq!(decided["span"]["source"], "console");
    assert_eq!(decided["span"]["tickets"], "OPS-1");
    // Nothing else in stderr looks like a broken log line.
    for l in run.stderr.lines() {
        assert!(
            !l.contains("INFO ") && !l.contains(" WARN "),
            "a text log line: {l}"
        );
    }
    // And a wrong format is refused with the right words.
    let bad = std::fs::read_to_string(&env.config)
        .unwrap()
        .replace("format = \"json\"", "format = \"xml\"");
    std::fs::write(&env.config, bad).unwrap();
    let run = env.opsbot(&["check"], "");
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("log.format"), "{}", run.stderr);
    assert!(run.stderr.contains("\"json\""), "{}", run.stderr);
}

/// Run under systemd (`Type=notify`, `WatchdogSec=`): the bot says READY=1
/// once the store is open and the intake listens, pings the watchdog while
/// it is alive, and says STOPPING=1 when it stops. The test is systemd's
/// side of the socket.
#[test]
fn systemd_hears_ready_watchdog_pings_and_stopping() {
    use std::os::unix::net::UnixDatagram;
    let mut env = crate::harness::Env::shipped();
    let sock_path = env.dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_millis(200)))
        .unwrap();
    env.vars
        .push(("NOTIFY_SOCKET".into(), sock_path.display().to_string()));
    // A 200 ms watchdog: pinged every 100 ms.
    env.vars.push(("WATCHDOG_USEC".into(), "200000".into()));
    let bot = env.live(&[]);
    let mut heard: Vec<String> = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut buf = [0u8; 512];
    while heard.iter().filter(|m| m.contains("WATCHDOG=1")).count() < 3 {
        assert!(std::time::Instant::now() < deadline, "heard only {heard:?}");
        if let Ok(n) = sock.recv(&mut buf) {
            heard.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    assert!(heard[0].contains("READY=1"), "ready first: {heard:?}");
    // The intake answers by the time READY=1 was sent.
    assert_eq!(bot.get("/healthz").0, 200);
    let run = bot.finish();
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let mut rest = Vec::new();
    while let Ok(n) = sock.recv(&mut buf) {
        rest.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert!(
        rest.iter().any(|m| m.contains("STOPPING=1")),
        "stopping said: {rest:?}"
    );
}

/// The shipped unit asks for what the bot does: notify, the watchdog, a
/// restart when it ends (a lost lease), and runs the real command line.
#[test]
fn the_shipped_systemd_unit_matches_the_bot() {
    let unit = std::fs::read_to_string(crate::kit::root().join("contrib/systemd/opsbot.service"))
        .expect("contrib/systemd/opsbot.service");
    for line in [
        "Type=notify",
        "WatchdogSec=",
        "Restart=always",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "StateDirectory=opsbot",
    ] {
        assert!(unit.lines().any(|l| l.starts_with(line)), "{line} missing");
    }
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    let args: Vec<&str> = exec.split_whitespace().skip(1).collect();
    assert_eq!(args[0], "run");
    // The command line takes these arguments (help, not a run).
    let mut help: Vec<&str> = args
        .iter()
        .copied()
        .filter(|a| a.starts_with("--"))
        .collect();
    help.insert(0, "run");
    let run = run_bin_env(&["run", "--help"], "", std::path::Path::new("/"), &[]);
    for a in &help[1..] {
        assert!(
            run.stdout.contains(a),
            "`opsbot run` takes {a}: {}",
            run.stdout
        );
    }
}

/// The Dockerfile (built where a container engine and its registry are
/// reachable, which they are not here): everything it copies exists, its
/// edits of the shipped bot.toml match lines that are there, it runs as a
/// user that is not root, keeps the data in a volume, and checks /readyz.
#[test]
fn the_dockerfile_copies_what_exists_and_edits_lines_that_are_there() {
    let root = crate::kit::root();
    let text = std::fs::read_to_string(root.join("Dockerfile")).expect("Dockerfile");
    assert_eq!(
        text.lines().filter(|l| l.starts_with("FROM ")).count(),
        2,
        "multi-stage"
    );
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("COPY ") else {
            continue;
        };
        if rest.starts_with("--from=") {
            continue;
        }
        let parts: Vec<&str> = rest.split_whitespace().collect();
        for src in &parts[..parts.len() - 1] {
            assert!(root.join(src).exists(), "COPY {src}: not in the repository");
        }
    }
    let config = crate::kit::shipped_config();
    for from in ["path = \"data\"", "listen = \"127.0.0.1:8787\""] {
        assert!(
            text.contains(&format!("s|^{from}|")),
            "the Dockerfile edits {from}"
        );
        assert!(
            config.lines().any(|l| l == from),
            "the shipped bot.toml has the line `{from}` the Dockerfile edits"
        );
    }
    let user = text
        .lines()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("USER");
    assert_ne!(user.trim(), "root");
    assert!(text.contains("VOLUME /var/lib/opsbot"));
    assert!(text.contains("HEALTHCHECK") && text.contains("/readyz"));
    // The target dir never goes into the build context.
    let ignore = std::fs::read_to_string(root.join(".dockerignore")).expect(".dockerignore");
    assert!(ignore.lines().any(|l| l == "target"));
}

/// The metric names a scrape of a running bot exposes: every sample's, and
/// every family's with the suffixes its type gives its samples.
fn exposed_metrics(scrape: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    for line in scrape.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split_whitespace();
            let (Some(name), Some(kind)) = (it.next(), it.next()) else {
                continue;
            };
            names.insert(name.to_string());
            let suffixes: &[&str] = match kind {
                "counter" => &["_total", "_created"],
                "histogram" => &["_bucket", "_count", "_sum", "_created"],
                _ => &[],
            };
            for s in suffixes {
                names.insert(format!("{name}{s}"));
            }
        } else if !line.starts_with('#') && !line.is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            names.insert(line[..end].to_string());
        }
    }
    names
}

fn metric_names_in(text: &str) -> std::collections::BTreeSet<String> {
    let re = regex::Regex::new(r"\bopsbot_[a-z_]+").unwrap();
    re.find_iter(text).map(|m| m.as_str().to_string()).collect()
}

/// The shipped Prometheus rules pass `promtool check rules`, and they and
/// the Grafana dashboard name only metrics a running bot exposes.
#[test]
fn the_shipped_alert_rules_and_dashboard_name_only_real_metrics() {
    let root = crate::kit::root();
    let rules_path = root.join("contrib/prometheus/opsbot-rules.yml");
    let rules = std::fs::read_to_string(&rules_path).expect("the rules");
    let dashboard = std::fs::read_to_string(root.join("contrib/grafana/opsbot-dashboard.json"))
        .expect("the dashboard");
    let dash: serde_json::Value = serde_json::from_str(&dashboard).expect("the dashboard is JSON");
    let exprs: Vec<String> = dash["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["expr"].as_str().map(str::to_string))
        .collect();
    assert!(exprs.len() >= 8, "the dashboard has its panels");

    let out = std::process::Command::new("promtool")
        .arg("check")
        .arg("rules")
        .arg(&rules_path)
        .output()
        .expect("promtool (Debian's prometheus package; .ci/setup installs it)");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // A bot with a little of everything: a ticket, an alert, requests.
    let env = crate::harness::Env::shipped();
    let bot = env.live(&[]);
    let alert = crate::crash::payload(&["metrics-check".to_string()]);
    assert_eq!(bot.post("/hooks/alertmanager", &alert).0, 202);
    let (code, scrape) = bot.get("/metrics");
    assert_eq!(code, 200);
    let exposed = exposed_metrics(&scrape);
    bot.finish();
    let mut named = metric_names_in(&rules);
    for e in &exprs {
        named.extend(metric_names_in(e));
    }
    assert!(named.len() >= 8, "{named:?}");
    let unknown: Vec<&String> = named.iter().filter(|n| !exposed.contains(*n)).collect();
    assert!(
        unknown.is_empty(),
        "named in the rules or the dashboard but not exposed: {unknown:?}; exposed: {exposed:?}"
    );
}

#[test]
fn invite_asks_for_the_permissions_the_config_needs() {
    // The shipped config without its message rule.
    let shipped = crate::harness::shipped_config();
    let start = shipped
        .find("[[alerts.message_rules]]")
        .expect("the shipped rule");
    let end = start + shipped[start..].find("\n\n").expect("its end");
    let no_rules = format!("{}{}", &shipped[..start], &shipped[end..]);
    let env = crate::harness::Env::shipped_with(&no_rules);
    let run = env.opsbot(&["invite", "--client-id", "4242"], "");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let url = run.stdout.lines().next().unwrap();
    // View, send, embed, attach, create public threads, send in threads.
    assert_eq!(
        url,
        "https://discord.com/oauth2/authorize?client_id=4242&scope=bot+applications.commands&permissions=309237697536"
    );
    assert!(
        run.stdout.contains("Create Public Threads"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("Message Content"), "{}", run.stdout);

    // With the shipped message rule: reading history, and a word on the
    // intent; the id from the token; one guild preselected.
    let with_rules = crate::harness::Env::shipped_with(&crate::kit::on_discord(
        &shipped,
        "777",
        "http://127.0.0.1:1",
    ));
    let run = with_rules.opsbot_env(
        &["invite"],
        "",
        &[("DISCORD_TOKEN", "MTIzNDU2Nzg5MDEyMzQ1Njc4.GabcDe.xyz")],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let url = run.stdout.lines().next().unwrap();
    assert!(url.contains("client_id=123456789012345678"), "{url}");
    assert!(url.contains("permissions=309237763072"), "{url}");
    assert!(
        url.ends_with("&guild_id=777&disable_guild_select=true"),
        "{url}"
    );
    assert!(
        run.stdout.contains("Message Content intent"),
        "{}",
        run.stdout
    );

    // Neither an id nor a token: it says what to do.
    let run = env.opsbot(&["invite"], "");
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("--client-id"), "{}", run.stderr);
}
