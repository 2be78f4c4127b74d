//! The daemon's state in SQLite (rusqlite with SQLite bundled, so no system library is
//! needed): the decision log, the quarantine as the decisions left it, and what the judge
//! needs to take up where it left off ([`Saved`]: peer trust with its counts, established
//! claims, operator holds and releases, its clock and decision numbering).
//!
//! What is written when:
//! - decisions, as one row of binary records per batch (`record`), in one transaction,
//!   *before* the API shows them: whatever the API or a webhook has seen is on disk;
//! - a snapshot of the routes held (`holds`), at each checkpoint and whenever the
//!   decisions since the last one reach a quarter of the log; opening the file applies the
//!   decisions logged after it, so the routes restored are those the last decision written
//!   left held;
//! - an operator's hold or release is committed before the API answers it;
//! - trust, the judge's clock and the established claims at a checkpoint (every
//!   `state.checkpoint`, after the demo replay, and at shutdown; the claims only when they
//!   changed). A kill -9 loses at most the trust evidence and establishments since the
//!   last checkpoint; never a decision or an operator's action.
//!
//! Durability: WAL with `synchronous=NORMAL`: a committed transaction survives the process
//! dying (kill -9, a panic, the OOM killer); a power cut may lose the last transactions
//! (SQLite's own guarantee for this mode), never the file.

pub mod check;
mod holds;
pub(crate) mod record;

use crate::judge::trust::{TrustCounts, TrustScore};
use crate::judge::{
    claim_id, Decision, HeldRoute, OperatorAction, Outcome, Saved, SavedClaim, SavedOperator,
    SavedTrust,
};
use crate::model::{Asn, EventTime};
use holds::Holds;
use ipnet::IpNet;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde::Serialize;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The schema this build writes; a file of version 1 or 2 is migrated, one of another
/// version is refused, not guessed at.
///
/// Version 3: the decision log is a row of binary records per batch (`decision_batches`)
/// and the held routes a binary snapshot (`held_snapshot`; `meta.held_seq` names its last
/// decision).
/// Version 2 kept a JSON row per decision, and the quarantine table written with each.
/// Version 1 also kept time, outcome, prefix, origin, peer and peer AS in columns of their
/// own that nothing read.
const SCHEMA_VERSION: i64 = 3;

/// From version 1: the decision log without its unread columns (in one transaction).
const MIGRATE_1_TO_2: &str = "
BEGIN;
CREATE TABLE decisions_v2 (seq INTEGER PRIMARY KEY, json TEXT NOT NULL);
INSERT INTO decisions_v2 (seq, json) SELECT seq, json FROM decisions;
DROP TABLE decisions;
ALTER TABLE decisions_v2 RENAME TO decisions;
UPDATE meta SET value = 2 WHERE key = 'schema';
COMMIT;
";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS decision_batches (
    last_seq INTEGER PRIMARY KEY, first_seq INTEGER NOT NULL, n INTEGER NOT NULL,
    data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS held_snapshot (data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS trust (
    feed TEXT NOT NULL, addr TEXT NOT NULL, asn INTEGER NOT NULL,
    good REAL NOT NULL, bad REAL NOT NULL, at INTEGER NOT NULL, counts TEXT NOT NULL,
    PRIMARY KEY (feed, addr, asn));
CREATE TABLE IF NOT EXISTS claims (
    prefix TEXT NOT NULL, origin INTEGER, established INTEGER NOT NULL, gone_since INTEGER);
CREATE TABLE IF NOT EXISTS operators (
    prefix TEXT NOT NULL, origin INTEGER, action TEXT NOT NULL, note TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS actions (seq INTEGER PRIMARY KEY AUTOINCREMENT, json TEXT NOT NULL);
";

/// From version 2: each JSON row becomes an item of a batch (served as it was written);
/// the quarantine table, written with every decision, becomes the first snapshot.
fn migrate_2_to_3(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    // A version 1 file went through version 2 without its tables.
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS quarantine (
            id TEXT NOT NULL, peer TEXT NOT NULL, peer_asn INTEGER NOT NULL,
            path_id INTEGER NOT NULL, prefix TEXT NOT NULL, origin INTEGER,
            outcome TEXT NOT NULL, since INTEGER NOT NULL, seq INTEGER NOT NULL,
            rules TEXT NOT NULL, run INTEGER NOT NULL,
            PRIMARY KEY (id, peer, peer_asn, path_id));",
    )?;
    {
        let mut q = tx.prepare("SELECT seq, json FROM decisions ORDER BY seq")?;
        let mut rows = q.query([])?;
        let mut ins = tx.prepare(
            "INSERT OR REPLACE INTO decision_batches (last_seq, first_seq, n, data) \
             VALUES (?1, ?2, ?3, ?4)",
        )?;
        let (mut batch, mut first, mut last, mut n) = (Vec::new(), 0u64, 0u64, 0i64);
        let mut flush = |batch: &mut Vec<u8>, first: u64, last: u64, n: &mut i64| {
            if *n > 0 {
                ins.execute(params![
                    i64::try_from(last).unwrap_or(i64::MAX),
                    i64::try_from(first).unwrap_or(i64::MAX),
                    *n,
                    &batch[..]
                ])?;
            }
            batch.clear();
            *n = 0;
            Ok::<(), rusqlite::Error>(())
        };
        while let Some(r) = rows.next()? {
            let seq = u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0);
            if n == 0 {
                first = seq;
            }
            last = seq;
            record::append(
                &mut batch,
                &record::Item::Json {
                    seq,
                    json: r.get(1)?,
                },
            );
            n += 1;
            if n == 4096 {
                flush(&mut batch, first, last, &mut n)?;
            }
        }
        flush(&mut batch, first, last, &mut n)?;
        let (mut holds, damaged) = Holds::read_v2_table(&tx)?;
        if damaged > 0 {
            tracing::warn!("state: {damaged} rows of the quarantine table did not read: skipped");
        }
        holds.write_snapshot(&tx, last)?;
    }
    tx.execute_batch(
        "DROP TABLE decisions; DROP TABLE quarantine; \
         UPDATE meta SET value = 3 WHERE key = 'schema';",
    )?;
    tx.commit()
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{}: {source}", .path.display())]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("{}: schema version {found}, this build reads {SCHEMA_VERSION} (move the file away to start afresh)", .path.display())]
    Version { path: PathBuf, found: i64 },
    /// Moving or renaming the file (repair, `--new-state`) failed.
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is damaged, or empty where a state was expected (see [`check`]).
    #[error("{}: {why}; refusing to start on it: {}", .path.display(), check::ways_out(.path))]
    Refused { path: PathBuf, why: String },
}

