//! A reload (`SIGHUP`): a new, validated config put in effect for every
//! later event, without a restart. The settings the running workers were
//! built from (the store, the listening address, the Discord login, the
//! mail, Jenkins and Alertmanager clients, the inbox, the log, the HTTP
//! tokens, the support intake's session checker, the `git` pollers) keep their
//! old value until a restart; the reload names those that changed.

use std::sync::Arc;

use crate::config::Config;
use crate::engine::{Engine, Event};
use crate::runtime::{Bot, BotError};

/// What a reload did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reloaded {
    /// The settings that changed but wait for a restart.
    pub restart: Vec<String>,
}

/// Sets the settings of `new` that only a restart changes back to `old`'s,
/// and names those that differed (by their place in `bot.toml`).
pub fn restart_only_changes(old: &Config, new: &mut Config) -> Vec<String> {
    // Every part is `Debug` (secrets print redacted): two parts are the
    // same setting when they print the same.
    fn same<T: std::fmt::Debug>(a: &T, b: &T) -> bool {
        format!("{a:?}") == format!("{b:?}")
    }
    let mut changed = Vec::new();
    if !same(&old.storage, &new.storage) || old.storage_path != new.storage_path {
        // sled's cache is sized when the files open: named alone when it
        // is all that changed.
        let mut cache_only = old.storage.clone();
        cache_only.cache = new.storage.cache;
        let only = same(&cache_only, &new.storage) && old.storage_path == new.storage_path;
        changed.push(if only { "[storage] cache" } else { "[storage]" }.to_string());
        new.storage = old.storage.clone();
        new.storage_path = old.storage_path.clone();
    }
    if old.http.listen != new.http.listen {
        changed.push("[http] listen".to_string());
        new.http.listen = old.http.listen;
    }
    if old.discord.token.var != new.discord.token.var {
        changed.push("[discord] token_env".to_string());
        new.discord.token = old.discord.token.clone();
    }
    if old.discord.guild_ids != new.discord.guild_ids {
        changed.push("[discord] guild".to_string());
        new.discord.guild_ids = old.discord.guild_ids.clone();
    }
    if !same(&old.log_format, &new.log_format) {
        changed.push("[log] format".to_string());
        new.log_format = old.log_format;
    }
    if !same(&old.smtp, &new.smtp) {
        changed.push("[smtp]".to_string());
        new.smtp = old.smtp.clone();
    }
    if !same(&old.jenkins, &new.jenkins) {
        changed.push("[jenkins]".to_string());
        new.jenkins = old.jenkins.clone();
    }
    if !same(&old.alerts.alertmanager, &new.alerts.alertmanager) {
        changed.push("[alerts.alertmanager]".to_string());
        new.alerts.alertmanager = old.alerts.alertmanager.clone();
    }
    // The HTTP intake's tokens and body limit, and the support intake's
    // secret, session checker and limits, are built once at start.
    let http = |c: &Config| {
        format!(
            "{:?}",
            (&c.http.token, &c.http.api_token, c.http.body_limit)
        )
    };
    if http(old) != http(new) {
        changed.push("[http] token_env, api_token_env, body_limit".to_string());
        new.http.token = old.http.token.clone();
        new.http.api_token = old.http.api_token.clone();
        new.http.body_limit = old.http.body_limit;
    }
    let intake = |c: &Config| {
        let s = &c.support;
        format!(
            "{:?}",
            (
                &s.secret,
                &s.session_url,
                s.session_timeout,
                s.per_customer_per_hour,
                s.per_minute,
                s.max_subject,
                s.max_message
            )
        )
    };
    if intake(old) != intake(new) {
        changed.push("[support] secret_env, session_url, session_timeout, limits".to_string());
        let s = &old.support;
        new.support.secret = s.secret.clone();
        new.support.session_url = s.session_url.clone();
        new.support.session_timeout = s.session_timeout;
        new.support.per_customer_per_hour = s.per_customer_per_hour;
        new.support.per_minute = s.per_minute;
        new.support.max_subject = s.max_subject;
        new.support.max_message = s.max_message;
    }
    // A `git` repository is polled by a task started for it at start.
    let git = |c: &Config| -> Vec<String> {
        c.repos
            .values()
            .filter(|r| r.provider == crate::domain::code::Provider::Git)
            .map(|r| format!("{r:?}"))
            .collect()
    };
    if git(old) != git(new) {
        changed.push("[repos] with provider = \"git\" (their pollers)".to_string());
        new.repos
            .retain(|_, r| r.provider != crate::domain::code::Provider::Git);
        for (k, r) in &old.repos {
            if r.provider == crate::domain::code::Provider::Git {
                new.repos.insert(k.clone(), r.clone());
            }
        }
    }
    if !same(&old.support.inbox, &new.support.inbox) {
        changed.push("[support.inbox]".to_string());
        new.support.inbox = old.support.inbox.clone();
    }
    // Discord sends a message's content only to a bot that asked for it
    // when it connected, which it does only with message rules: the rules
    // apply now (the console's messages), Discord's messages after a restart.
    if old.alerts.message_rules.is_empty() && !new.alerts.message_rules.is_empty() {
        changed.push("[[alerts.message_rules]] (for Discord's messages)".to_string());
    }
    changed
}

