//! The webhook outbox: alerts written to SQLite before any attempt, delivered at least
//! once with the alert id as idempotency key (`webhook-id`), retried with exponential
//! backoff and jitter.
//!
//! - An alert becomes one row per destination whose filters take it (types, least
//!   severity, prefixes: the alert's prefix within one of them).
//! - 2xx: delivered. 429 or 503 with `Retry-After` (seconds): retried then. 410: the
//!   destination is disabled (its rows too), as the receiver asked. Anything else
//!   (other status, refused connection, timeout): retried after 1 s, 2 s, 4 s, ... at most
//!   1 h, each ×0.5-1.5 at random, until `max_attempts`, then the row is dead (counted).
//! - Each attempt is signed anew (its own `webhook-timestamp`); the body and id stay.
//! - Rows no longer pending are kept 7 days (the counts and `/v1/alerts` read them), then
//!   deleted.
//! - The rows live in the state file (table `outbox`), so alerts pending at a kill -9 are
//!   delivered after the restart; without a state file, in a file of this run in the
//!   temporary directory (see [`Place`]).
//!
//! One delivery thread serves every destination in order of due time, one request at a
//! time (each bounded by its `timeout`): a destination that hangs slows the others by at
//! most its timeout per attempt.

use super::alerts::{body, Alert, Severity};
use super::webhook::{sign, Key};
use ipnet::IpNet;
use rusqlite::{params, Connection};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A destination as configured.
#[derive(Clone, Debug)]
pub struct Destination {
    pub name: String,
    pub url: String,
    /// `json`, `slack`, `mattermost` or `teams`.
    pub format: crate::act::alerts::WebhookFormat,
    /// Alert types taken (empty: all).
    pub types: Vec<crate::act::alerts::AlertKind>,
    pub min_severity: Severity,
    /// Only alerts about these prefixes (or more specifics); empty: all.
    pub prefixes: Vec<IpNet>,
    pub timeout: Duration,
    pub max_attempts: u32,
}

impl Destination {
    pub fn takes(&self, a: &Alert) -> bool {
        (self.types.is_empty() || self.types.contains(&a.kind))
            && a.severity >= self.min_severity
            && (self.prefixes.is_empty()
                || a.prefix
                    .is_some_and(|p| self.prefixes.iter().any(|q| q.contains(&p))))
    }
}

/// Where the outbox lives: the state file, or without one a file of this run in the
/// temporary directory (a shared-cache in-memory database was tried first: its
/// table locks are not waited out by SQLite's busy timeout, and an insert racing the
/// delivery thread's read failed now and then; WAL on a file waits).
#[derive(Clone, Debug)]
pub enum Place {
    File(PathBuf),
}

/// One destination's delivery state, for the status.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DestinationStatus {
    pub name: String,
    pub url: String,
    pub pending: u64,
    pub delivered: u64,
    pub failed_attempts: u64,
    pub dead: u64,
    pub disabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// From the alert entering the outbox to its delivery, last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_delay_ms: Option<f64>,
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, dest TEXT NOT NULL,
    kind TEXT NOT NULL, body TEXT NOT NULL, created INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, next_at INTEGER NOT NULL, state TEXT NOT NULL,
    last_error TEXT, delivered_at INTEGER);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_at);
CREATE INDEX IF NOT EXISTS outbox_dest ON outbox (dest, state);";

/// Rows no longer pending are kept this long (for `/v1/alerts` and the counts), then
/// deleted, so the outbox does not grow without bound.
const KEEP_DONE_MS: i64 = 7 * 24 * 3600 * 1000;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A connection to the outbox.
pub struct Outbox {
    conn: Connection,
}

impl Outbox {
    pub fn open(place: &Place) -> rusqlite::Result<Outbox> {
        let Place::File(p) = place;
        let conn = Connection::open(p)?;
        let _ = conn.busy_timeout(Duration::from_secs(5));
        let _ = conn.execute_batch("PRAGMA journal_mode=WAL;");
        conn.execute_batch(SCHEMA)?;
        Ok(Outbox { conn })
    }

