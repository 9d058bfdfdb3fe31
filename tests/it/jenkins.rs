//! The Jenkins client against the fake Jenkins: triggers and their
//! parameters, folders, the queue, builds and their results, the console,
//! stop, CSRF crumbs, and every way Jenkins says no or does not answer.

use std::future::Future;
use std::time::{Duration, Instant};

use opsbot::adapters::jobs::jenkins::{
    tail, Build, BuildResult, JenkinsClient, JenkinsError, QueueState,
};

use crate::fake_jenkins::{FakeJenkins, TOKEN, USER};

const CRUMB: &str = "GET /crumbIssuer/api/json";

/// Runs a test's body on a fresh runtime, failing it after 30 s.
fn bounded<F: Future>(f: F) -> F::Output {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(30), f)
            .await
            .expect("the test took more than 30 s")
    })
}

fn client(fake: &FakeJenkins) -> JenkinsClient {
    JenkinsClient::new(fake.settings()).unwrap()
}

fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Follows queue item `id` until it is a build; its number and URL.
async fn started(c: &JenkinsClient, id: u64) -> (u64, String) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match c.queue_item(id).await.unwrap() {
            QueueState::Started { number, url } => return (number, url),
            QueueState::Waiting { .. } => {}
            QueueState::Cancelled => panic!("queue item {id} was cancelled"),
        }
        assert!(Instant::now() < deadline, "queue item {id} never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Follows build `n` of `job` until it ends.
async fn finished(c: &JenkinsClient, job: &str, n: u64) -> Build {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let b = c.build(job, n).await.unwrap();
        if !b.building {
            return b;
        }
        assert!(Instant::now() < deadline, "build #{n} of {job} never ended");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn no_surprises(fake: &FakeJenkins) {
    assert_eq!(
        fake.unexpected(),
        Vec::<String>::new(),
        "{:#?}",
        fake.requests()
    );
}

#[test]
fn parameters_arrive_as_they_were_sent() {
    let fake = FakeJenkins::start();
    fake.set_job("deploy-web", "SUCCESS", Duration::ZERO, "deploying\n");
    let c = client(&fake);
    let params = p(&[
        ("REF", "release/1.2"),
        ("NOTE", "two words; and $(rm -rf /) `id` && echo 'x' \"y\""),
        ("MULTI", "line one\nline two\r\nline three"),
        ("TRICKY", "a=b&c=d+e%20f#frag?q"),
        ("EMPTY", ""),
        ("UNICODE", "déploiement ✓ 🚀"),
        ("OPSBOT_RUN", "RUN-7"),
    ]);
    bounded(async {
        let id = c.trigger("deploy-web", &params).await.unwrap();
        let (number, _) = started(&c, id).await;
        assert_eq!(number, 1);
        let builds = fake.builds("deploy-web");
        assert_eq!(builds.len(), 1);
        assert_eq!(builds[0].params, params);
        let b = finished(&c, "deploy-web", 1).await;
        assert_eq!(b.result, Some(BuildResult::Success));
    });
    let posts: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("POST "))
        .collect();
    assert_eq!(posts.len(), 1);
    assert!(
        posts[0].starts_with("POST /job/deploy-web/buildWithParameters?REF=release%2F1.2&NOTE="),
        "{}",
        posts[0]
    );
    no_surprises(&fake);
}

#[test]
fn a_job_without_parameters_is_triggered_with_build() {
    let fake = FakeJenkins::start();
    fake.set_job("nightly", "SUCCESS", Duration::ZERO, "");
    let c = client(&fake);
    bounded(async {
        let id = c.trigger("nightly", &[]).await.unwrap();
        assert!(id > 500, "a queue id, not a build number: {id}");
        assert_eq!(started(&c, id).await.0, 1);
    });
    assert_eq!(fake.count("POST /job/nightly/build"), 1);
    assert_eq!(fake.builds("nightly")[0].params, vec![]);
    no_surprises(&fake);
}

#[test]
fn parameters_to_a_job_without_any_are_a_mistake_not_an_outage() {
    let fake = FakeJenkins::start();
    fake.set_job("plain", "SUCCESS", Duration::ZERO, "");
    fake.set_parameterized("plain", false);
    let c = client(&fake);
    bounded(async {
        let e = c
            .trigger("plain", &p(&[("REF", "main"), ("OPSBOT_RUN", "RUN-1")]))
            .await
            .unwrap_err();
        assert!(!e.is_transient(), "{e:?}");
        assert_eq!(
            e.to_string(),
            "the Jenkins job `plain` takes no parameters, and the bot sends REF, OPSBOT_RUN: make it parameterized in Jenkins (\"This project is parameterized\") with these parameters"
        );
        // Without parameters it builds.
        let id = c.trigger("plain", &[]).await.unwrap();
        assert_eq!(started(&c, id).await.0, 1);
        // Any other 500 stays a server error.
        fake.fail_next(500, 1);
        let e = c.trigger("plain", &p(&[("A", "1")])).await.unwrap_err();
        assert_eq!(e, JenkinsError::Server(500));
    });
    no_surprises(&fake);
}

#[test]
fn folder_jobs_under_a_path_prefix() {
    let fake = FakeJenkins::start_at("/ci/jenkins");
    let job = "team a/web app/deploy";
    fake.set_job(job, "SUCCESS", Duration::from_millis(50), "ok\n");
    fake.set_job("team a/other", "FAILURE", Duration::ZERO, "");
    let c = client(&fake);
    bounded(async {
        let id = c.trigger(job, &p(&[("ENV", "prod")])).await.unwrap();
        let (number, url) = started(&c, id).await;
        assert_eq!(number, 1);
        assert_eq!(
            url,
            format!("{}/job/team%20a/job/web%20app/job/deploy/1/", fake.base)
        );
        let b = finished(&c, job, number).await;
        assert_eq!(b.result, Some(BuildResult::Success));
        assert_eq!(b.url, url);
        // A folder is not a job.
        assert_eq!(
            c.trigger("team a", &[]).await.unwrap_err(),
            JenkinsError::NotFound("job `team a`".into())
        );
    });
    assert_eq!(
        fake.count("POST /ci/jenkins/job/team%20a/job/web%20app/job/deploy/buildWithParameters"),
        1
    );
    assert!(fake.builds("team a/other").is_empty());
    no_surprises(&fake);
}

#[test]
fn a_build_is_followed_from_the_queue_to_its_result() {
    let fake = FakeJenkins::start();
    fake.set_job(
        "web/build",
        "SUCCESS",
        Duration::from_millis(300),
        "compiling\n",
    );
    fake.set_job(
        "web/test",
        "FAILURE",
        Duration::from_millis(50),
        "1 test failed\n",
    );
    fake.set_queue_delay(Duration::from_millis(200));
    let c = client(&fake);
    bounded(async {
        let id = c
            .trigger("web/build", &p(&[("REF", "main")]))
            .await
            .unwrap();
        match c.queue_item(id).await.unwrap() {
            QueueState::Waiting { why: Some(why) } => {
                assert!(why.contains("quiet period"), "{why}")
            }
            s => panic!("not waiting: {s:?}"),
        }
        let (n, url) = started(&c, id).await;
        let b = c.build("web/build", n).await.unwrap();
        assert!(b.building, "{b:?}");
        assert_eq!(b.result, None);
        assert_eq!(b.duration_ms, 0);
        // The first build: Jenkins has no estimate (-1), said as 0.
        assert_eq!(b.estimated_ms, 0);
        assert_eq!(b.url, url);
        let b = finished(&c, "web/build", n).await;
        assert_eq!(b.result, Some(BuildResult::Success));
        assert_eq!(b.duration_ms, 300);
        // A queue item that left the queue stays started.
        assert_eq!(
            c.queue_item(id).await.unwrap(),
            QueueState::Started { number: n, url }
        );

        // The next build is estimated from the first.
        let id2 = c
            .trigger("web/build", &p(&[("REF", "next")]))
            .await
            .unwrap();
        assert_ne!(id2, id);
        let (n2, _) = started(&c, id2).await;
        assert_eq!(n2, 2);
        assert_eq!(c.build("web/build", n2).await.unwrap().estimated_ms, 300);

        fake.set_queue_delay(Duration::ZERO);
        let id = c.trigger("web/test", &[]).await.unwrap();
        let (n, _) = started(&c, id).await;
        let b = finished(&c, "web/test", n).await;
        assert_eq!(b.result, Some(BuildResult::Failure));
        let log = c.console_tail("web/test", n, 4096).await.unwrap();
        assert_eq!(
            log,
            "Started by user opsbot\n1 test failed\nFinished: FAILURE\n"
        );
    });
    no_surprises(&fake);
}

#[test]
fn the_console_tail_is_the_end_of_the_log() {
    let fake = FakeJenkins::start();
    let mut log = String::new();
    for i in 0..60_000 {
        log.push_str(&format!("step {i}: ✓ compiled module é{i}\n"));
    }
    fake.set_job("big", "SUCCESS", Duration::ZERO, &log);
    // No newline for a long way: the cut falls inside characters.
    fake.set_job("wide", "UNSTABLE", Duration::ZERO, &"é✓".repeat(5000));
    let c = client(&fake);
    bounded(async {
        for job in ["big", "wide"] {
            let id = c.trigger(job, &[]).await.unwrap();
            let (n, _) = started(&c, id).await;
            finished(&c, job, n).await;
            let full = fake.console(job, n).unwrap();
            assert!(full.len() > 15_000, "{job}");
            for max in [
                0, 1, 2, 3, 5, 17, 18, 19, 20, 33, 51, 52, 1000, 4096, 65_537,
            ] {
                let got = c.console_tail(job, n, max).await.unwrap();
                assert_eq!(got, tail(&full, max), "{job}, {max}");
                assert!(got.len() <= max, "{job}, {max}");
                assert!(full.ends_with(&got));
            }
            let all = c.console_tail(job, n, usize::MAX).await.unwrap();
            assert_eq!(all, full);
        }
        let end = c.console_tail("big", 1, 100).await.unwrap();
        assert_eq!(
            end,
            "step 59998: ✓ compiled module é59998\nstep 59999: ✓ compiled module é59999\nFinished: SUCCESS\n"
        );
    });
    no_surprises(&fake);
}

#[test]
fn stop_aborts_a_running_build() {
    let fake = FakeJenkins::start();
    fake.set_job(
        "deploy/prod",
        "SUCCESS",
        Duration::from_secs(600),
        "rolling out\n",
    );
    let c = client(&fake);
    bounded(async {
        let id = c
            .trigger("deploy/prod", &p(&[("VERSION", "1.2.3")]))
            .await
            .unwrap();
        let (n, _) = started(&c, id).await;
        assert!(c.build("deploy/prod", n).await.unwrap().building);
        c.stop("deploy/prod", n).await.unwrap();
        let b = c.build("deploy/prod", n).await.unwrap();
        assert!(!b.building);
        assert_eq!(b.result, Some(BuildResult::Aborted));
        let log = c.console_tail("deploy/prod", n, 1024).await.unwrap();
        assert!(
            log.ends_with("Aborted by opsbot\nFinished: ABORTED\n"),
            "{log}"
        );
        // Stopping a build that has ended changes nothing.
        c.stop("deploy/prod", n).await.unwrap();
        assert_eq!(
            c.build("deploy/prod", n).await.unwrap().result,
            Some(BuildResult::Aborted)
        );
    });
    assert_eq!(
        fake.builds("deploy/prod")[0].result.as_deref(),
        Some("ABORTED")
    );
    assert_eq!(fake.count("POST /job/deploy/job/prod/1/stop"), 2);
    no_surprises(&fake);
}

#[test]
fn a_waiting_build_is_called_off_in_the_queue() {
    let fake = FakeJenkins::start();
    fake.set_job("slow-queue", "SUCCESS", Duration::ZERO, "");
    fake.set_queue_delay(Duration::from_secs(600));
    let c = client(&fake);
    bounded(async {
        let id = c.trigger("slow-queue", &p(&[("A", "1")])).await.unwrap();
        assert!(matches!(
            c.queue_item(id).await.unwrap(),
            QueueState::Waiting { .. }
        ));
        c.cancel_queue(id).await.unwrap();
        assert_eq!(c.queue_item(id).await.unwrap(), QueueState::Cancelled);
        assert!(matches!(
            c.cancel_queue(999_999).await.unwrap_err(),
            JenkinsError::NotFound(_)
        ));
    });
    assert!(fake.builds("slow-queue").is_empty());
    no_surprises(&fake);
}

#[test]
fn jenkins_merges_a_trigger_into_an_identical_one_still_waiting() {
    let fake = FakeJenkins::start();
    fake.set_job("web", "SUCCESS", Duration::ZERO, "");
    fake.set_queue_delay(Duration::from_secs(600));
    let c = client(&fake);
    bounded(async {
        let a = c
            .trigger("web", &p(&[("REF", "main"), ("RUN", "1")]))
            .await
            .unwrap();
        let b = c
            .trigger("web", &p(&[("RUN", "1"), ("REF", "main")]))
            .await
            .unwrap();
        let other = c
            .trigger("web", &p(&[("REF", "main"), ("RUN", "2")]))
            .await
            .unwrap();
        assert_eq!(a, b, "the same parameters: the same queue item");
        assert_ne!(a, other);
    });
    no_surprises(&fake);
}

#[test]
fn a_wrong_token_is_refused_and_said_so() {
    let fake = FakeJenkins::start();
    fake.set_job("web", "SUCCESS", Duration::ZERO, "");
    let mut s = fake.settings();
    s.token = Some("not-the-token".into());
    let c = JenkinsClient::new(s).unwrap();
    bounded(async {
        let e = c.build("web", 1).await.unwrap_err();
        assert_eq!(e, JenkinsError::Unauthorized);
        assert!(!e.is_transient());
        assert_eq!(
            e.to_string(),
            "Jenkins refused the credentials (401): check [ci.jenkins] user and the token env var"
        );
        assert_eq!(
            c.trigger("web", &[]).await.unwrap_err(),
            JenkinsError::Unauthorized
        );
        assert!(!format!("{e:?} {c:?}").contains("not-the-token"));
    });
    // Refused at the crumb: no build was asked for.
    assert_eq!(fake.count(CRUMB), 1);
    assert_eq!(fake.count("POST /job/web/build"), 0);
    assert!(fake.builds("web").is_empty());
    no_surprises(&fake);
}

#[test]
fn without_a_token_requests_go_anonymously() {
    let fake = FakeJenkins::start();
    fake.set_job("web", "SUCCESS", Duration::ZERO, "");
    let mut s = fake.settings();
    s.token = None;
    let c = JenkinsClient::new(s).unwrap();
    bounded(async {
        // This Jenkins does not let anonymous read.
        let e = c.build("web", 1).await.unwrap_err();
        assert_eq!(e, JenkinsError::Forbidden);
        assert!(e.to_string().contains("token env var"), "{e}");
    });
    no_surprises(&fake);
}

#[test]
fn the_crumb_is_fetched_once_and_again_when_refused() {
    let fake = FakeJenkins::start();
    fake.set_job("web", "SUCCESS", Duration::ZERO, "");
    let c = client(&fake);
    bounded(async {
        // The fake really wants a crumb: a POST without one is refused.
        let raw = reqwest::Client::new()
            .post(format!("{}/job/web/build", fake.base))
            .basic_auth(USER, Some(TOKEN))
            .send()
            .await
            .unwrap();
        assert_eq!(raw.status(), 403);
        assert!(raw.text().await.unwrap().contains("No valid crumb"));

        c.trigger("web", &[]).await.unwrap();
        // A clone shares the crumb.
        c.clone().trigger("web", &p(&[("X", "1")])).await.unwrap();
        assert_eq!(fake.count(CRUMB), 1);
        // Jenkins restarted: its sessions and crumbs are gone.
        fake.expire_crumbs();
        c.trigger("web", &p(&[("X", "2")])).await.unwrap();
    });
    let log: Vec<String> = fake
        .requests()
        .into_iter()
        .map(|r| r.split('?').next().unwrap().to_string())
        .collect();
    assert_eq!(
        log,
        vec![
            "POST /job/web/build",
            CRUMB,
            "POST /job/web/build",
            "POST /job/web/buildWithParameters",
            "POST /job/web/buildWithParameters",
            CRUMB,
            "POST /job/web/buildWithParameters",
        ]
    );
    assert_eq!(fake.builds("web").len(), 3);
    no_surprises(&fake);
}

#[test]
fn without_csrf_protection_no_crumb_is_sent_until_one_is_asked_for() {
    let fake = FakeJenkins::start();
    fake.set_job("web", "SUCCESS", Duration::ZERO, "");
    fake.csrf(false);
    let c = client(&fake);
    bounded(async {
        c.trigger("web", &[]).await.unwrap();
        c.trigger("web", &p(&[("A", "1")])).await.unwrap();
        assert_eq!(fake.count(CRUMB), 1, "the 404 is remembered");
        // An administrator turns CSRF protection on.
        fake.csrf(true);
        c.trigger("web", &p(&[("A", "2")])).await.unwrap();
        assert_eq!(fake.count(CRUMB), 2);
    });
    assert_eq!(fake.builds("web").len(), 3);
    no_surprises(&fake);
}

#[test]
fn a_403_that_is_not_about_the_crumb_is_forbidden_at_once() {
    let fake = FakeJenkins::start();
    fake.set_job("web", "SUCCESS", Duration::ZERO, "");
    let c = client(&fake);
    bounded(async {
        c.trigger("web", &[]).await.unwrap();
        fake.fail_next(403, 1);
        let e = c.trigger("web", &p(&[("A", "1")])).await.unwrap_err();
        assert_eq!(e, JenkinsError::Forbidden);
        assert!(!e.is_transient());
    });
    assert_eq!(fake.count(CRUMB), 1);
    assert_eq!(fake.builds("web").len(), 1);
    no_surprises(&fake);
}

#[test]
fn unknown_jobs_builds_and_queue_items_are_not_found() {
    let fake = FakeJenkins::start();
    fake.set_job("web/build", "SUCCESS", Duration::ZERO, "");
    let c = client(&fake);
    bounded(async {
        let nf = |s: &str| JenkinsError::NotFound(s.into());
        assert_eq!(c.trigger("nope", &[]).await.unwrap_err(), nf("job `nope`"));
        assert_eq!(
            c.trigger("web/nope", &p(&[("A", "b")])).await.unwrap_err(),
            nf("job `web/nope`")
        );
        assert_eq!(
            c.build("web/build", 9).await.unwrap_err(),
            nf("build #9 of `web/build`")
        );
        assert_eq!(
            c.console_tail("nope", 1, 100).await.unwrap_err(),
            nf("build #1 of `nope`")
        );
        assert_eq!(
            c.stop("web/build", 3).await.unwrap_err(),
            nf("build #3 of `web/build`")
        );
        let e = c.queue_item(424_242).await.unwrap_err();
        assert!(matches!(&e, JenkinsError::NotFound(w) if w.starts_with("queue item 424242")));
        assert!(!e.is_transient());
        assert_eq!(
            c.trigger("nope", &[]).await.unwrap_err().to_string(),
            "Jenkins has no job `nope` (404)"
        );
    });
    // A name that cannot be a job never leaves the client.
    let before = fake.requests().len();
    bounded(async {
        for bad in ["", "web//build", "web/../admin", "/web"] {
            let e = c.trigger(bad, &[]).await.unwrap_err();
            assert!(matches!(e, JenkinsError::Config(_)), "{bad}: {e:?}");
        }
    });
    assert_eq!(fake.requests().len(), before);
    no_surprises(&fake);
}

#[test]
fn server_errors_are_transient_and_pass() {
    let fake = FakeJenkins::start();
    fake.set_job("web", "SUCCESS", Duration::ZERO, "");
    let c = client(&fake);
    bounded(async {
        let id = c.trigger("web", &[]).await.unwrap();
        let (n, _) = started(&c, id).await;
        fake.fail_next(500, 2);
        let e = c.build("web", n).await.unwrap_err();
        assert_eq!(e, JenkinsError::Server(500));
        assert!(e.is_transient());
        assert_eq!(
            c.queue_item(id).await.unwrap_err(),
            JenkinsError::Server(500)
        );
        assert!(!c.build("web", n).await.unwrap().building);
        fake.fail_next(503, 1);
        let e = c.trigger("web", &p(&[("A", "1")])).await.unwrap_err();
        assert_eq!(e, JenkinsError::Server(503));
        assert!(e.is_transient());
    });
    assert_eq!(fake.builds("web").len(), 1);
    no_surprises(&fake);
}

#[test]
fn jenkins_down_is_transient_and_up_again_works() {
    let fake = FakeJenkins::start();
    fake.set_job("web", "SUCCESS", Duration::from_secs(600), "");
    let c = client(&fake);
    bounded(async {
        let id = c.trigger("web", &[]).await.unwrap();
        let (n, _) = started(&c, id).await;
        assert!(c.build("web", n).await.unwrap().building);
        fake.down();
        let t = Instant::now();
        // The open connection fails, then the closed port.
        for _ in 0..3 {
            let e = c.build("web", n).await.unwrap_err();
            assert!(e.is_transient(), "{e:?}");
            assert!(matches!(e, JenkinsError::Unreachable(_)), "{e:?}");
            let at = format!("cannot reach Jenkins at {}: ", fake.base);
            assert!(e.to_string().starts_with(&at), "{e}");
        }
        let e = c.trigger("web", &p(&[("A", "1")])).await.unwrap_err();
        assert!(e.is_transient(), "{e:?}");
        let e = JenkinsClient::new(fake.settings())
            .unwrap()
            .build("web", n)
            .await
            .unwrap_err();
        assert!(
            matches!(&e, JenkinsError::Unreachable(m) if m.contains("Connection refused")),
            "{e:?}"
        );
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "said at once, not after a timeout"
        );
        fake.up();
        assert!(c.build("web", n).await.unwrap().building);
        c.trigger("web", &p(&[("A", "1")])).await.unwrap();
    });
    assert_eq!(fake.builds("web").len(), 2);
    no_surprises(&fake);
}

