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
