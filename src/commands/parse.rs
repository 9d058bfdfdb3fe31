//! The console's grammar: a line split into a command and `name:value` options
//! (double quotes around values with spaces), then typed.

use super::*;
use crate::domain::error::UserError;
use crate::domain::rich::clip_plain;
use crate::domain::sanitize::clean_untrusted;

/// A console line split into a command and its `name:value` options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    pub name: CommandName,
    pub args: Vec<(String, String)>,
}

/// Splits a line into words; double quotes group (`\"` and `\\` escape inside).
fn words(line: &str) -> Result<Vec<String>, UserError> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quoted = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            '\\' if quoted => match chars.next() {
                Some(n) => cur.push(n),
                None => cur.push('\\'),
            },
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quoted {
        return Err(UserError::new(
            "a double quote is not closed: put values with spaces in \"…\"",
        ));
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// Parses a console line such as `/ticket open title:"Disk full" priority:p2`.
pub fn parse_line(line: &str) -> Result<Invocation, UserError> {
    let line = &clean_untrusted(line);
    let body = line.trim().strip_prefix('/').unwrap_or(line.trim());
    let words = words(body)?;
    let mut it = words.into_iter().peekable();
    let Some(first) = it.next() else {
        return Err(UserError::new("type a command, such as /help"));
    };
    let first_lc = first.to_ascii_lowercase();
    let groups = CommandName::groups();
    let is_group = CommandName::ALL
        .iter()
        .any(|c| c.spec().group == Some(first_lc.as_str()));
    let lone = CommandName::ALL
        .iter()
        .copied()
        .find(|c| c.spec().group.is_none() && c.spec().name == first_lc);
    let name = if is_group {
        let sub = it.peek().cloned().unwrap_or_default().to_ascii_lowercase();
        let full = format!("{first_lc} {sub}");
        // Discord cannot show `/build job:x` beside `/build cancel`, so it
        // shows the lone command as `/build run job:x` (`/oncall show`): the
        // lookup takes that form too.
        match CommandName::lookup(&full) {
            Some(n) => {
                it.next();
                n
            }
            // `/build job:x` is the lone command; `/build cancel …` the group's.
            None if lone.is_some() => lone.unwrap_or(CommandName::Help),
            None => {
                let subs: Vec<&str> = CommandName::ALL
                    .iter()
                    .map(|c| c.spec())
                    .filter(|s| s.group == Some(first_lc.as_str()))
                    .map(|s| s.name)
                    .collect();
                let what = if sub.is_empty() {
                    format!("/{first_lc} needs a subcommand")
                } else {
                    format!("/{first_lc} has no subcommand `{}`", clip_plain(&sub, 40))
                };
                return Err(UserError::new(format!(
                    "{what}; try one of: {}",
                    subs.join(", ")
                )));
            }
        }
    } else {
        match CommandName::lookup(&first_lc) {
            Some(n) => n,
            None => {
                return Err(UserError::new(format!(
                    "unknown command /{}; commands are /{} (try /help)",
                    clip_plain(&first, 40),
                    groups.join(", /")
                )))
            }
        }
    };
    let spec = name.spec();
    let mut args = Vec::new();
    for w in it {
        match w.split_once(':') {
            Some((k, v)) if !k.is_empty() => args.push((k.to_ascii_lowercase(), v.to_string())),
            _ => {
                return Err(UserError::new(format!(
                    "`{}` is not an option: write options as name:value, such as {}",
                    clip_plain(&w, 40),
                    spec.usage()
                )))
            }
        }
    }
    Ok(Invocation { name, args })
}

/// Parses a console line, where a job from `commands/` is a command too
/// (`/build-web ref:main`): its options are the job's parameters.
pub fn parse_with_jobs(
    line: &str,
    prefix: &str,
    jobs: &std::collections::BTreeMap<String, crate::domain::job::Job>,
) -> Result<Command, UserError> {
    let line = &clean_untrusted(line);
    let body = line.trim().trim_start_matches('/');
    let first = body.split_whitespace().next().unwrap_or("");
    if let Some(job) = jobs.get(first) {
        let mut params = Vec::new();
        for w in words(&body[first.len()..])? {
            match w.split_once(':') {
                Some((k, v)) if !k.is_empty() => {
                    params.push((k.to_ascii_lowercase(), v.to_string()))
                }
                _ => {
                    return Err(UserError::new(format!(
                        "`{}` is not an option: write parameters as name:value, such as /{} {}",
                        clip_plain(&w, 40),
                        job.name,
                        job.params
                            .iter()
                            .map(|p| format!("{}:…", p.name))
                            .collect::<Vec<_>>()
                            .join(" ")
                    )))
                }
            }
        }
        return Ok(Command::Build {
            job: job.name.clone(),
            params,
        });
    }
    parse_command(line, prefix)
}

/// Parses a console line all the way to a typed command.
pub fn parse_command(line: &str, prefix: &str) -> Result<Command, UserError> {
    let inv = parse_line(line)?;
    Command::from_args(inv.name, inv.args, prefix)
}
