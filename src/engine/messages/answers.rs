//! Short answers to commands and deliveries, with no post of their own.

use crate::domain::rich::{one_line, Rich};
use crate::domain::run::RunId;

/// `/alert silences` with nothing in force (`alertmanager`: the bot also
/// reads Alertmanager's silences).
pub fn no_silences(alertmanager: bool) -> Rich {
    Rich::from(if alertmanager {
        "No silences in force, in the bot or in Alertmanager."
    } else {
        "No silences in force."
    })
}

/// `/runs` before any run (the command as Discord shows it).
pub fn no_runs() -> Rich {
    Rich::from("No runs yet; start one with /build run job:…")
}

/// `/build cancel`, done.
pub fn run_cancelled(id: RunId) -> Rich {
    Rich::from(format!("{id} is cancelled."))
}

/// `/deploy` started at once (no approval): how to stop it.
pub fn deploy_started(id: RunId, what: &str) -> String {
    format!("Started {id}: {what}. Cancel it with /build cancel run:{id}")
}

/// `/deploy approve`, done.
pub fn deploy_approved(id: RunId) -> Rich {
    Rich::from(format!("{id} is approved and starts now."))
}

/// `/deploy deny`, done.
pub fn deploy_denied(id: RunId) -> Rich {
    Rich::from(format!("{id} is denied."))
}

/// The answer to a push that deleted a branch.
pub fn branch_deleted_reply(branch: &str, cancelled: usize) -> Rich {
    Rich::from(format!(
        "{} deleted; {cancelled} builds cancelled",
        one_line(branch, 100)
    ))
}

/// The answer to a push of a head already built.
pub fn already_built(short_sha: &str) -> Rich {
    Rich::from(format!("{short_sha} is already built; nothing done twice"))
}

/// The answer to a push: the runs it queued (`ids`), if any.
pub fn push_queued(short_sha: &str, ids: &[String]) -> Rich {
    Rich::from(if ids.is_empty() {
        format!("{short_sha} recorded; no job runs on push")
    } else {
        format!("{short_sha} queued: {}", ids.join(", "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers() {
        let id = RunId(12);
        let lines = [
            no_silences(false).to_plain(),
            no_silences(true).to_plain(),
            no_runs().to_plain(),
            run_cancelled(id).to_plain(),
            deploy_started(id, "deploy of web to staging"),
            deploy_approved(id).to_plain(),
            deploy_denied(id).to_plain(),
            branch_deleted_reply("feature/x", 2).to_plain(),
            already_built("abc1234").to_plain(),
            push_queued("abc1234", &[]).to_plain(),
            push_queued("abc1234", &["RUN-12".into(), "RUN-13".into()]).to_plain(),
        ];
        insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
            insta::assert_snapshot!("opsbot__engine__messages__answers", lines.join("\n---\n"));
        });
    }
}
