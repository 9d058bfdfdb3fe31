//! Deploys from chat through the console binary and the shipped demo
//! service: approvals, the lock, history and rollback, `fixes OPS-N`.

use crate::harness::Env;

fn runs(env: &Env) -> Vec<serde_json::Value> {
    env.export()
        .into_iter()
        .filter(|v| v["type"] == "run")
        .collect()
}

#[test]
fn a_protected_deploy_waits_for_someone_else_to_approve() {
    let env = Env::shipped();
    let run = env.console(&[
        ":as bob",
        "/ticket open title:\"Checkout 500\" team:backend",
        "/deploy service:web env:production version:1.4.2 notes:\"fixes OPS-1\"",
        "/approve run:RUN-1",
        "/deploy service:web env:production version:1.4.3",
        ":as bella",
        "/approve run:RUN-1",
        ":as rita",
        "/approve run:RUN-1",
    ]);
    let p = run.private();
    assert_eq!(
        p[1],
        "RUN-1 waits for an approval (release managers (rita))."
    );
    assert_eq!(
        p[2],
        "you asked for RUN-1: someone else must approve it (release managers (rita))"
    );
    assert_eq!(p[3], "web/production is locked by RUN-1 (bob, waiting_approval): one deploy at a time; wait for it, or /build cancel run:RUN-1");
    assert_eq!(
        p[4],
        "only release managers (rita) may approve deploys to web/production"
    );
    assert_eq!(p[5], "RUN-1 is approved and starts now.");
    assert!(run.stdout.contains("needs an approval from release managers (rita): /approve run:RUN-1 or /deny run:RUN-1 reason:… @rita"), "{}", run.stdout);
    let r = &runs(&env)[0];
    assert_eq!(r["state"], "succeeded");
    assert_eq!(r["deploy"]["approved_by"], "rita");
    // `fixes OPS-1` in the notes resolved it, for the operator to verify.
    let t = env
        .tickets()
        .into_iter()
        .find(|t| t["id"] == "OPS-1")
        .unwrap();
    assert_eq!(t["state"], "resolved");
    assert_eq!(t["resolution"], "fixed by RUN-1 (web 1.4.2 to production)");
    assert!(
        run.stdout.contains(
            "resolved by ci: fixed by RUN-1 (web 1.4.2 to production). Operators, verify it"
        ),
        "{}",
        run.stdout
    );
}

#[test]
fn rollback_redeploys_the_version_before_the_current_one() {
    let env = Env::shipped();
    env.console(&[":as bob", "/rollback service:web env:staging"]);
    env.console(&[":as bob", "/deploy service:web env:staging version:1.0.0"]);
    env.console(&[":as bob", "/deploy service:web env:staging version:1.1.0"]);
    let run = env.console(&[":as bella", "/rollback service:web env:staging"]);
    assert_eq!(
        run.private(),
        vec!["Started RUN-3: rollback of web/staging to 1.0.0 (as of RUN-1). Cancel it with /build cancel run:RUN-3"]
    );
    let all = runs(&env);
    assert_eq!(all.len(), 3, "{all:?}");
    assert_eq!(all[2]["deploy"]["version"], "1.0.0");
    assert_eq!(all[2]["deploy"]["rollback_of"], "RUN-1");
    assert_eq!(all[2]["state"], "succeeded");
}

#[test]
fn deny_unknown_names_and_permissions() {
    let env = Env::shipped();
    let run = env.console(&[
        ":as bob",
        "/deploy service:api env:staging",
        "/deploy service:web env:qa",
        "/deploy service:web env:staging version:\"1.0; reboot\"",
        "/deploy service:web env:production version:2.0.0",
        ":as ivan",
        "/deny run:RUN-1 reason:nope",
        "/deploy service:web env:staging",
        ":as rita",
        "/deny run:RUN-1 reason:\"not on a Friday\"",
        "/approve run:RUN-1",
    ]);
    let p = run.private();
    assert_eq!(p[0], "there is no service `api`; services are: web");
    assert_eq!(
        p[1],
        "web has no environment `qa`; its environments are: production, staging"
    );
    assert!(
        p[2].starts_with("`version` = `1.0; reboot` does not match the pattern"),
        "{}",
        p[2]
    );
    assert_eq!(
        p[4],
        "only release managers (rita) or bob who asked for it may deny RUN-1"
    );
    assert_eq!(
        p[5],
        "only operators, members of backend, release managers may deploy web to staging"
    );
    assert_eq!(p[6], "RUN-1 is denied.");
    assert_eq!(p[7], "RUN-1 is not waiting for approval; it is cancelled");
    let r = &runs(&env)[0];
    assert_eq!(r["state"], "cancelled");
    // The lock is free again.
    let run = env.console(&[
        ":as bob",
        "/deploy service:web env:production version:2.0.1",
    ]);
    assert_eq!(
        run.private()[0],
        "RUN-2 waits for an approval (release managers (rita))."
    );
}
