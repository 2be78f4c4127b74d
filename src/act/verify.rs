//! Verifying at the router: after each change of the quarantine feed, each configured
//! BIRD is asked (over its control socket, [`super::bird`]) whether it did what the
//! change means, and the answer goes to the audit log with the time it took.
//!
//! - A claim quarantined is `verified` when BIRD has its routes only as filtered;
//!   `absent` when BIRD has no route of that prefix and origin (no peer of this router
//!   sent it; checked again until the timeout, since BIRD may hear of the route after
//!   routewitness does); `unverified` when BIRD still accepts it at the timeout (an alert:
//!   the filter does not call `rw_quarantined()`, or the channel lacks `import table`).
//! - A claim released is `verified` when BIRD accepts a route of it again;
//!   `still-filtered` when BIRD keeps filtering it (its own policy, e.g. its own ROV);
//!   `absent` likewise.
//! - With `reload_in` protocols (channels without `import table`, which BIRD 2.0.12 does
//!   not re-filter by itself), `reload in` each after every change, every 50 ms until
//!   the change shows (BIRD takes the change over RTR on its own time: a reload before
//!   its ROA table has it re-filters nothing).
//! - Every `check` (10 s) `show protocols` says whether BIRD's RPKI sessions are up; none
//!   up is logged as a warning and shown in the status.
//!
//! The latency is from the change entering the feed (the decision's batch) to the
//! answer that verifies it: RTR notify, BIRD's serial query, its ROA table settling and
//! re-filtering, and this poll (every 2 ms).

use super::bird::{Bird, Protocol, Seen};
use super::rtr_server::VrpKey;
use super::{ActionRecord, ActionResult};
use serde::Serialize;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc, watch};

/// One change of the quarantine feed.
#[derive(Debug)]
pub struct Change {
    pub serial: u32,
    /// When it entered the feed.
    pub at: Instant,
    /// Claims and whether they are quarantined (true) or released.
    pub claims: Vec<(VrpKey, bool)>,
}

/// A BIRD to verify at.
#[derive(Clone, Debug)]
pub struct BirdTarget {
    pub name: String,
    pub socket: PathBuf,
    pub reload_in: Vec<String>,
    /// How long a change may take to show.
    pub timeout: Duration,
}

/// What `/v1/status` says about one BIRD.
#[derive(Clone, Debug, Default, Serialize)]
pub struct BirdStatus {
    pub name: String,
    pub socket: String,
    pub connected: bool,
    pub banner: String,
    /// Its RPKI protocols (those to routewitness among them), from `show protocols`.
    pub rpki: Vec<Protocol>,
    #[serde(flatten)]
    pub results: Verifications,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// What a router's verifications came to: counts per result, latencies.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Verifications {
    pub verified: u64,
    pub absent: u64,
    pub unverified: u64,
    pub still_filtered: u64,
    pub failed: u64,
    /// Over the last 1,024 verified changes.
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    #[serde(skip)]
    latencies: VecDeque<f64>,
}

impl Verifications {
    /// Counts `records` (of `target`), in the metrics too; an unverified or failed one is
    /// logged as an error (the alert follows from the audit log's row).
    pub fn record(&mut self, target: &str, records: &[ActionRecord]) {
        for r in records {
            match r.result {
                ActionResult::Verified => {
                    self.verified += 1;
                    if let Some(l) = r.latency_ms {
                        if self.latencies.len() == 1024 {
                            self.latencies.pop_front();
                        }
                        self.latencies.push_back(l);
                    }
                }
                ActionResult::Absent => self.absent += 1,
                ActionResult::Unverified => self.unverified += 1,
                ActionResult::StillFiltered => self.still_filtered += 1,
                ActionResult::Failed => self.failed += 1,
                ActionResult::Served | ActionResult::Done => {}
            }
            crate::metrics::verification(target, r.result.as_str());
            if r.result.is_failure() {
                tracing::error!(
                    "{target}: {} of {:?} AS{:?} {}: {} (alert)",
                    r.action,
                    r.prefix,
                    r.origin,
                    r.result,
                    r.detail
                );
            }
        }
        let mut l: Vec<f64> = self.latencies.iter().copied().collect();
        self.latency_p50_ms = quantile(&mut l, 0.5);
        self.latency_p99_ms = quantile(&mut l, 0.99);
    }
}

