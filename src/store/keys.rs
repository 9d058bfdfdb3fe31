//! Keys and values: how records are laid out in the trees (see the table
//! in [`super`]), and how values are encoded and decoded.

use serde::{Deserialize, Serialize};

use crate::domain::{TeamName, Ticket, TicketId, TicketState, Timestamp};
use crate::error::StoreError;

pub(super) const SCHEMA_KEY: &[u8] = b"schema_version";
pub(super) const TICKET_SEQ: &[u8] = b"ticket_seq";
pub(super) const OUTBOX_SEQ: &[u8] = b"outbox_seq";
pub(super) const MAIL_SEQ: &[u8] = b"mail_seq";
pub(super) const JOB_SEQ: &[u8] = b"job_seq";
pub(super) const RUN_SEQ: &[u8] = b"run_seq";
pub(super) const SILENCES: &[u8] = b"silences";
pub(super) const SILENCED_SEQ: &[u8] = b"silenced_seq";
/// In `meta`: the maintenance windows, as JSON.
pub(super) const MAINTENANCE: &[u8] = b"maintenance";
/// In `meta`: the heartbeats' records, as JSON.
pub(super) const HEARTBEATS: &[u8] = b"heartbeats";
/// The counter of the Alertmanager queue (orders for its silences).
pub(super) const AM_SEQ: &[u8] = b"am_seq";

pub(super) fn be64(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

pub(super) fn read_u64(v: &[u8], tree: &'static str) -> Result<u64, StoreError> {
    let arr: [u8; 8] = v.try_into().map_err(|_| StoreError::Corrupt {
        tree,
        detail: format!("a counter of {} bytes", v.len()),
    })?;
    Ok(u64::from_be_bytes(arr))
}

/// The first byte of every record of schema 3: MessagePack follows it.
/// 0xC1 is the one byte MessagePack never uses, and no JSON text starts
/// with it, so a record of schema 2 (JSON, until the migration at open
/// rewrote it) is told apart by its first byte.
pub(super) const BINARY: u8 = 0xC1;

/// Decodes a record: MessagePack after [`BINARY`], else the JSON of
/// schema 2. Bytes that are neither, or that do not make a `T` (a value cut
/// short, bytes left over), are [`StoreError::Corrupt`].
pub(super) fn decode<T: for<'de> Deserialize<'de>>(
    v: &[u8],
    tree: &'static str,
) -> Result<T, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt { tree, detail };
    match v.split_first() {
        Some((&BINARY, body)) => {
            let mut de = rmp_serde::Deserializer::new(std::io::Cursor::new(body));
            let value = T::deserialize(&mut de).map_err(|e| corrupt(e.to_string()))?;
            let read = de.position();
            if read != body.len() as u64 {
                return Err(corrupt(format!(
                    "{} bytes left over after the record",
                    body.len() as u64 - read
                )));
            }
            Ok(value)
        }
        _ => serde_json::from_slice(v).map_err(|e| corrupt(e.to_string())),
    }
}

/// Whether a record is of schema 2 (JSON), to be rewritten by the migration.
pub(super) fn is_json(v: &[u8]) -> bool {
    v.first() != Some(&BINARY)
}

/// Encodes a record: [`BINARY`], then MessagePack with the fields of
/// structs named (so that `skip_serializing_if`, defaults, tagged and
/// untagged enums read back as they do in JSON). A record that cannot be
/// encoded is an error that refuses the write, never an empty value on disk.
pub(super) fn encode<T: Serialize>(v: &T, tree: &'static str) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::with_capacity(256);
    out.push(BINARY);
    rmp_serde::encode::write_named(&mut out, v).map_err(|e| StoreError::Encode {
        tree,
        detail: e.to_string(),
    })?;
    Ok(out)
}

pub(super) fn decode_id(v: &[u8]) -> Result<TicketId, StoreError> {
    let s = std::str::from_utf8(v).map_err(|e| StoreError::Corrupt {
        tree: "idempotency",
        detail: e.to_string(),
    })?;
    TicketId::try_from(s.to_string()).map_err(|detail| StoreError::Corrupt {
        tree: "idempotency",
        detail,
    })
}

pub(super) fn state_key(state: TicketState, num: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(9);
    k.push(state.code());
    k.extend_from_slice(&be64(num));
    k
}