    /// Writes `alerts` for the destinations that take them (committed when it returns).
    pub fn add(
        &mut self,
        alerts: &[Alert],
        dests: &[Destination],
        disabled: &[bool],
    ) -> rusqlite::Result<usize> {
        let tx = self.conn.transaction()?;
        let mut n = 0;
        {
            let mut ins = tx.prepare_cached(
                "INSERT INTO outbox (id, dest, kind, body, created, next_at, state) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5, 'pending')",
            )?;
            let now = now_ms();
            for a in alerts {
                for (d, off) in dests.iter().zip(disabled) {
                    if *off || !d.takes(a) {
                        continue;
                    }
                    ins.execute(params![
                        a.id,
                        d.name,
                        a.kind.as_str(),
                        body(a, d.format),
                        now
                    ])?;
                    n += 1;
                }
            }
        }
        tx.commit()?;
        Ok(n)
    }

    /// The recent rows (newest first), for `/v1/alerts`.
    pub fn recent(&self, limit: usize) -> rusqlite::Result<Vec<serde_json::Value>> {
        let mut q = self.conn.prepare(
            "SELECT id, dest, kind, state, attempts, created, delivered_at, last_error, body \
             FROM outbox ORDER BY seq DESC LIMIT ?1",
        )?;
        let rows = q.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
            let body: String = r.get(8)?;
            Ok(serde_json::json!({
                "id": r.get::<_, String>(0)?,
                "destination": r.get::<_, String>(1)?,
                "type": r.get::<_, String>(2)?,
                "state": r.get::<_, String>(3)?,
                "attempts": r.get::<_, i64>(4)?,
                "created_ms": r.get::<_, i64>(5)?,
                "delivered_ms": r.get::<_, Option<i64>>(6)?,
                "last_error": r.get::<_, Option<String>>(7)?,
                "payload": serde_json::from_str::<serde_json::Value>(&body).unwrap_or(body.into()),
            }))
        })?;
        rows.collect()
    }

    /// Deletes the rows done (delivered, dead, disabled) more than 7 days before `now`.
    pub fn prune(&self, now: i64) -> rusqlite::Result<usize> {
        self.conn.execute(
            "DELETE FROM outbox WHERE state != 'pending' AND created < ?1",
            [now - KEEP_DONE_MS],
        )
    }

    /// Rows per state for one destination (over the rows kept).
    fn counts(&self, dest: &str) -> rusqlite::Result<(u64, u64, u64)> {
        let mut q = self
            .conn
            .prepare_cached("SELECT state, COUNT(*) FROM outbox WHERE dest = ?1 GROUP BY state")?;
        let mut out = (0, 0, 0);
        for row in q.query_map([dest], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })? {
            let (s, n) = row?;
            let n = u64::try_from(n).unwrap_or(0);
            match s.as_str() {
                "pending" => out.0 = n,
                "delivered" => out.1 = n,
                "dead" => out.2 = n,
                _ => {}
            }
        }
        Ok(out)
    }
}

/// Retry delay after `attempts` failures: 2^(attempts-1) s (at most 1 h), ×0.5-1.5.
pub fn backoff(attempts: u32, jitter: u8) -> Duration {
    let base = 2f64
        .powi(attempts.saturating_sub(1).min(12) as i32)
        .min(3600.0);
    Duration::from_secs_f64(base * (0.5 + f64::from(jitter) / 255.0))
}

/// What one attempt came to.
enum Outcome {
    Delivered,
    RetryAt(Duration, String),
    Gone,
    Failed(String),
}

