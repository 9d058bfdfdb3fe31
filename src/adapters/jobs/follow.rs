//! Following a run in a remote CI (Jenkins, GitHub Actions, GitLab CI):
//! one loop for every backend, which looks at the run, backs off while
//! nothing changes, says once that the CI is not answering, and stops the
//! run there when it is cancelled. Each backend says what one look is.

use std::future::Future;
use std::time::Duration;

use tokio::sync::oneshot;

use crate::domain::run::RunUpdate;

/// What a look at the run found.
pub(super) enum Look {
    /// Nothing that ends the run: look again after the next delay.
    Again,
    /// The run moved (it left the queue, it was found): look again at once,
    /// and from then on at the shortest delay.
    Moved,
    /// The run ended, and the backend has said how.
    Ended,
}

/// A run being followed, as its backend sees it.
pub(super) trait Followed: Send + 'static {
    /// What a look can fail with.
    type Error: std::fmt::Display + Send;

    /// Looks at the run once, reporting what changed.
    fn look(&mut self) -> impl Future<Output = Result<Look, Self::Error>> + Send;

    /// Whether looking again later may work (the CI is down, slow or
    /// failing), rather than the run being lost for good.
    fn transient(e: &Self::Error) -> bool;

    /// Why the run is not heard of, in the words of a
    /// [`RunUpdate::Waiting`], from a transient error.
    fn waiting(e: &Self::Error) -> String;

    /// Sends an update of the run to the engine.
    fn report(&self, update: RunUpdate) -> impl Future<Output = ()> + Send;

    /// Stops the run in its CI: it was cancelled in chat.
    fn abort(&mut self) -> impl Future<Output = ()> + Send;
}

/// How a follower stopped.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Stopped {
    /// The run ended (or was lost).
    Ended,
    /// It was cancelled, and stopped in its CI.
    Cancelled,
}

/// Follows `run` until it ends or `cancel` fires: the first look after
/// `offset`, then every `poll`, growing by half after each look that
/// changes nothing, up to four times `poll`. A transient failure is said
/// once (until a look works again); any other failure ends the run as
/// failed.
pub(super) async fn follow<F: Followed>(
    mut run: F,
    poll: Duration,
    offset: Duration,
    mut cancel: oneshot::Receiver<()>,
) -> Stopped {
    let max = poll * 4;
    let mut delay = poll;
    let mut said_down = false;
    if !offset.is_zero() {
        tokio::select! {
            _ = tokio::time::sleep(offset) => {}
            _ = &mut cancel => {
                run.abort().await;
                return Stopped::Cancelled;
            }
        }
    }
    loop {
        let res = tokio::select! {
            r = run.look() => r,
            _ = &mut cancel => {
                run.abort().await;
                return Stopped::Cancelled;
            }
        };
        match res {
            Ok(Look::Again) => said_down = false,
            Ok(Look::Moved) => {
                said_down = false;
                delay = poll;
                continue;
            }
            Ok(Look::Ended) => return Stopped::Ended,
            Err(e) if F::transient(&e) => {
                if !said_down {
                    run.report(RunUpdate::Waiting {
                        reason: F::waiting(&e),
                    })
                    .await;
                    said_down = true;
                }
            }
            Err(e) => {
                run.report(RunUpdate::Finished {
                    success: false,
                    reason: e.to_string(),
                    tail: String::new(),
                })
                .await;
                return Stopped::Ended;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = &mut cancel => {
                run.abort().await;
                return Stopped::Cancelled;
            }
        }
        delay = (delay * 3 / 2).min(max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A scripted run: each look takes the next answer; what it reports
    /// is kept.
    struct Scripted {
        answers: Vec<Result<Look, (bool, &'static str)>>,
        said: Arc<Mutex<Vec<String>>>,
    }

    struct Failed(bool, &'static str);

    impl std::fmt::Display for Failed {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.1)
        }
    }

    impl Followed for Scripted {
        type Error = Failed;

        async fn look(&mut self) -> Result<Look, Failed> {
            if self.answers.is_empty() {
                // Never ends by itself: only a cancel stops it.
                std::future::pending::<()>().await;
            }
            self.answers.remove(0).map_err(|(t, w)| Failed(t, w))
        }

        fn transient(e: &Failed) -> bool {
            e.0
        }

        fn waiting(e: &Failed) -> String {
            format!("{} (waiting)", e.1)
        }

        async fn report(&self, update: RunUpdate) {
            let word = match update {
                RunUpdate::Waiting { reason } => format!("waiting: {reason}"),
                RunUpdate::Finished { reason, .. } => format!("finished: {reason}"),
                _ => "other".into(),
            };
            self.said.lock().unwrap().push(word);
        }

        async fn abort(&mut self) {
            self.said.lock().unwrap().push("aborted".into());
        }
    }

    fn scripted(
        answers: Vec<Result<Look, (bool, &'static str)>>,
    ) -> (Scripted, Arc<Mutex<Vec<String>>>) {
        let said = Arc::new(Mutex::new(Vec::new()));
        (
            Scripted {
                answers,
                said: said.clone(),
            },
            said,
        )
    }

    const POLL: Duration = Duration::from_millis(1);

    #[tokio::test]
    async fn a_ci_down_is_said_once_until_it_answers_again() {
        let (run, said) = scripted(vec![
            Err((true, "down")),
            Err((true, "down")),
            Ok(Look::Again),
            Err((true, "down again")),
            Ok(Look::Ended),
        ]);
        let (_tx, cancel) = oneshot::channel();
        assert_eq!(
            follow(run, POLL, Duration::ZERO, cancel).await,
            Stopped::Ended
        );
        assert_eq!(
            *said.lock().unwrap(),
            ["waiting: down (waiting)", "waiting: down again (waiting)"]
        );
    }

    #[tokio::test]
    async fn a_lasting_failure_ends_the_run_as_failed() {
        let (run, said) = scripted(vec![Ok(Look::Moved), Err((false, "no such job"))]);
        let (_tx, cancel) = oneshot::channel();
        assert_eq!(
            follow(run, POLL, Duration::ZERO, cancel).await,
            Stopped::Ended
        );
        assert_eq!(*said.lock().unwrap(), ["finished: no such job"]);
    }

    #[tokio::test]
    async fn a_cancel_stops_the_run_in_its_ci_while_waiting_or_looking() {
        // Cancelled during the first wait: never looked at.
        let (run, said) = scripted(vec![Ok(Look::Ended)]);
        let (tx, cancel) = oneshot::channel();
        tx.send(()).unwrap();
        let out = follow(run, POLL, Duration::from_secs(3600), cancel).await;
        assert_eq!(out, Stopped::Cancelled);
        assert_eq!(*said.lock().unwrap(), ["aborted"]);

        // Cancelled while a look hangs.
        let (run, said) = scripted(vec![Ok(Look::Again)]);
        let (tx, cancel) = oneshot::channel();
        let follower = tokio::spawn(follow(run, POLL, Duration::ZERO, cancel));
        tokio::time::sleep(Duration::from_millis(50)).await;
        tx.send(()).unwrap();
        assert_eq!(follower.await.unwrap(), Stopped::Cancelled);
        assert_eq!(*said.lock().unwrap(), ["aborted"]);
    }
}
