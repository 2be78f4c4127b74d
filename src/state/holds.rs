//! The routes held as the decisions left them: kept in memory by the writer, saved whole
//! now and then (a snapshot: `held_snapshot`, binary, like the log), and rebuilt on
//! opening from that snapshot plus the decisions logged after it.
//!
//! Why not a row written per decision (schema 2): a quarantine and its end cost an insert
//! and a delete in an indexed table, 3 µs a decision on the BMP bench; and rows changed
//! since the last snapshot, written as rows, still cost 1.5 µs each. A map costs a hash
//! look-up; a snapshot of 100,000 held routes is 6 MB written in one go. It is taken at
//! each checkpoint and before the log could lose a decision the snapshot does not have
//! yet (see [`super::Store::write_decisions`]).

use super::record::{self, Item};
use super::StoredHold;
use crate::judge::{claim_id, Decision, HeldRoute, Outcome};
use crate::model::{Asn, EventTime};
use ipnet::IpNet;
use rusqlite::{Connection, OptionalExtension};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::net::IpAddr;

/// A route: prefix, origin, peer, peer AS, path id (0 for none).
pub(crate) type HoldKey = (IpNet, Option<u32>, IpAddr, u32, u32);

/// What is kept of a held route; the snapshot's record (postcard: fields by position,
/// only ever added at the end).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Hold {
    outcome: Outcome,
    since: i64,
    seq: u64,
    run: i64,
    /// Inline: a route is almost always held by one rule, and a held route costs no
    /// allocation here.
    rules: smallvec::SmallVec<[Cow<'static, str>; 1]>,
}

/// A snapshot's entry, as written (borrowed) ...
#[derive(Serialize)]
struct EntryRef<'a> {
    key: &'a HoldKey,
    hold: &'a Hold,
}

/// ... and as read.
#[derive(Deserialize)]
struct Entry {
    key: HoldKey,
    hold: Hold,
}

/// The held routes.
#[derive(Debug, Default)]
pub(crate) struct Holds {
    map: FxHashMap<HoldKey, Hold>,
    /// The last decision the snapshot includes.
    pub(crate) snapshot_seq: u64,
    /// Decisions applied since the snapshot.
    pub(crate) since_snapshot: u64,
}

fn key_of(d: &Decision) -> HoldKey {
    (
        d.prefix,
        d.origin.map(|a| a.0),
        d.peer,
        d.peer_asn.0,
        d.path_id.unwrap_or(0),
    )
}

impl Holds {
    fn set(&mut self, key: HoldKey, hold: Option<Hold>) {
        match hold {
            Some(h) => {
                self.map.insert(key, h);
            }
            None => {
                self.map.remove(&key);
            }
        }
        self.since_snapshot += 1;
    }

    /// Applies one decision of run `run`.
    pub(crate) fn apply(&mut self, d: &Decision, run: i64) {
        let hold = d.outcome.is_held().then(|| Hold {
            outcome: d.outcome,
            since: d.since.0,
            seq: d.seq,
            run,
            rules: d.reasons.iter().map(|r| r.rule.clone()).collect(),
        });
        self.set(key_of(d), hold);
    }

    fn apply_record(&mut self, r: record::Record, run: i64) {
        let key = (
            r.prefix,
            r.origin,
            r.peer,
            r.peer_asn,
            r.path_id.unwrap_or(0),
        );
        let hold = r.outcome.is_held().then(|| Hold {
            outcome: r.outcome,
            since: r.since,
            seq: r.seq,
            run,
            rules: r
                .reasons
                .into_iter()
                .map(|r| Cow::Owned(r.rule.into_owned()))
                .collect(),
        });
        self.set(key, hold);
    }

    /// Forgets the routes held by runs before `run`; returns how many.
    pub(crate) fn drop_before(&mut self, run: i64) -> usize {
        let before = self.map.len();
        self.map.retain(|_, h| h.run >= run);
        before - self.map.len()
    }

    /// Saves them all (in rows of 4,096); the snapshot then includes every decision up
    /// to `seq`.
    /// A transaction that wrote a snapshot failed: the file still has the one taken at
    /// `seq`, and the next write takes a new one (so no decision the file's snapshot lacks
    /// is ever deleted, and a retried decision, applied here twice, is the same hold).
    pub(crate) fn unsaved(&mut self, seq: u64) {
        self.snapshot_seq = seq;
        self.since_snapshot = u64::MAX / 2;
    }

