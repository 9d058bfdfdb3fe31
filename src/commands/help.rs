//! `/help`: what a person may run, or how to use one command.

use std::collections::BTreeMap;

use super::*;
use crate::domain::org::Org;
use crate::domain::UserName;

/// `/help`: what `user` may run, or how to use one command. `may` is the
/// engine's own permission check, so that help promises nothing the engine
/// refuses.
pub fn help(
    user: &UserName,
    org: &Org,
    command: Option<CommandName>,
    jobs: &BTreeMap<String, crate::domain::job::Job>,
    may: &dyn Fn(CommandName) -> bool,
) -> String {
    match command {
        Some(c) => {
            let s = c.spec();
            let mut out = format!(
                "{}\n{}\nwho may run it: {}",
                c.shown_usage(),
                s.summary,
                s.who.describe()
            );
            if !may(c) {
                out.push_str(" (not you)");
            }
            for o in s.options {
                out.push_str(&format!(
                    "\n  {}{}: {}",
                    o.name,
                    if o.required { "" } else { " (optional)" },
                    o.description
                ));
            }
            out
        }
        None => {
            let mut out = String::from("Commands you may run:");
            for &c in CommandName::ALL {
                let s = c.spec();
                if may(c) {
                    out.push_str(&format!("\n  /{} — {}", c.shown_name(), s.summary));
                }
            }
            let mine: Vec<&crate::domain::job::Job> =
                jobs.values().filter(|j| j.admits(user, org)).collect();
            if !mine.is_empty() {
                out.push_str("\nJobs you may run (from commands/):");
                for j in mine {
                    let params: String = j
                        .params
                        .iter()
                        .map(|p| match &p.default {
                            Some(d) => format!(" [{}:… (default {d})]", p.name),
                            None => format!(" {}:…", p.name),
                        })
                        .collect();
                    out.push_str(&format!("\n  /{}{params} — {}", j.name, j.description));
                }
            }
            out.push_str("\nMore on one: /help command:\"ticket open\"");
            out
        }
    }
}
