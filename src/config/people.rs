//! `[people.NAME]`: what the bot knows of a person beyond their roles and
//! teams (issue 15): the address a page is mailed to.
//!
//! ```toml
//! [people.bob]
//! email = "bob@example.com"   # pages are mailed here too
//! emails = ["bob@users.noreply.github.com"]  # their commits' addresses
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

use super::written::Written;
use crate::config::Validator;
use crate::domain::UserName;

/// `[people.NAME]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPerson {
    #[serde(default)]
    pub(super) email: Option<Written<String>>,
    /// The addresses their commits carry (the code loop names authors).
    #[serde(default)]
    pub(super) emails: Vec<Written<String>>,
}

/// A person's settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Person {
    /// Pages to them are mailed here too.
    pub email: Option<String>,
}

/// Whether `s` reads as one mail address: `local@domain`, no space, at most
/// 254 characters (the mail server has the last word).
fn mail_address(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    s.len() <= 254
        && !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && s.chars()
            .all(|c| c.is_ascii_graphic() && !"<>()[]\\,;:\"".contains(c))
}

impl Validator<'_> {
    pub(super) fn validate_people(
        &mut self,
        raw: &BTreeMap<Written<String>, RawPerson>,
        known: &[UserName],
    ) -> BTreeMap<UserName, Person> {
        let mut out = BTreeMap::new();
        for (name, p) in raw {
            let key = format!("people.{name}");
            let user = match UserName::parse(name) {
                Ok(u) if known.contains(&u) => u,
                _ => {
                    let names: Vec<&str> = known.iter().map(|u| u.as_str()).collect();
                    self.error(
                        key,
                        name.span(),
                        format!(
                            "`{name}` is nobody bot.toml names (in [roles] or a team); people: {}",
                            names.join(", ")
                        ),
                    );
                    continue;
                }
            };
            let email = match &p.email {
                Some(e) if mail_address(e.trim()) => Some(e.trim().to_string()),
                Some(e) => {
                    self.error(
                        format!("{key}.email"),
                        e.span(),
                        format!("`{e}` is not a mail address, such as \"bob@example.com\""),
                    );
                    None
                }
                None => None,
            };
            out.insert(user, Person { email });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::mail_address;

    #[test]
    fn mail_addresses() {
        for ok in ["bob@example.com", "bob+pages@ops.example.org"] {
            assert!(mail_address(ok), "{ok}");
        }
        for bad in [
            "",
            "bob",
            "bob@",
            "@example.com",
            "bob@localhost",
            "b ob@example.com",
            "a@b@c.com",
            "bob@example.com\nBcc: x@y.z",
        ] {
            assert!(!mail_address(bad), "{bad:?}");
        }
    }
}