#[test]
fn a_slow_jenkins_times_out() {
    let fake = FakeJenkins::start();
    fake.set_job("web", "SUCCESS", Duration::ZERO, "");
    let mut s = fake.settings();
    s.timeout = Duration::from_millis(300);
    let c = JenkinsClient::new(s).unwrap();
    bounded(async {
        let id = c.trigger("web", &[]).await.unwrap();
        fake.set_latency(Duration::from_secs(3));
        let t = Instant::now();
        let e = c.queue_item(id).await.unwrap_err();
        assert_eq!(e, JenkinsError::Timeout);
        assert!(e.is_transient());
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        assert_eq!(c.build("web", 1).await.unwrap_err(), JenkinsError::Timeout);
        fake.set_latency(Duration::ZERO);
        assert_eq!(started(&c, id).await.0, 1);
    });
    no_surprises(&fake);
}

#[test]
fn the_fake_records_requests_it_does_not_expect() {
    let fake = FakeJenkins::start();
    fake.set_job("web", "SUCCESS", Duration::ZERO, "");
    bounded(async {
        let http = reqwest::Client::new();
        for (method, path) in [
            (reqwest::Method::GET, "/job/web/lastBuild/api/json"),
            (reqwest::Method::GET, "/job/web/1/stop"),
        ] {
            let r = http
                .request(method, format!("{}{path}", fake.base))
                .basic_auth(USER, Some(TOKEN))
                .send()
                .await
                .unwrap();
            assert!(r.status().is_client_error());
        }
    });
    assert_eq!(
        fake.take_unexpected(),
        vec![
            "GET /job/web/lastBuild/api/json".to_string(),
            "GET /job/web/1/stop".to_string()
        ]
    );
    no_surprises(&fake);
}
