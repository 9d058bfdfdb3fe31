//! `SIGHUP` read the config again: the operations channel hears once what
//! came of it (in effect, refused with its problems, or settings that wait
//! for a restart).

use crate::engine::context::{Cx, Out};
use crate::engine::effect::Decision;
use crate::engine::messages;
use crate::error::EngineError;

pub(super) fn config_reloaded(
    cx: &Cx<'_>,
    ok: bool,
    problems: &[String],
    restart: &[String],
) -> Result<Decision, EngineError> {
    let mut out = Out::new();
    let words = if ok {
        messages::config_reloaded(restart)
    } else {
        messages::config_reload_refused(problems)
    };
    out.post(cx.ops(), None, words);
    Ok(Decision {
        reply: None,
        accepted: None,
        writes: out.writes,
    })
}