    pub(crate) fn write_snapshot(
        &mut self,
        tx: &rusqlite::Transaction<'_>,
        seq: u64,
    ) -> rusqlite::Result<()> {
        tx.execute("DELETE FROM held_snapshot", [])?;
        let mut ins = tx.prepare_cached("INSERT INTO held_snapshot (data) VALUES (?1)")?;
        let mut chunk = Vec::new();
        let mut n = 0;
        for (key, hold) in &self.map {
            record::append(&mut chunk, &EntryRef { key, hold });
            n += 1;
            if n % 4096 == 0 {
                ins.execute([&chunk])?;
                chunk.clear();
            }
        }
        if !chunk.is_empty() {
            ins.execute([&chunk])?;
        }
        tx.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('held_seq', ?1)",
            [i64::try_from(seq).unwrap_or(i64::MAX)],
        )?;
        self.snapshot_seq = seq;
        self.since_snapshot = 0;
        Ok(())
    }

    /// The snapshot, then the decisions logged after it; with the number of rows that did
    /// not read (what was read before the damage is kept).
    pub(crate) fn load(conn: &Connection, run: i64) -> rusqlite::Result<(Holds, usize)> {
        let mut holds = Holds::default();
        let mut damaged = 0;
        let snapshot_seq: i64 = conn
            .query_row("SELECT value FROM meta WHERE key = 'held_seq'", [], |r| {
                r.get(0)
            })
            .optional()?
            .unwrap_or(0);
        let mut q = conn.prepare("SELECT data FROM held_snapshot")?;
        let mut rows = q.query([])?;
        while let Some(r) = rows.next()? {
            let data: Vec<u8> = r.get(0)?;
            let mut bytes = &data[..];
            while !bytes.is_empty() {
                match postcard::take_from_bytes::<Entry>(bytes) {
                    Ok((e, rest)) => {
                        holds.map.insert(e.key, e.hold);
                        bytes = rest;
                    }
                    Err(_) => {
                        damaged += 1;
                        break;
                    }
                }
            }
        }
        let mut q = conn
            .prepare("SELECT data FROM decision_batches WHERE last_seq > ?1 ORDER BY last_seq")?;
        let mut rows = q.query([snapshot_seq])?;
        let snapshot_seq = u64::try_from(snapshot_seq).unwrap_or(0);
        while let Some(r) = rows.next()? {
            let items = match record::read(&r.get::<_, Vec<u8>>(0)?) {
                Ok(items) => items,
                Err((items, _)) => {
                    damaged += 1;
                    items
                }
            };
            for item in items {
                if let Item::Record(rec) = item {
                    if rec.seq > snapshot_seq {
                        // Decisions of an earlier run (the log holds them as such).
                        holds.apply_record(rec, run - 1);
                    }
                }
            }
        }
        holds.snapshot_seq = snapshot_seq;
        holds.since_snapshot = 0;
        Ok((holds, damaged))
    }

    /// The rows of a schema 2 file's quarantine table (the routes held as its last
    /// decision left them), with the number that did not read.
    pub(crate) fn read_v2_table(conn: &Connection) -> rusqlite::Result<(Holds, usize)> {
        let mut holds = Holds::default();
        let mut damaged = 0;
        let mut q = conn.prepare(
            "SELECT prefix, origin, peer, peer_asn, path_id, outcome, since, rules, seq, run \
             FROM quarantine",
        )?;
        let mut rows = q.query([])?;
        while let Some(r) = rows.next()? {
            let (Ok(prefix), Ok(peer)) = (
                r.get::<_, String>(0)?.parse::<IpNet>(),
                r.get::<_, String>(2)?.parse::<IpAddr>(),
            ) else {
                damaged += 1;
                continue;
            };
            let origin = r
                .get::<_, Option<i64>>(1)?
                .and_then(|o| u32::try_from(o).ok());
            let asn = u32::try_from(r.get::<_, i64>(3)?).unwrap_or(0);
            let path_id = u32::try_from(r.get::<_, i64>(4)?).unwrap_or(0);
            let rules: Vec<String> =
                serde_json::from_str(&r.get::<_, String>(7)?).unwrap_or_default();
            let hold = Hold {
                outcome: super::outcome_of(&r.get::<_, String>(5)?),
                since: r.get(6)?,
                rules: rules.into_iter().map(Cow::Owned).collect(),
                seq: u64::try_from(r.get::<_, i64>(8)?).unwrap_or(0),
                run: r.get(9)?,
            };
            holds
                .map
                .insert((prefix.trunc(), origin, peer, asn, path_id), hold);
        }
        Ok((holds, damaged))
    }

    /// The held routes, in the order they were held.
    pub(crate) fn list(&self) -> Vec<StoredHold> {
        let mut out: Vec<StoredHold> = self
            .map
            .iter()
            .map(|(&(prefix, origin, peer, asn, path_id), h)| StoredHold {
                route: HeldRoute {
                    id: claim_id(&prefix, origin.map(Asn)),
                    prefix,
                    origin: origin.map(Asn),
                    peer,
                    peer_asn: Asn(asn),
                    path_id: (path_id != 0).then_some(path_id),
                    outcome: h.outcome,
                    since: EventTime(h.since),
                    rules: h.rules.iter().map(|r| r.to_string()).collect(),
                },
                seq: h.seq,
            })
            .collect();
        out.sort_by(|a, b| (a.seq, a.key()).cmp(&(b.seq, b.key())));
        out
    }
}
