//! Option values checked against a command's declaration, then typed.

use std::collections::BTreeMap;

use super::*;
use crate::domain::error::UserError;
use crate::domain::rich::clip_plain;
use crate::domain::{TeamName, TicketId, UserName};

/// Option values checked against a declaration.
pub(super) struct Args {
    spec: Spec,
    values: BTreeMap<&'static str, String>,
}

impl Args {
    pub(super) fn check(spec: &Spec, args: Vec<(String, String)>) -> Result<Args, UserError> {
        let mut values = BTreeMap::new();
        let names = || {
            spec.options
                .iter()
                .map(|o| o.name)
                .collect::<Vec<_>>()
                .join(", ")
        };
        for (k, v) in args {
            let Some(o) = spec.option(&k) else {
                let known = if spec.options.is_empty() {
                    "it takes no options".to_string()
                } else {
                    format!("its options are: {}", names())
                };
                return Err(UserError::new(format!(
                    "/{} has no option `{}`; {known}",
                    spec.full_name(),
                    clip_plain(&k, 40)
                )));
            };
            if values.insert(o.name, v).is_some() {
                return Err(UserError::new(format!(
                    "option `{}` is given twice; give it once",
                    o.name
                )));
            }
        }
        for o in spec.options.iter().filter(|o| o.required) {
            if !values.contains_key(o.name) {
                return Err(UserError::new(format!(
                    "/{} needs `{}:` ({}); usage: {}",
                    spec.full_name(),
                    o.name,
                    o.description,
                    spec.usage()
                )));
            }
        }
        for (k, v) in &values {
            let Some(o) = spec.option(k) else { continue };
            if let Some(choices) = o.kind.choices() {
                if !choices.iter().any(|c| c.eq_ignore_ascii_case(v.trim())) {
                    return Err(UserError::new(format!(
                        "`{}` must be one of {}; got `{}`",
                        o.name,
                        choices.join(", "),
                        clip_plain(v, 40)
                    )));
                }
            }
            let limit = match o.kind {
                OptKind::Text { max } => Some(max),
                OptKind::Matchers | OptKind::Duration => Some(1000),
                _ => None,
            };
            if let Some(max) = limit {
                let len = v.trim().chars().count();
                if len == 0 {
                    return Err(UserError::new(format!(
                        "`{}` must not be empty: {}",
                        o.name, o.description
                    )));
                }
                if len > max {
                    return Err(UserError::new(format!(
                        "`{}` is {len} characters long; the limit is {max}",
                        o.name
                    )));
                }
            }
        }
        Ok(Args {
            spec: *spec,
            values,
        })
    }

    pub(super) fn take(&mut self, name: &str) -> Option<String> {
        debug_assert!(self.spec.option(name).is_some(), "undeclared option {name}");
        self.values.remove(name)
    }

    pub(super) fn text(&mut self, name: &str) -> Result<String, UserError> {
        self.take(name)
            .map(|v| v.trim().to_string())
            .ok_or_else(|| UserError::new(format!("`{name}:` is required")))
    }

    pub(super) fn opt_text(&mut self, name: &str) -> Result<Option<String>, UserError> {
        Ok(self.take(name).map(|v| v.trim().to_string()))
    }

    pub(super) fn opt_parse<T: std::str::FromStr<Err = UserError>>(
        &mut self,
        name: &str,
    ) -> Result<Option<T>, UserError> {
        self.take(name).map(|v| v.parse::<T>()).transpose()
    }

    pub(super) fn opt_team(&mut self, name: &str) -> Result<Option<TeamName>, UserError> {
        self.take(name).map(|v| TeamName::parse(&v)).transpose()
    }

    pub(super) fn opt_user(&mut self, name: &str) -> Result<Option<UserName>, UserError> {
        self.take(name)
            .map(|v| UserName::parse(v.trim().trim_start_matches('@')))
            .transpose()
    }

    pub(super) fn opt_bool(&mut self, name: &str) -> Result<Option<bool>, UserError> {
        Ok(self
            .take(name)
            .map(|v| v.trim().eq_ignore_ascii_case("true")))
    }

    pub(super) fn integer(&mut self, name: &str) -> Result<u64, UserError> {
        let raw = self.text(name)?;
        raw.trim_start_matches('#')
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                UserError::new(format!(
                    "`{name}` must be a whole number such as 3; got `{}`",
                    clip_plain(&raw, 40)
                ))
            })
    }

    pub(super) fn opt_integer(&mut self, name: &str) -> Result<Option<u64>, UserError> {
        if self.values.contains_key(name) {
            self.integer(name).map(Some)
        } else {
            Ok(None)
        }
    }

    pub(super) fn duration(&mut self, name: &str) -> Result<std::time::Duration, UserError> {
        let raw = self.text(name)?;
        match humantime::parse_duration(&raw) {
            Ok(d) if d.as_secs() >= 60 && d.as_secs() <= 30 * 86400 => Ok(d),
            _ => Err(UserError::new(format!(
                "`{name}` must be a duration from 1m to 30d, such as 30m, 2h or 1d; got `{}`",
                clip_plain(&raw, 40)
            ))),
        }
    }

    pub(super) fn ticket(&mut self, prefix: &str) -> Result<TicketId, UserError> {
        let raw = self
            .take("id")
            .ok_or_else(|| UserError::new("`id:` is required"))?;
        TicketId::parse(&raw, prefix)
    }
}
