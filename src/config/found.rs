//! Discord ids found by name once the bot is connected: the channels the
//! config names, looked up in the guild, and the people whose
//! `[discord.users]` entry is a username, looked up among its members.
//! Shared by every clone of the config and written only by the Discord
//! adapter; an id written in `bot.toml` always wins over one found here.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

use crate::domain::{ChannelName, UserName};

/// The ids found so far (none before the bot connects, nor in the console).
#[derive(Clone, Debug, Default)]
pub struct Found(Arc<RwLock<FoundIds>>);

/// What [`Found`] holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FoundIds {
    pub channels: BTreeMap<ChannelName, u64>,
    pub users: BTreeMap<UserName, u64>,
    /// Whether the adapter has looked the names up once since it connected.
    pub looked: bool,
}

impl Found {
    fn read<T>(&self, f: impl FnOnce(&FoundIds) -> T) -> T {
        f(&self.0.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn write<T>(&self, f: impl FnOnce(&mut FoundIds) -> T) -> T {
        f(&mut self.0.write().unwrap_or_else(PoisonError::into_inner))
    }

    pub fn channel_id(&self, name: &ChannelName) -> Option<u64> {
        self.read(|f| f.channels.get(name).copied())
    }

    pub fn channel_name(&self, id: u64) -> Option<ChannelName> {
        self.read(|f| {
            f.channels
                .iter()
                .find(|(_, v)| **v == id)
                .map(|(k, _)| k.clone())
        })
    }

    pub fn user_id(&self, name: &UserName) -> Option<u64> {
        self.read(|f| f.users.get(name).copied())
    }

    pub fn user_name(&self, id: u64) -> Option<UserName> {
        self.read(|f| {
            f.users
                .iter()
                .find(|(_, v)| **v == id)
                .map(|(k, _)| k.clone())
        })
    }

    /// Notes channel `name` as `id` (`None`: no longer found); says whether
    /// that changed anything.
    pub fn set_channel(&self, name: &ChannelName, id: Option<u64>) -> bool {
        self.write(|f| match id {
            Some(id) => f.channels.insert(name.clone(), id) != Some(id),
            None => f.channels.remove(name).is_some(),
        })
    }

    pub fn set_user(&self, name: &UserName, id: u64) -> bool {
        self.write(|f| f.users.insert(name.clone(), id) != Some(id))
    }

    /// Notes that the names have been looked up once.
    pub fn set_looked(&self) {
        self.write(|f| f.looked = true)
    }

    pub fn looked(&self) -> bool {
        self.read(|f| f.looked)
    }

    pub fn snapshot(&self) -> FoundIds {
        self.read(Clone::clone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_clone_sees_what_one_found() {
        let a = Found::default();
        let b = a.clone();
        let ops = ChannelName::parse("ops").unwrap();
        assert!(a.set_channel(&ops, Some(7)));
        assert!(!a.set_channel(&ops, Some(7)));
        assert_eq!(b.channel_id(&ops), Some(7));
        assert_eq!(b.channel_name(7), Some(ops.clone()));
        assert!(b.set_channel(&ops, None));
        assert_eq!(a.channel_id(&ops), None);
        let bob = UserName::parse("bob").unwrap();
        assert!(a.set_user(&bob, 9));
        assert_eq!(b.user_name(9), Some(bob));
    }
}