fn attempt(agent: &ureq::Agent, d: &Destination, keys: &[Key], id: &str, body: &str) -> Outcome {
    let ts = chrono::Utc::now().timestamp();
    let sig = sign(keys, id, ts, body.as_bytes());
    let mut req = agent
        .post(&d.url)
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", &ts.to_string())
        .header(
            "user-agent",
            concat!("routewitness/", env!("CARGO_PKG_VERSION")),
        );
    if !sig.is_empty() {
        req = req.header("webhook-signature", &sig);
    }
    match req.send(body) {
        Ok(r) => {
            let status = r.status().as_u16();
            let retry_after = r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            match status {
                200..=299 => Outcome::Delivered,
                // Never followed: a redirect would carry the signed alert (and its
                // signature headers) to an address nobody configured.
                300..=399 => {
                    let location = r
                        .headers()
                        .get("location")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("no Location");
                    Outcome::Failed(format!(
                        "HTTP {status} to {location}: redirects are not followed"
                    ))
                }
                410 => Outcome::Gone,
                429 | 503 if retry_after.is_some() => Outcome::RetryAt(
                    Duration::from_secs(retry_after.unwrap_or(1).min(86_400)),
                    format!("HTTP {status} (Retry-After honoured)"),
                ),
                s => Outcome::Failed(format!("HTTP {s}")),
            }
        }
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

/// A row due for delivery: seq, alert id, destination, body, attempts so far, created.
type DueRow = (i64, String, String, String, u32, i64);

/// The delivery thread's state: the outbox, the destinations with their HTTP agents and
/// their delivery state.
struct Delivery {
    ob: Outbox,
    /// The destination this worker delivers to (an index into `dests`).
    mine: usize,
    dests: Vec<Destination>,
    agents: Vec<ureq::Agent>,
    keys: Vec<Key>,
    status: Arc<Mutex<Vec<DestinationStatus>>>,
    disabled: Arc<Mutex<Vec<bool>>>,
}

impl Delivery {
    /// The rows due now for this worker's destination (at most 64).
    fn due(&self) -> Vec<DueRow> {
        let rows = self
            .ob
            .conn
            .prepare_cached(
                "SELECT seq, id, dest, body, attempts, created FROM outbox \
                 WHERE state = 'pending' AND dest = ?2 AND next_at <= ?1 \
                 ORDER BY next_at, seq LIMIT 64",
            )
            .and_then(|mut q| {
                q.query_map(params![now_ms(), self.dests[self.mine].name], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                })?
                .collect()
            });
        rows.unwrap_or_else(|e| {
            tracing::error!("webhook outbox: {e}");
            Vec::new()
        })
    }

    /// One attempt at one row, and what it leaves in the outbox.
    fn attempt_row(&mut self, row: DueRow) -> rusqlite::Result<usize> {
        let (seq, id, dest, body, attempts, created) = row;
        let Some(i) = self.dests.iter().position(|d| d.name == dest) else {
            return self.ob.conn.execute(
                "UPDATE outbox SET state = 'dead', last_error = 'no such destination' WHERE seq = ?1",
                [seq],
            );
        };
        if self.disabled.lock().unwrap_or_else(|e| e.into_inner())[i] {
            return Ok(0);
        }
        let d = &self.dests[i];
        let t = Instant::now();
        let outcome = attempt(&self.agents[i], d, &self.keys, &id, &body);
        let attempts = attempts + 1;
        match outcome {
            Outcome::Delivered => {
                crate::metrics::alert_sent(&d.name);
                let delay = (now_ms() - created) as f64;
                update(&self.status, i, |s| {
                    s.last_delay_ms = Some(delay.max(t.elapsed().as_secs_f64() * 1e3));
                    s.last_error = None;
                });
                self.ob.conn.execute(
                    "UPDATE outbox SET state = 'delivered', attempts = ?2, delivered_at = ?3 WHERE seq = ?1",
                    params![seq, attempts, now_ms()],
                )
            }
            Outcome::Gone => {
                tracing::error!(
                    "webhook {}: the receiver answered 410 Gone: destination disabled (alert)",
                    d.name
                );
                self.disabled.lock().unwrap_or_else(|e| e.into_inner())[i] = true;
                update(&self.status, i, |s| {
                    s.disabled = true;
                    s.last_error = Some("410 Gone: disabled".into());
                });
                self.ob.conn.execute(
                    "UPDATE outbox SET state = 'disabled', last_error = '410 Gone' \
                     WHERE dest = ?1 AND state = 'pending'",
                    [&d.name],
                )
            }
            Outcome::RetryAt(after, why) => self.failed(seq, attempts, i, after, &why),
            Outcome::Failed(why) => {
                let mut j = [0u8; 1];
                let _ = getrandom::fill(&mut j);
                self.failed(seq, attempts, i, backoff(attempts, j[0]), &why)
            }
        }
    }

    /// A failed attempt at row `seq` for destination `i`: retried `after`, or
    /// dead-lettered once it has had its attempts.
    fn failed(
        &mut self,
        seq: i64,
        attempts: u32,
        i: usize,
        after: Duration,
        why: &str,
    ) -> rusqlite::Result<usize> {
        let d = &self.dests[i];
        crate::metrics::alert_attempt_failed(&d.name);
        update(&self.status, i, |s| {
            s.failed_attempts += 1;
            s.last_error = Some(why.to_string());
        });
        if attempts >= d.max_attempts {
            crate::metrics::alert_dead(&d.name);
            tracing::error!(
                "webhook {}: an alert failed {attempts} times ({why}): dead-lettered (alert)",
                d.name
            );
            return self.ob.conn.execute(
                "UPDATE outbox SET state = 'dead', attempts = ?2, last_error = ?3 WHERE seq = ?1",
                params![seq, attempts, why],
            );
        }
        let next = now_ms() + i64::try_from(after.as_millis()).unwrap_or(i64::MAX / 2);
        self.ob.conn.execute(
            "UPDATE outbox SET attempts = ?2, next_at = ?3, last_error = ?4 WHERE seq = ?1",
            params![seq, attempts, next, why],
        )
    }

    /// Pending rows for a destination the configuration no longer has: dead letters.
    fn orphans(&self) -> rusqlite::Result<usize> {
        let mut pending: Vec<String> = self
            .ob
            .conn
            .prepare_cached("SELECT DISTINCT dest FROM outbox WHERE state = 'pending'")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        pending.retain(|p| !self.dests.iter().any(|d| &d.name == p));
        let mut n = 0;
        for dest in pending {
            n += self.ob.conn.execute(
                "UPDATE outbox SET state = 'dead', last_error = 'no such destination' \
                 WHERE state = 'pending' AND dest = ?1",
                [dest],
            )?;
        }
        Ok(n)
    }

    /// This destination's counts, for the status and the metrics.
    fn count(&self) {
        let (i, d) = (self.mine, &self.dests[self.mine]);
        if let Ok((p, dl, dead)) = self.ob.counts(&d.name) {
            update(&self.status, i, |s| {
                s.pending = p;
                s.delivered = dl;
                s.dead = dead;
            });
            crate::metrics::alerts_pending(&d.name, p);
        }
    }

    /// How long until this destination's next row is due (at most a second).
    fn until_next(&self) -> Duration {
        let next: Option<i64> = self
            .ob
            .conn
            .query_row(
                "SELECT MIN(next_at) FROM outbox WHERE state = 'pending' AND dest = ?1",
                [&self.dests[self.mine].name],
                |r| r.get(0),
            )
            .unwrap_or(None);
        next.map_or(Duration::from_secs(1), |n| {
            Duration::from_millis(u64::try_from(n - now_ms()).unwrap_or(0))
                .min(Duration::from_secs(1))
        })
    }
}

/// The delivery thread: a worker per destination (each with its own connection to the
/// outbox), so a destination that hangs delays only its own alerts; `wake` is signalled
/// when rows are added and passed on to every worker. Returns when `wake`'s sender is gone
/// and the workers have stopped.
pub fn deliver(
    place: Place,
    dests: Vec<Destination>,
    keys: Vec<Key>,
    status: Arc<Mutex<Vec<DestinationStatus>>>,
    disabled: Arc<Mutex<Vec<bool>>>,
    wake: std::sync::mpsc::Receiver<()>,
) {
    let mut wakes = Vec::new();
    let mut workers = Vec::new();
    for mine in 0..dests.len() {
        let ob = match Outbox::open(&place) {
            Ok(o) => o,
            Err(e) => {
                tracing::error!("webhook outbox: cannot open: {e}; no alert will be delivered");
                return;
            }
        };
        let (tx, rx) = std::sync::mpsc::channel();
        wakes.push(tx);
        let dl = Delivery {
            ob,
            mine,
            agents: dests.iter().map(agent).collect(),
            dests: dests.clone(),
            keys: keys.clone(),
            status: status.clone(),
            disabled: disabled.clone(),
        };
        let name = format!("rw-webhook-{}", mine + 1);
        match std::thread::Builder::new()
            .name(name)
            .spawn(move || worker(dl, rx))
        {
            Ok(h) => workers.push(h),
            Err(e) => tracing::error!("webhook {}: no worker: {e}", dests[mine].name),
        }
    }
    while wake.recv().is_ok() {
        for w in &wakes {
            let _ = w.send(());
        }
    }
    drop(wakes);
    for w in workers {
        let _ = w.join();
    }
}

/// One attempt at `a` to each destination that takes it, now, on a thread of its own,
/// outside the outbox: for the alert that the outbox (in the state file) cannot be
/// written. Its id is the one the outbox row gets later, so a receiver takes it once.
pub fn send_now(a: &Alert, dests: &[Destination], disabled: &[bool], keys: &[Key]) {
    let jobs: Vec<(Destination, String)> = dests
        .iter()
        .zip(disabled.iter().chain(std::iter::repeat(&false)))
        .filter(|(d, off)| !**off && d.takes(a))
        .map(|(d, _)| (d.clone(), body(a, d.format)))
        .collect();
    if jobs.is_empty() {
        return;
    }
    let (id, keys, kind) = (a.id.clone(), keys.to_vec(), a.kind);
    let spawned = std::thread::Builder::new()
        .name("rw-webhook-now".into())
        .spawn(move || {
            for (d, body) in jobs {
                match attempt(&agent(&d), &d, &keys, &id, &body) {
                    Outcome::Delivered => tracing::info!("webhook {}: {kind} delivered", d.name),
                    Outcome::RetryAt(_, e) | Outcome::Failed(e) => {
                        tracing::error!("webhook {}: {kind} not delivered: {e}", d.name)
                    }
                    Outcome::Gone => tracing::error!("webhook {}: {kind}: gone (410)", d.name),
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!("webhook: cannot send {kind} now: {e}");
    }
}

/// An HTTP client for destination `d`: its timeout, statuses as answers, no redirects.
fn agent(d: &Destination) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(d.timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into()
}

/// One destination's worker: delivers its due rows until `wake`'s sender is gone.
fn worker(mut dl: Delivery, wake: std::sync::mpsc::Receiver<()>) {
    let mut pruned = Instant::now() - Duration::from_secs(3600);
    loop {
        // One worker prunes (the rows of every destination).
        if dl.mine == 0 && pruned.elapsed() >= Duration::from_secs(60) {
            pruned = Instant::now();
            if let Err(e) = dl.ob.prune(now_ms()).and_then(|_| dl.orphans()) {
                tracing::error!("webhook outbox: pruning: {e}");
            }
        }
        for row in dl.due() {
            if let Err(e) = dl.attempt_row(row) {
                tracing::error!("webhook outbox: {e}");
            }
        }
        // Counts for the status, then wait for new rows or the next due one.
        dl.count();
        match wake.recv_timeout(dl.until_next().max(Duration::from_millis(1))) {
            Ok(()) | Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Changes destination `i`'s status.
fn update(
    status: &Mutex<Vec<DestinationStatus>>,
    i: usize,
    f: impl FnOnce(&mut DestinationStatus),
) {
    if let Some(s) = status.lock().unwrap_or_else(|e| e.into_inner()).get_mut(i) {
        f(s);
    }
}

/// The place for a state file (the outbox shares it), or a fresh file of this run.
pub fn place_for(state: Option<&Path>) -> Place {
    match state {
        Some(p) => Place::File(p.to_path_buf()),
        None => {
            let p = std::env::temp_dir()
                .join(format!("routewitness-outbox-{}.sqlite", std::process::id()));
            for ext in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{ext}", p.display()));
            }
            Place::File(p)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_done_are_pruned_after_a_week_pending_ones_never() {
        let path =
            std::env::temp_dir().join(format!("rw-outbox-test-{}.sqlite", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let mut ob = Outbox::open(&Place::File(path.clone())).unwrap();
        let d = Destination {
            name: "n".into(),
            url: "http://x".into(),
            format: crate::act::alerts::WebhookFormat::Json,
            types: Vec::new(),
            min_severity: Severity::Info,
            prefixes: Vec::new(),
            timeout: Duration::from_secs(1),
            max_attempts: 3,
        };
        let alerts: Vec<Alert> = (0..3)
            .map(|i| {
                let mut a = Alert::new(
                    crate::act::alerts::AlertKind::RouteLeak,
                    Severity::Warning,
                    format!("k{i}"),
                    serde_json::json!({}),
                );
                a.id = format!("msg_{i}");
                a
            })
            .collect();
        assert_eq!(
            ob.add(&alerts, std::slice::from_ref(&d), &[false]).unwrap(),
            3
        );
        ob.conn
            .execute(
                "UPDATE outbox SET state = 'delivered' WHERE id != 'msg_2'",
                [],
            )
            .unwrap();
        assert_eq!(ob.prune(now_ms()).unwrap(), 0, "a week has not passed");
        let later = now_ms() + KEEP_DONE_MS + 1000;
        assert_eq!(ob.prune(later).unwrap(), 2);
        assert_eq!(ob.counts("n").unwrap(), (1, 0, 0), "the pending one stays");
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn backoff_doubles_to_an_hour_with_jitter() {
        assert_eq!(backoff(1, 127).as_millis(), 998);
        assert!(backoff(2, 0) == Duration::from_secs(1));
        assert!(backoff(2, 255) == Duration::from_secs(3));
        assert!(backoff(30, 255) <= Duration::from_secs(5400));
        assert!(backoff(13, 0) >= Duration::from_secs(1800));
    }

    #[test]
    fn filters_take_types_severity_and_prefixes() {
        let d = Destination {
            name: "n".into(),
            url: "http://x".into(),
            format: crate::act::alerts::WebhookFormat::Json,
            types: vec![crate::act::alerts::AlertKind::HijackSuspected],
            min_severity: Severity::Warning,
            prefixes: vec!["1.51.0.0/16".parse().unwrap()],
            timeout: Duration::from_secs(1),
            max_attempts: 3,
        };
        let mut a = Alert::new(
            crate::act::alerts::AlertKind::HijackSuspected,
            Severity::Critical,
            "k".into(),
            serde_json::json!({}),
        );
        a.prefix = Some("1.51.7.0/24".parse().unwrap());
        assert!(d.takes(&a));
        a.prefix = Some("1.52.7.0/24".parse().unwrap());
        assert!(!d.takes(&a));
        a.prefix = Some("1.51.7.0/24".parse().unwrap());
        a.kind = crate::act::alerts::AlertKind::RouteLeak;
        assert!(!d.takes(&a));
        a.kind = crate::act::alerts::AlertKind::HijackSuspected;
        a.severity = Severity::Info;
        assert!(!d.takes(&a));
    }
}