impl Bot {
    /// Puts `new` (loaded and validated) in effect: every batch the commit
    /// thread decides from now on, and every read of [`Bot::config`], sees
    /// it. The settings only a restart changes keep their old value; they
    /// are named in the answer. `#ops` is told once, by the new config's
    /// engine.
    pub async fn reload(&self, mut new: Config) -> Result<Reloaded, BotError> {
        let old = self.config();
        let restart = restart_only_changes(&old, &mut new);
        self.engine.store(Arc::new(Engine::new(Arc::new(new))));
        // A pass under the new config now, not at the next tick.
        self.timers.notify_one();
        self.submit(Event::ConfigReloaded {
            ok: true,
            problems: Vec::new(),
            restart: restart.clone(),
        })
        .await?;
        Ok(Reloaded { restart })
    }

    /// A reload refused: `problems` (each with its file, line and key) are
    /// told once in `#ops`; the running config stays.
    pub async fn reload_refused(&self, problems: Vec<String>) -> Result<(), BotError> {
        self.submit(Event::ConfigReloaded {
            ok: false,
            problems,
            restart: Vec::new(),
        })
        .await
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(dir: &std::path::Path, extra: &str) -> Config {
        let src = format!(
            "[roles]\noperators = [\"olivia\"]\n[teams.web]\nchannel = \"web\"\nmembers = [\"bob\"]\n{extra}"
        );
        Config::parse(&dir.join("bot.toml"), &src).unwrap().config
    }

    #[test]
    fn settings_only_a_restart_changes_keep_their_old_value_and_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let old = parse(dir.path(), "[http]\nlisten = \"127.0.0.1:8787\"\n");
        let mut new = parse(
            dir.path(),
            "[http]\nlisten = \"127.0.0.1:9999\"\n[teams.db]\nchannel = \"db\"\nmembers = [\"bob\"]\n",
        );
        let changed = restart_only_changes(&old, &mut new);
        assert_eq!(changed, vec!["[http] listen".to_string()]);
        assert_eq!(new.http.listen, old.http.listen, "the old address stays");
        assert!(
            new.org.teams.keys().any(|t| t.as_str() == "db"),
            "the rest is the new config's"
        );
        let mut same = parse(dir.path(), "[http]\nlisten = \"127.0.0.1:8787\"\n");
        assert!(restart_only_changes(&old, &mut same).is_empty());
        // The session checker is built at start: named, and kept.
        let mut session = parse(
            dir.path(),
            "[http]\nlisten = \"127.0.0.1:8787\"\n[support]\nsession_url = \"http://127.0.0.1:1/s\"\n",
        );
        assert_eq!(
            restart_only_changes(&old, &mut session),
            vec!["[support] secret_env, session_url, session_timeout, limits".to_string()]
        );
        assert_eq!(session.support.session_url, old.support.session_url);
        // The first message rule: Discord's messages need a reconnect.
        let rule = "[http]\nlisten = \"127.0.0.1:8787\"\n[[alerts.message_rules]]\nchannel = \"alerts\"\npattern = '^(?P<alertname>\\S+)'\n";
        let mut with_rule = parse(dir.path(), rule);
        assert_eq!(
            restart_only_changes(&old, &mut with_rule),
            vec!["[[alerts.message_rules]] (for Discord's messages)".to_string()]
        );
        assert_eq!(with_rule.alerts.message_rules.len(), 1, "the rule applies");
        let mut again = parse(dir.path(), rule);
        assert!(restart_only_changes(&with_rule, &mut again).is_empty());
        // sled's cache is sized when its files open: named, and kept.
        let mut cache = parse(
            dir.path(),
            "[http]\nlisten = \"127.0.0.1:8787\"\n[storage]\ncache = \"64MiB\"\n",
        );
        assert_eq!(
            restart_only_changes(&old, &mut cache),
            vec!["[storage] cache".to_string()]
        );
        assert_eq!(cache.storage.cache, old.storage.cache);
        assert_eq!(old.storage.cache, 256 * 1024 * 1024);
        let mut both = parse(
            dir.path(),
            "[http]\nlisten = \"127.0.0.1:8787\"\n[storage]\ncache = \"64MiB\"\nlease = \"20s\"\n",
        );
        assert_eq!(
            restart_only_changes(&old, &mut both),
            vec!["[storage]".to_string()]
        );
    }
}