const CHECK_EVERY: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(2);

/// The p-th quantile (0..=1) of `v` (sorted here).
pub fn quantile(v: &mut [f64], p: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let i = ((v.len() - 1) as f64 * p).round() as usize;
    Some(v[i])
}

/// Verifies every change at one BIRD until `stop`; results go to `out`.
pub async fn verify_bird(
    t: BirdTarget,
    mut changes: broadcast::Receiver<Arc<Change>>,
    out: mpsc::Sender<Vec<ActionRecord>>,
    status: Arc<Mutex<BirdStatus>>,
    mut stop: watch::Receiver<bool>,
) {
    let target = format!("bird:{}", t.name);
    let set = |f: &mut dyn FnMut(&mut BirdStatus)| {
        f(&mut status.lock().unwrap_or_else(|e| e.into_inner()));
    };
    set(&mut |s| {
        s.name = t.name.clone();
        s.socket = t.socket.display().to_string();
    });
    let mut bird: Option<Bird> = None;
    let mut next_check = tokio::time::Instant::now();
    loop {
        if bird.is_none() {
            bird = connect(&t, &target, &status).await;
        }
        tokio::select! {
            c = changes.recv() => {
                if bird.is_none() {
                    bird = connect(&t, &target, &status).await;
                }
                let records = match (c, bird.as_mut()) {
                    (Ok(c), Some(b)) => match verify(b, &t, &target, &c).await {
                        Ok(r) => r,
                        Err(e) => {
                            tracing::warn!("{target}: {e}; reconnecting");
                            set(&mut |s| { s.connected = false; s.last_error = Some(e.to_string()); });
                            bird = None;
                            not_verified(&target, &c, &format!("BIRD: {e}"))
                        }
                    },
                    (Ok(c), None) => not_verified(&target, &c, "not connected to BIRD's control socket"),
                    (Err(broadcast::error::RecvError::Lagged(n)), _) => {
                        let mut r = ActionRecord::new(&target, "verify", ActionResult::Failed);
                        r.detail = format!("{n} feed changes not verified: the verifier fell behind");
                        vec![r]
                    }
                    (Err(broadcast::error::RecvError::Closed), _) => return,
                };
                set(&mut |s| s.results.record(&target, &records));
                if out.send(records).await.is_err() {
                    return;
                }
            }
            _ = tokio::time::sleep_until(next_check) => {
                next_check = tokio::time::Instant::now() + CHECK_EVERY;
                if let Some(b) = bird.as_mut() {
                    match b.show_protocols().await {
                        Ok(ps) => {
                            let rpki: Vec<Protocol> = ps.into_iter().filter(|p| p.proto == "RPKI").collect();
                            if !rpki.iter().any(|p| p.state == "up" && p.info == "Established") {
                                tracing::warn!("{target}: no RPKI session of BIRD is up: {rpki:?}");
                            }
                            set(&mut |s| s.rpki = rpki.clone());
                        }
                        Err(e) => {
                            tracing::warn!("{target}: {e}; reconnecting");
                            set(&mut |s| { s.connected = false; s.last_error = Some(e.to_string()); });
                            bird = None;
                        }
                    }
                }
            }
            _ = stop.changed() => return,
        }
    }
}

/// A connection to the BIRD of `t`, its state in `status`.
async fn connect(t: &BirdTarget, target: &str, status: &Mutex<BirdStatus>) -> Option<Bird> {
    let r = Bird::connect(&t.socket, Duration::from_secs(2)).await;
    let mut s = status.lock().unwrap_or_else(|e| e.into_inner());
    match r {
        Ok(b) => {
            tracing::info!("{target}: connected ({})", b.banner);
            s.connected = true;
            s.banner = b.banner.clone();
            s.last_error = None;
            Some(b)
        }
        Err(e) => {
            s.connected = false;
            s.last_error = Some(e.to_string());
            None
        }
    }
}