/// A route held when its decision was written.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoredHold {
    /// As the judge lists it (the rules are those of the decision).
    #[serde(flatten)]
    pub route: HeldRoute,
    /// The decision that held it.
    pub seq: u64,
}

impl StoredHold {
    /// The route it names: (claim id, peer, peer AS, path id).
    pub fn key(&self) -> (&str, IpAddr, Asn, u32) {
        let r = &self.route;
        (&r.id, r.peer, r.peer_asn, r.path_id.unwrap_or(0))
    }
}

/// The key of the route a decision is about (see [`StoredHold::key`]).
pub fn decision_key(d: &Decision) -> (String, IpAddr, Asn, u32) {
    (
        claim_id(&d.prefix, d.origin),
        d.peer,
        d.peer_asn,
        d.path_id.unwrap_or(0),
    )
}

/// What a store held when opened.
#[derive(Debug, Default)]
pub struct Restored {
    /// The judge's saved state; `None` for a new store.
    pub saved: Option<Saved>,
    /// Routes held at the last stop (their routers have not re-sent them yet).
    pub quarantine: Vec<StoredHold>,
    /// Decisions in the log.
    pub decisions: u64,
    /// This run's number (1 for a new store).
    pub run: i64,
    /// Rows that did not read and were skipped.
    pub damaged: usize,
}

/// The writer's connection.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    run: i64,
    keep_decisions: u64,
    holds: Holds,
    /// The last decision written.
    last_seq: u64,
}

fn origin_col(o: Option<Asn>) -> Option<i64> {
    o.map(|a| i64::from(a.0))
}

fn origin_of(v: Option<i64>) -> Option<Asn> {
    v.and_then(|a| u32::try_from(a).ok()).map(Asn)
}

fn action_name(a: OperatorAction) -> &'static str {
    match a {
        OperatorAction::Hold => "hold",
        OperatorAction::Release => "release",
    }
}

fn outcome_of(s: &str) -> Outcome {
    match s {
        "quarantine" => Outcome::Quarantine,
        "reject" => Outcome::Reject,
        "withdrawn" => Outcome::Withdrawn,
        _ => Outcome::Propagate,
    }
}

impl Store {
    /// Opens (creating when missing) the store at `path`; starts a new run. Keeps the last
    /// `keep_decisions` decisions.
    pub fn open(path: &Path, keep_decisions: u64) -> Result<(Store, Restored), StateError> {
        Self::open_with(path, keep_decisions, false)
    }