pub(super) fn team_key(team: &TeamName, num: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(team.as_str().len() + 9);
    k.extend_from_slice(team.as_str().as_bytes());
    k.push(0);
    k.extend_from_slice(&be64(num));
    k
}

/// The first byte of the due index's keys in `by_state` (states are 0–5).
pub(super) const DUE: u8 = 0xD0;

pub(super) fn due_key(at: Timestamp, num: u64) -> [u8; 17] {
    let ms = at.timestamp_millis().max(0) as u64;
    let mut k = [0u8; 17];
    k[0] = DUE;
    k[1..9].copy_from_slice(&be64(ms));
    k[9..].copy_from_slice(&be64(num));
    k
}

pub(super) fn next_due(t: &Ticket) -> Option<Timestamp> {
    t.sla.as_ref().and_then(|s| s.next_due())
}

/// Whether a ticket counts toward its assignee's load.
pub(super) fn loads(t: &Ticket) -> Option<&crate::domain::UserName> {
    match t.state {
        TicketState::Assigned | TicketState::InProgress => t.assignee.as_ref(),
        _ => None,
    }
}

/// Set once people's loads have been counted from the tickets.
pub(super) const LOADS_COUNTED: &[u8] = b"loads_counted";

pub(super) fn load_key(user: &crate::domain::UserName) -> Vec<u8> {
    format!("load:{user}").into_bytes()
}

/// The first byte of an alert's key in `groups`: never the first byte of
/// a group key (UTF-8 text), so groups and their alerts do not mix.
pub(super) const MEMBER: u8 = 0xFF;

pub(super) fn member_key(group: &str, fingerprint: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(5 + group.len() + fingerprint.len());
    k.push(MEMBER);
    // A key is far shorter than 4 GiB: the request body limit bounds it.
    k.extend_from_slice(&u32::try_from(group.len()).unwrap_or(u32::MAX).to_be_bytes());
    k.extend_from_slice(group.as_bytes());
    k.extend_from_slice(fingerprint.as_bytes());
    k
}

pub(super) fn member_prefix(group: &str) -> Vec<u8> {
    member_key(group, "")
}

pub(super) fn timeline_key(num: u64, seq: u32) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..8].copy_from_slice(&be64(num));
    k[8..].copy_from_slice(&seq.to_be_bytes());
    k
}

pub(super) fn num_suffix(key: &[u8]) -> Option<u64> {
    let tail: [u8; 8] = key.get(key.len().checked_sub(8)?..)?.try_into().ok()?;
    Some(u64::from_be_bytes(tail))
}

// The public records, in `meta`.

/// The key the customers' page links are signed with: 32 random bytes,
/// made once when the store opens.
pub(super) const LINK_KEY: &[u8] = b"link_key";
/// The status page's board: [`crate::domain::status::StatusBoard`], JSON.
pub(super) const STATUS_BOARD: &[u8] = b"status_board";
/// The first bytes of a public incident's key.
pub(super) const INCIDENT: &[u8] = b"incident:";

fn numbered(prefix: &[u8], num: u64) -> Vec<u8> {
    let mut k = prefix.to_vec();
    k.extend_from_slice(&be64(num));
    k
}

/// A ticket's link generation, u64 BE.
pub(super) fn link_gen_key(num: u64) -> Vec<u8> {
    numbered(b"linkgen:", num)
}

/// The seqs of a ticket's entries its customer may see, JSON.
pub(super) fn visible_key(num: u64) -> Vec<u8> {
    numbered(b"custvis:", num)
}

/// A ticket's public incident, JSON.
pub(super) fn incident_key(num: u64) -> Vec<u8> {
    numbered(INCIDENT, num)
}
/// In `meta`: the customer's Message-ID a ticket's mail thread answers
/// (`Write::MailThread`), as UTF-8.
pub(super) fn mail_thread_key(id: &TicketId) -> Vec<u8> {
    let mut k = b"mailthread:".to_vec();
    k.extend_from_slice(&be64(id.num()));
    k
}
/// The code loop's record of a branch (`repo/branch`), in `meta`.
pub(super) fn branch_key(key: &str) -> Vec<u8> {
    format!("branch:{key}").into_bytes()
}