fn not_verified(target: &str, c: &Change, why: &str) -> Vec<ActionRecord> {
    c.claims
        .iter()
        .map(|&(k, on)| {
            let mut r =
                ActionRecord::new(target, action(on), ActionResult::Failed).claim(k, c.serial);
            r.detail = why.to_string();
            r
        })
        .collect()
}

fn action(on: bool) -> &'static str {
    if on {
        "quarantine"
    } else {
        "release"
    }
}

/// Polls BIRD until every claim of `c` shows its change, or the timeout.
async fn verify(
    b: &mut Bird,
    t: &BirdTarget,
    target: &str,
    c: &Change,
) -> Result<Vec<ActionRecord>, super::bird::BirdError> {
    let mut out = Vec::new();
    // BIRD takes the change over RTR on its own time (notify, serial query, the ROA
    // table's settle time): a `reload in` before that re-filters nothing, so it is
    // repeated every 50 ms until the change shows or the timeout.
    let mut reloads = vec![0u32; t.reload_in.len()];
    let mut failed: Vec<Option<String>> = vec![None; t.reload_in.len()];
    let mut last_reload: Option<Instant> = None;
    let deadline = c.at + t.timeout;
    // Each claim with the last state seen.
    let mut pending: Vec<(VrpKey, bool, Seen)> = c
        .claims
        .iter()
        .map(|&(k, on)| (k, on, Seen::Absent))
        .collect();
    loop {
        if !t.reload_in.is_empty()
            && last_reload.is_none_or(|l| l.elapsed() >= Duration::from_millis(50))
        {
            last_reload = Some(Instant::now());
            for (i, p) in t.reload_in.iter().enumerate() {
                reloads[i] += 1;
                if let Err(e) = b.reload_in(p).await {
                    failed[i] = Some(format!("{p}: {e}"));
                }
            }
        }
        let mut i = 0;
        while i < pending.len() {
            let (k, on, _) = pending[i];
            let seen = b.seen(&k.0, k.2).await?;
            let done = if on {
                seen == Seen::Filtered
            } else {
                seen == Seen::Accepted
            };
            if done {
                let mut r = ActionRecord::new(target, action(on), ActionResult::Verified)
                    .claim(k, c.serial);
                r.latency_ms = Some(c.at.elapsed().as_secs_f64() * 1e3);
                out.push(r);
                pending.swap_remove(i);
            } else {
                pending[i].2 = seen;
                i += 1;
            }
        }
        if pending.is_empty() || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    for (i, p) in t.reload_in.iter().enumerate() {
        let mut r = ActionRecord::new(target, "reload-in", ActionResult::Done);
        r.serial = Some(c.serial);
        r.detail = format!("{p} ({} times)", reloads[i]);
        if let Some(e) = failed[i].take() {
            r.result = ActionResult::Failed;
            r.detail = e;
        }
        out.push(r);
    }
    for (k, on, seen) in pending {
        let result = match (on, seen) {
            (_, Seen::Absent) => ActionResult::Absent,
            (true, _) => ActionResult::Unverified,
            (false, _) => ActionResult::StillFiltered,
        };
        let mut r = ActionRecord::new(target, action(on), result).claim(k, c.serial);
        r.latency_ms = Some(c.at.elapsed().as_secs_f64() * 1e3);
        r.detail = format!("BIRD shows it {seen:?} after {:?}", t.timeout).to_lowercase();
        out.push(r);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::quantile;

    #[test]
    fn quantiles_of_latencies() {
        assert_eq!(quantile(&mut [], 0.5), None);
        let mut v: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(quantile(&mut v, 0.5), Some(51.0));
        assert_eq!(quantile(&mut v, 0.99), Some(99.0));
        assert_eq!(quantile(&mut v, 1.0), Some(100.0));
    }
}