    /// [`Self::open`], after [`check::check`]: a damaged file is refused, and so is a
    /// 0-byte or table-less one unless `new_state`, which moves it aside and starts afresh.
    pub fn open_with(
        path: &Path,
        keep_decisions: u64,
        new_state: bool,
    ) -> Result<(Store, Restored), StateError> {
        let started = std::time::Instant::now();
        let refused = |why: String| StateError::Refused {
            path: path.to_path_buf(),
            why,
        };
        match check::check(path)? {
            check::Health::Missing | check::Health::Whole => {}
            check::Health::Empty(what) if !new_state => {
                return Err(refused(format!(
                    "{what}: not a new state (a full disk or a truncation leaves this; taking \
                     it as new would drop every claim, trust score and hold)"
                )))
            }
            check::Health::Damaged(why) if !new_state => {
                return Err(refused(format!("damaged ({})", why.join("; "))))
            }
            _ => {
                let to = check::move_aside(path, "old").map_err(|source| StateError::Io {
                    path: path.to_path_buf(),
                    source,
                })?;
                tracing::warn!(
                    "state: --new-state: {} moved aside to {}; starting afresh",
                    path.display(),
                    to.display()
                );
            }
        }
        tracing::debug!("state: checked in {:?}", started.elapsed());
        let err = |source| StateError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        let mut conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(err)?;
        // Larger pages for a log of ~600-byte rows (set before the first table exists).
        conn.pragma_update(None, "page_size", 16384).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "wal_autocheckpoint", 4096)
            .map_err(err)?;
        conn.pragma_update(None, "cache_size", -32768)
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        let get = |conn: &Connection, key: &str| -> Result<Option<i64>, StateError> {
            conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                .optional()
                .map_err(err)
        };
        match get(&conn, "schema")? {
            None => {
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema', ?1)",
                    [SCHEMA_VERSION],
                )
                .map_err(err)?;
            }
            Some(v) if v == SCHEMA_VERSION => {}
            Some(from @ (1 | 2)) => {
                if from == 1 {
                    conn.execute_batch(MIGRATE_1_TO_2).map_err(err)?;
                }
                migrate_2_to_3(&mut conn).map_err(err)?;
                tracing::info!(
                    "state {}: migrated from schema version {from} to {SCHEMA_VERSION} (the \
                     decisions logged before are served as they were written)",
                    path.display()
                );
            }
            Some(found) => {
                return Err(StateError::Version {
                    path: path.to_path_buf(),
                    found,
                })
            }
        }
        let run = get(&conn, "run")?.unwrap_or(0) + 1;
        conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('run', ?1)",
            [run],
        )
        .map_err(err)?;
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
            run,
            keep_decisions,
            holds: Holds::default(),
            last_seq: 0,
        };
        let restored = store.load(run).map_err(err)?;
        Ok((store, restored))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` in one transaction, committed when it succeeds.
    fn in_transaction(
        &mut self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<()>,
    ) -> Result<(), StateError> {
        let tx = self.conn.transaction().map_err(|e| StateError::Sqlite {
            path: self.path.clone(),
            source: e,
        })?;
        let res = f(&tx);
        res.and_then(|()| tx.commit()).map_err(|e| self.err(e))
    }

    fn err(&self, source: rusqlite::Error) -> StateError {
        StateError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn load(&mut self, run: i64) -> rusqlite::Result<Restored> {
        let c = &self.conn;
        let meta = |key: &str| -> rusqlite::Result<Option<i64>> {
            c.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                .optional()
        };
        let started = meta("started")?.map(EventTime);
        let now = meta("now")?.map(EventTime);
        let (decisions, last_seq): (Option<i64>, Option<i64>) = c.query_row(
            "SELECT sum(n), max(last_seq) FROM decision_batches",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let decisions = decisions.unwrap_or(0);
        let seq = meta("seq")?.unwrap_or(0).max(last_seq.unwrap_or(0));
        // A row that does not read (a damaged or hand-edited file) is skipped and counted.
        let mut damaged = 0usize;
        let mut rows_of =
            |sql: &str,
             f: &mut dyn FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<Option<()>>|
             -> rusqlite::Result<()> {
                let mut q = c.prepare(sql)?;
                let mut rows = q.query([])?;
                while let Some(r) = rows.next()? {
                    if !matches!(f(r), Ok(Some(()))) {
                        damaged += 1;
                    }
                }
                Ok(())
            };
        let mut trust = Vec::new();
        rows_of(
            "SELECT feed, addr, asn, good, bad, at, counts FROM trust",
            &mut |r| {
                let (feed, addr, asn): (String, String, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
                let (Ok(addr), Ok(asn)) = (addr.parse::<IpAddr>(), u32::try_from(asn)) else {
                    return Ok(None);
                };
                let Ok(counts) = serde_json::from_str::<TrustCounts>(&r.get::<_, String>(6)?)
                else {
                    return Ok(None);
                };
                trust.push(SavedTrust {
                    feed: Arc::from(feed),
                    addr,
                    asn: Asn(asn),
                    score: TrustScore::from_raw(r.get(3)?, r.get(4)?, EventTime(r.get(5)?), counts),
                });
                Ok(Some(()))
            },
        )?;
        let mut claims = Vec::new();
        rows_of(
            "SELECT prefix, origin, established, gone_since FROM claims",
            &mut |r| {
                let Ok(prefix) = r.get::<_, String>(0)?.parse::<IpNet>() else {
                    return Ok(None);
                };
                claims.push(SavedClaim {
                    prefix: prefix.trunc(),
                    origin: origin_of(r.get(1)?),
                    established: EventTime(r.get(2)?),
                    gone_since: r.get::<_, Option<i64>>(3)?.map(EventTime),
                });
                Ok(Some(()))
            },
        )?;
        let mut operators = Vec::new();
        rows_of(
            "SELECT prefix, origin, action, note FROM operators",
            &mut |r| {
                let Ok(prefix) = r.get::<_, String>(0)?.parse::<IpNet>() else {
                    return Ok(None);
                };
                let action = match r.get::<_, String>(2)?.as_str() {
                    "hold" => OperatorAction::Hold,
                    "release" => OperatorAction::Release,
                    _ => return Ok(None),
                };
                operators.push(SavedOperator {
                    prefix: prefix.trunc(),
                    origin: origin_of(r.get(1)?),
                    action,
                    note: Arc::from(r.get::<_, String>(3)?),
                });
                Ok(Some(()))
            },
        )?;
        let (holds, damaged_holds) = Holds::load(c, run)?;
        damaged += damaged_holds;
        let quarantine = holds.list();
        self.holds = holds;
        self.last_seq = u64::try_from(last_seq.unwrap_or(0)).unwrap_or(0);
        let fresh = started.is_none() && trust.is_empty() && claims.is_empty() && seq == 0;
        let saved = (!fresh).then_some(Saved {
            started,
            now,
            seq: u64::try_from(seq).unwrap_or(0),
            trust,
            claims: Some(claims),
            operators,
        });
        Ok(Restored {
            saved,
            damaged,
            quarantine,
            decisions: u64::try_from(decisions).unwrap_or(0),
            run,
        })
    }

    /// Appends decisions to the log, as one row, in one transaction; applies them to the
    /// held routes, whose snapshot is written when the decisions since the last one
    /// reach a quarter of the log (so the log always has every decision the
    /// snapshot lacks). Old decisions beyond the kept number go.
    pub fn write_decisions(&mut self, ds: &[Decision]) -> Result<(), StateError> {
        let (Some(first), Some(last)) = (ds.first(), ds.iter().map(|d| d.seq).max()) else {
            return Ok(());
        };
        let mut batch = Vec::with_capacity(ds.len() * 96);
        for d in ds {
            record::append(&mut batch, &record::ItemRef::of(d));
            self.holds.apply(d, self.run);
        }
        self.last_seq = self.last_seq.max(last);
        let snapshot = self.holds.since_snapshot >= (self.keep_decisions / 4).max(1);
        let (keep, seq) = (self.keep_decisions, self.last_seq);
        let n = i64::try_from(ds.len()).unwrap_or(i64::MAX);
        let first = first.seq;
        let snapshot_before = self.holds.snapshot_seq;
        let (conn, holds) = (&mut self.conn, &mut self.holds);
        let res = (|| {
            let tx = conn.transaction()?;
            tx.prepare_cached(
                "INSERT OR REPLACE INTO decision_batches (last_seq, first_seq, n, data) \
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![sql_int(last), sql_int(first), n, batch])?;
            if snapshot {
                holds.write_snapshot(&tx, seq)?;
            }
            // Never a decision the snapshot lacks.
            let cut = seq.saturating_sub(keep).min(holds.snapshot_seq);
            if cut > 0 {
                tx.prepare_cached("DELETE FROM decision_batches WHERE last_seq <= ?1")?
                    .execute([sql_int(cut)])?;
            }
            tx.commit()
        })();
        if res.is_err() {
            self.holds.unsaved(snapshot_before);
        }
        res.map_err(|e| self.err(e))
    }

    /// Appends actions on routers and their verifications to the audit log (numbered
    /// here); the last `keep_decisions` are kept.
    pub fn write_actions(
        &mut self,
        actions: &mut [crate::act::ActionRecord],
    ) -> Result<(), StateError> {
        if actions.is_empty() {
            return Ok(());
        }
        let keep = i64::try_from(self.keep_decisions).unwrap_or(i64::MAX);
        self.in_transaction(|tx| {
            let next: i64 =
                tx.query_row("SELECT COALESCE(MAX(seq), 0) + 1 FROM actions", [], |r| {
                    r.get(0)
                })?;
            let mut ins = tx.prepare_cached("INSERT INTO actions (seq, json) VALUES (?1, ?2)")?;
            let mut seq = next;
            for a in actions.iter_mut() {
                a.seq = u64::try_from(seq).unwrap_or(0);
                ins.execute(params![seq, serde_json::to_string(a).unwrap_or_default()])?;
                seq += 1;
            }
            if seq - 1 > keep {
                tx.prepare_cached("DELETE FROM actions WHERE seq <= ?1")?
                    .execute([seq - 1 - keep])?;
            }
            Ok(())
        })
    }

    /// Saves the judge's state: trust, operators and clock always; the established claims
    /// when `saved.claims` has them.
    pub fn checkpoint(&mut self, saved: &Saved) -> Result<(), StateError> {
        let seq = self.last_seq;
        let snapshot_before = self.holds.snapshot_seq;
        let (conn, holds) = (&mut self.conn, &mut self.holds);
        let res = (|| {
            let tx = conn.transaction()?;
            holds.write_snapshot(&tx, seq)?;
            checkpoint_in(&tx, saved)?;
            tx.commit()
        })();
        if res.is_err() {
            self.holds.unsaved(snapshot_before);
        }
        res.map_err(|e| self.err(e))
    }

    /// Forgets the routes held at the last stop that this run has not decided again
    /// (their routers did not re-send them); returns how many.
    pub fn drop_restored(&mut self) -> Result<usize, StateError> {
        let n = self.holds.drop_before(self.run);
        let seq = self.last_seq;
        let (conn, holds) = (&mut self.conn, &mut self.holds);
        let res = (|| {
            let tx = conn.transaction()?;
            holds.write_snapshot(&tx, seq)?;
            tx.commit()
        })();
        res.map(|()| n).map_err(|e| self.err(e))
    }
}

/// The rows of a checkpoint (see [`Store::checkpoint`]).
fn checkpoint_in(tx: &rusqlite::Transaction<'_>, saved: &Saved) -> rusqlite::Result<()> {
    {
        {
            let mut meta =
                tx.prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")?;
            if let Some(s) = saved.started {
                meta.execute(params!["started", s.0])?;
            }
            if let Some(n) = saved.now {
                meta.execute(params!["now", n.0])?;
            }
            meta.execute(params!["seq", i64::try_from(saved.seq).unwrap_or(i64::MAX)])?;
            tx.execute("DELETE FROM trust", [])?;
            let mut t = tx.prepare_cached(
                "INSERT OR REPLACE INTO trust (feed, addr, asn, good, bad, at, counts) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for st in &saved.trust {
                let (good, bad, at) = st.score.raw();
                t.execute(params![
                    st.feed.as_ref(),
                    st.addr.to_string(),
                    i64::from(st.asn.0),
                    good,
                    bad,
                    at.0,
                    serde_json::to_string(&st.score.counts).unwrap_or_default()
                ])?;
            }
            tx.execute("DELETE FROM operators", [])?;
            let mut o = tx.prepare_cached(
                "INSERT INTO operators (prefix, origin, action, note) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for op in &saved.operators {
                o.execute(params![
                    op.prefix.to_string(),
                    origin_col(op.origin),
                    action_name(op.action),
                    op.note.as_ref()
                ])?;
            }
            if let Some(claims) = &saved.claims {
                tx.execute("DELETE FROM claims", [])?;
                let mut c = tx.prepare_cached(
                    "INSERT INTO claims (prefix, origin, established, gone_since) \
                     VALUES (?1, ?2, ?3, ?4)",
                )?;
                for cl in claims {
                    c.execute(params![
                        cl.prefix.to_string(),
                        origin_col(cl.origin),
                        cl.established.0,
                        cl.gone_since.map(|g| g.0)
                    ])?;
                }
            }
        }
    }
    Ok(())
}

fn sql_int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A claim held: prefix, origin, its routes held, one route's rules.
pub type HeldClaim = (IpNet, Option<Asn>, u64, String);

/// A read-only connection for the API (WAL lets it read while the writer writes).
pub struct Reader {
    conn: Connection,
}

impl Reader {
    pub fn open(path: &Path) -> Result<Reader, StateError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| StateError::Sqlite {
            path: path.to_path_buf(),
            source,
        })?;
        let _ = conn.busy_timeout(std::time::Duration::from_secs(5));
        Ok(Reader { conn })
    }

    /// Decisions after `since` (by sequence number), oldest first, as JSON objects.
    pub fn decisions(&self, since: u64, limit: usize) -> rusqlite::Result<Vec<String>> {
        let mut q = self.conn.prepare_cached(
            "SELECT data FROM decision_batches WHERE last_seq > ?1 ORDER BY last_seq",
        )?;
        let mut rows = q.query([sql_int(since)])?;
        let mut out = Vec::new();
        while out.len() < limit {
            let Some(r) = rows.next()? else { break };
            let items = match record::read(&r.get::<_, Vec<u8>>(0)?) {
                Ok(items) => items,
                Err((items, e)) => {
                    crate::metrics::state_error("read");
                    tracing::warn!("decision log: a damaged row, read up to the damage: {e}");
                    items
                }
            };
            out.extend(
                items
                    .into_iter()
                    .filter(|i| i.seq() > since)
                    .take(limit - out.len())
                    .filter_map(record::Item::json),
            );
        }
        Ok(out)
    }

    /// Actions on routers after `since`, oldest first, as JSON objects.
    pub fn actions(&self, since: u64, limit: usize) -> rusqlite::Result<Vec<String>> {
        self.after("actions", since, limit)
    }

    /// The claims held as the last decision written left them (the snapshot and the
    /// decisions after it): prefix, origin, how many routes, and the rules of one of them.
    pub fn held_claims(&self) -> rusqlite::Result<Vec<HeldClaim>> {
        let tx = self.conn.unchecked_transaction()?;
        let (holds, _) = Holds::load(&tx, 0)?;
        drop(tx);
        let mut claims: std::collections::BTreeMap<(IpNet, Option<Asn>), (u64, String)> =
            Default::default();
        for h in holds.list() {
            let rules = serde_json::to_string(&h.route.rules).unwrap_or_default();
            let e = claims
                .entry((h.route.prefix, h.route.origin))
                .or_insert((0, rules.clone()));
            e.0 += 1;
            e.1 = e.1.clone().min(rules);
        }
        Ok(claims
            .into_iter()
            .map(|((p, o), (n, rules))| (p, o, n, rules))
            .collect())
    }

    /// The JSON rows of `table` after `since`; a row that is not valid UTF-8 JSON (a
    /// damaged page) is skipped, counted and logged, never served.
    fn after(&self, table: &str, since: u64, limit: usize) -> rusqlite::Result<Vec<String>> {
        let mut q = self.conn.prepare_cached(&format!(
            "SELECT json FROM {table} WHERE seq > ?1 ORDER BY seq LIMIT ?2"
        ))?;
        let rows = q.query_map(
            params![
                i64::try_from(since).unwrap_or(i64::MAX),
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
            |r| {
                let v = r.get_ref(0)?;
                Ok(v.as_bytes().ok().map(<[u8]>::to_vec))
            },
        )?;
        let mut out = Vec::new();
        for row in rows {
            if let Some(Ok(s)) = row?.filter(|b| valid_json(b)).map(String::from_utf8) {
                out.push(s);
            }
        }
        Ok(out)
    }
}

/// Whether a stored row is valid UTF-8 JSON; one that is not is counted and logged.
fn valid_json(b: &[u8]) -> bool {
    let ok = std::str::from_utf8(b)
        .ok()
        .is_some_and(|s| serde_json::from_str::<serde::de::IgnoredAny>(s).is_ok());
    if !ok {
        crate::metrics::state_error("invalid_json");
        tracing::warn!("state: a stored row is not valid JSON (damaged): not served");
    }
    ok
}

/// State files and decisions for the tests here and elsewhere in the crate.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    pub(crate) fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "rw-state-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("state.sqlite")
    }

    pub(crate) fn decision(
        seq: u64,
        prefix: IpNet,
        peer: u8,
        outcome: Outcome,
        since: i64,
    ) -> Decision {
        Decision {
            seq,
            time: EventTime(since),
            outcome,
            previous: Outcome::Propagate,
            cause: crate::judge::Cause::Announced,
            peer: IpAddr::from([192, 0, 2, peer]),
            peer_asn: Asn(64500 + u32::from(peer)),
            prefix,
            path_id: None,
            origin: Some(Asn(64496)),
            as_path: None,
            since: EventTime(since),
            reasons: Vec::new(),
            policy: "test".into(),
            rpki_serial: None,
            peer_idx: crate::model::PeerIdx(u32::from(peer)),
            prefix_id: crate::rib::PrefixId(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{decision, temp};
    use super::*;
    use proptest::prelude::*;

    /// Issue 18, point 6: what the daemon trusts at start, and what the API serves.
    #[test]
    fn a_missing_file_is_new_an_empty_one_is_not_and_bad_rows_are_not_served() {
        use check::{check, Health};
        let path = temp("integrity");
        assert_eq!(check(&path).unwrap(), Health::Missing);
        std::fs::write(&path, b"").unwrap();
        assert!(matches!(check(&path).unwrap(), Health::Empty(_)));
        let e = Store::open(&path, 10)
            .err()
            .expect("a 0-byte file is refused");
        assert!(e.to_string().contains("0 bytes"), "{e}");
        // An SQLite file without our tables is not new either.
        std::fs::remove_file(&path).unwrap();
        Connection::open(&path)
            .unwrap()
            .execute_batch("PRAGMA user_version = 1")
            .unwrap();
        let h = check(&path).unwrap();
        assert!(matches!(h, Health::Empty(_) | Health::Damaged(_)), "{h:?}");
        assert!(Store::open(&path, 10).is_err());
        // --new-state: moved aside, started afresh.
        let (st, r) = Store::open_with(&path, 10, true).unwrap();
        assert!(r.saved.is_none());
        drop(st);
        assert_eq!(check(&path).unwrap(), Health::Whole);
        // A table missing from a schema-3 file: damaged.
        let c = Connection::open(&path).unwrap();
        c.execute_batch("DROP TABLE operators").unwrap();
        drop(c);
        match check(&path).unwrap() {
            Health::Damaged(why) => assert!(why[0].contains("operators"), "{why:?}"),
            h => panic!("{h:?}"),
        }
        // Rows that are not UTF-8 JSON are skipped, not served.
        let path = temp("integrity-rows");
        drop(Store::open(&path, 10).unwrap());
        let c = Connection::open(&path).unwrap();
        c.execute(
            "INSERT INTO actions (seq, json) VALUES (1, '{\"a\":1}')",
            [],
        )
        .unwrap();
        c.execute("INSERT INTO actions (seq, json) VALUES (2, '{\"a\":')", [])
            .unwrap();
        c.execute(
            "INSERT INTO actions (seq, json) VALUES (3, CAST(X'7bff7d' AS TEXT))",
            [],
        )
        .unwrap();
        drop(c);
        let r = Reader::open(&path).unwrap();
        assert_eq!(r.actions(0, 10).unwrap(), ["{\"a\":1}"]);
    }

    fn prefix(a: u32, len: u8) -> IpNet {
        IpNet::new(IpAddr::from(a.to_be_bytes()), len % 33)
            .unwrap()
            .trunc()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// After any decisions, written in any batches, the quarantine table holds each
        /// route's last decision when that one holds it, and nothing else.
        #[test]
        fn the_quarantine_table_holds_each_routes_last_decision(
            ops in prop::collection::vec((0u8..3, 0u8..2, 0u8..4, any::<i32>()), 1..60),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..4),
        ) {
            let outcomes = [Outcome::Propagate, Outcome::Quarantine, Outcome::Reject, Outcome::Withdrawn];
            let ds: Vec<Decision> = ops
                .iter()
                .enumerate()
                .map(|(i, &(p, peer, o, since))| {
                    decision(i as u64 + 1, prefix(u32::from(p) << 24, 8), peer, outcomes[usize::from(o)], i64::from(since))
                })
                .collect();
            let mut bounds: Vec<usize> = cuts.iter().map(|c| c.index(ds.len() + 1)).collect();
            bounds.extend([0, ds.len()]);
            bounds.sort_unstable();
            bounds.dedup();
            let path = temp("quarantine");
            {
                let (mut st, _) = Store::open(&path, 1000).unwrap();
                for w in bounds.windows(2) {
                    st.write_decisions(&ds[w[0]..w[1]]).unwrap();
                }
            }
            let mut want = std::collections::BTreeMap::new();
            for d in &ds {
                if d.outcome.is_held() {
                    want.insert(decision_key(d), (d.outcome, d.since, d.seq));
                } else {
                    want.remove(&decision_key(d));
                }
            }
            let (_, r) = Store::open(&path, 1000).unwrap();
            let got: std::collections::BTreeMap<_, _> = r
                .quarantine
                .iter()
                .map(|h| {
                    let k = (h.route.id.clone(), h.route.peer, h.route.peer_asn, h.route.path_id.unwrap_or(0));
                    (k, (h.route.outcome, h.route.since, h.seq))
                })
                .collect();
            prop_assert_eq!(got, want);
            prop_assert_eq!(r.decisions, ds.len() as u64);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// What a checkpoint saves is what the next open restores, whatever it holds.
        #[test]
        fn a_checkpoint_is_restored_as_saved(
            trust in prop::collection::vec((0u32..5, any::<u32>(), 0.0f64..1e6, 0.0f64..1e6, any::<i64>(), any::<u64>()), 0..20),
            claims in prop::collection::vec((any::<u32>(), 0u8..33, prop::option::of(any::<u32>()), any::<i64>(), prop::option::of(any::<i64>())), 0..50),
            ops in prop::collection::vec((any::<u32>(), 0u8..33, prop::option::of(any::<u32>()), any::<bool>(), ".{0,20}"), 0..5),
            seq in 0u64..1 << 40,
        ) {
            let path = temp("roundtrip");
            let mut saved = Saved {
                started: Some(EventTime(1)),
                now: Some(EventTime(2)),
                seq,
                trust: Vec::new(),
                claims: Some(Vec::new()),
                operators: Vec::new(),
            };
            // One entry per identity / claim, as a judge saves them.
            let mut keys = std::collections::BTreeSet::new();
            for (feed, addr, good, bad, at, n) in trust {
                if keys.insert((feed, addr)) {
                    saved.trust.push(SavedTrust {
                        feed: Arc::from(format!("router-{feed}")),
                        addr: IpAddr::from(addr.to_be_bytes()),
                        asn: Asn(addr),
                        score: TrustScore::from_raw(good, bad, EventTime(at), TrustCounts { flaps: n, ..TrustCounts::default() }),
                    });
                }
            }
            for (a, len, origin, est, gone) in claims {
                saved.claims.as_mut().unwrap().push(SavedClaim {
                    prefix: prefix(a, len),
                    origin: origin.map(Asn),
                    established: EventTime(est),
                    gone_since: gone.map(EventTime),
                });
            }
            for (a, len, origin, hold, note) in ops {
                saved.operators.push(SavedOperator {
                    prefix: prefix(a, len),
                    origin: origin.map(Asn),
                    action: if hold { OperatorAction::Hold } else { OperatorAction::Release },
                    note: Arc::from(note),
                });
            }
            {
                let (mut st, r) = Store::open(&path, 10).unwrap();
                prop_assert!(r.saved.is_none());
                prop_assert_eq!(r.run, 1);
                st.checkpoint(&saved).unwrap();
            }
            let (_, r) = Store::open(&path, 10).unwrap();
            prop_assert_eq!(r.run, 2);
            let mut got = r.saved.unwrap();
            let key = |t: &SavedTrust| (t.feed.clone(), t.addr);
            got.trust.sort_by_key(key);
            saved.trust.sort_by_key(key);
            prop_assert_eq!(got, saved);
        }
    }

    /// Rows that do not parse (a damaged or hand-edited file) are skipped, not fatal; a
    /// file of another schema version is refused with the reason.
    #[test]
    fn the_audit_log_numbers_keeps_and_returns_actions() {
        let path = temp("actions");
        let (mut st, _) = Store::open(&path, 3).unwrap();
        let mut batch: Vec<_> = (0..2)
            .map(|i| {
                crate::act::ActionRecord::new(
                    "bird:a",
                    "quarantine",
                    crate::act::ActionResult::Verified,
                )
                .claim((prefix(0x0a00_0000 + (i << 8), 24), 24, 65000 + i), 7)
            })
            .collect();
        st.write_actions(&mut batch).unwrap();
        assert_eq!((batch[0].seq, batch[1].seq), (1, 2));
        let mut more = vec![
            crate::act::ActionRecord::new(
                "rtr:quarantine",
                "release",
                crate::act::ActionResult::Served
            );
            2
        ];
        st.write_actions(&mut more).unwrap();
        assert_eq!(more[1].seq, 4);
        // Kept: the last 3; numbering goes on after a reopen.
        let r = Reader::open(&path).unwrap();
        let rows = r.actions(0, 10).unwrap();
        assert_eq!(rows.len(), 3, "{rows:?}");
        assert!(
            rows[0].contains("\"seq\":2") && rows[0].contains("10.0.1.0/24"),
            "{rows:?}"
        );
        assert_eq!(r.actions(3, 10).unwrap().len(), 1);
        drop(st);
        let (mut st, _) = Store::open(&path, 3).unwrap();
        let mut one = vec![crate::act::ActionRecord::new(
            "bird:a",
            "reload-in",
            crate::act::ActionResult::Done,
        )];
        st.write_actions(&mut one).unwrap();
        assert_eq!(one[0].seq, 5);
    }

    /// A state file of schema version 1 (the decision log with columns of its own) opens,
    /// migrated, with its decisions.
    #[test]
    fn a_version_1_file_is_migrated_with_its_decisions() {
        let path = temp("v1");
        let c = Connection::open(&path).unwrap();
        c.execute_batch(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
             INSERT INTO meta VALUES ('schema', 1), ('run', 3);
             CREATE TABLE decisions (
                seq INTEGER PRIMARY KEY, time INTEGER NOT NULL, outcome TEXT NOT NULL,
                prefix TEXT NOT NULL, origin INTEGER, peer TEXT NOT NULL,
                peer_asn INTEGER NOT NULL, json TEXT NOT NULL);
             INSERT INTO decisions VALUES
                (7, 0, 'quarantine', '192.0.2.0/24', 65001, '192.0.2.1', 65000, '{\"seq\":7}');",
        )
        .unwrap();
        drop(c);
        let (_, r) = Store::open(&path, 10).unwrap();
        assert_eq!((r.decisions, r.run), (1, 4));
        let reader = Reader::open(&path).unwrap();
        assert_eq!(reader.decisions(0, 10).unwrap(), ["{\"seq\":7}"]);
        let c = Connection::open(&path).unwrap();
        let v: i64 = c
            .query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        let tables: i64 = c
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name IN ('decisions', 'quarantine')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 0, "the old tables are gone");
    }

    /// A state file of schema version 2 (a JSON row per decision, the quarantine table
    /// written with each) opens with its decisions served as written and its held routes
    /// restored; a decision after the migration ends one of them.
    #[test]
    fn a_version_2_file_is_migrated_with_its_decisions_and_holds() {
        let path = temp("v2");
        let c = Connection::open(&path).unwrap();
        c.execute_batch(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
             INSERT INTO meta VALUES ('schema', 2), ('run', 1), ('seq', 2);
             CREATE TABLE decisions (seq INTEGER PRIMARY KEY, json TEXT NOT NULL);
             INSERT INTO decisions VALUES (1, '{\"seq\":1}'), (2, '{\"seq\":2}');
             CREATE TABLE quarantine (
                id TEXT NOT NULL, peer TEXT NOT NULL, peer_asn INTEGER NOT NULL,
                path_id INTEGER NOT NULL, prefix TEXT NOT NULL, origin INTEGER,
                outcome TEXT NOT NULL, since INTEGER NOT NULL, seq INTEGER NOT NULL,
                rules TEXT NOT NULL, run INTEGER NOT NULL,
                PRIMARY KEY (id, peer, peer_asn, path_id));
             INSERT INTO quarantine VALUES
                ('10.0.0.0-8-AS65001', '192.0.2.1', 65000, 0, '10.0.0.0/8', 65001,
                 'quarantine', 5, 1, '[\"rpki.invalid\"]', 1),
                ('10.1.0.0-16-AS65002', '192.0.2.1', 65000, 0, '10.1.0.0/16', 65002,
                 'reject', 6, 2, '[\"anomalies.bogon\"]', 1),
                ('x', 'not an address', 1, 0, 'nonsense', 1, 'reject', 0, 2, '[]', 1);",
        )
        .unwrap();
        drop(c);
        let (mut st, r) = Store::open(&path, 10).unwrap();
        // The row that does not read is skipped (and said in the log) by the migration.
        assert_eq!((r.decisions, r.run), (2, 2));
        let held: Vec<_> = r
            .quarantine
            .iter()
            .map(|h| {
                (
                    h.route.prefix,
                    h.route.outcome,
                    h.seq,
                    h.route.rules.clone(),
                )
            })
            .collect();
        assert_eq!(
            held,
            [
                (
                    prefix(0x0a00_0000, 8),
                    Outcome::Quarantine,
                    1,
                    vec!["rpki.invalid".to_string()]
                ),
                (
                    prefix(0x0a01_0000, 16),
                    Outcome::Reject,
                    2,
                    vec!["anomalies.bogon".to_string()]
                ),
            ]
        );
        // The route is 10.0.0.0/8 AS65001 from 192.0.2.1 AS65000: withdrawn now.
        let mut d = decision(3, prefix(0x0a00_0000, 8), 1, Outcome::Withdrawn, 7);
        (d.peer, d.peer_asn, d.origin) =
            ("192.0.2.1".parse().unwrap(), Asn(65000), Some(Asn(65001)));
        st.write_decisions(&[d]).unwrap();
        drop(st);
        let reader = Reader::open(&path).unwrap();
        let rows = reader.decisions(0, 10).unwrap();
        assert_eq!(&rows[..2], ["{\"seq\":1}", "{\"seq\":2}"]);
        assert!(rows[2].starts_with("{\"seq\":3,"), "{}", rows[2]);
        let (_, r) = Store::open(&path, 10).unwrap();
        let held: Vec<_> = r.quarantine.iter().map(|h| h.route.prefix).collect();
        assert_eq!(held, [prefix(0x0a01_0000, 16)]);
    }

    #[test]
    fn damaged_rows_are_skipped_and_another_schema_is_refused() {
        let path = temp("damaged");
        drop(Store::open(&path, 10).unwrap());
        let c = Connection::open(&path).unwrap();
        c.execute_batch(
            "INSERT INTO claims VALUES ('nonsense', 1, 0, NULL);
             INSERT INTO claims VALUES ('10.0.0.0/8', 65001, 5, NULL);
             INSERT INTO trust VALUES ('r', 'not-an-address', 1, 0.5, 0.5, 0, '{}');
             INSERT INTO trust VALUES ('r', '192.0.2.1', 1, 'x', 0.5, 0, 'not json');
             INSERT INTO operators VALUES ('10.0.0.0/8', 65001, 'frobnicate', '');",
        )
        .unwrap();
        drop(c);
        let (_, r) = Store::open(&path, 10).unwrap();
        let saved = r.saved.unwrap();
        assert_eq!(saved.claims.unwrap().len(), 1);
        assert!(saved.operators.is_empty());
        assert!(saved.trust.is_empty());
        assert_eq!(r.damaged, 4);
        let c = Connection::open(&path).unwrap();
        c.execute("UPDATE meta SET value = 99 WHERE key = 'schema'", [])
            .unwrap();
        drop(c);
        let e = Store::open(&path, 10).err().expect("refused");
        assert!(e.to_string().contains("schema version 99"), "{e}");
    }
}
