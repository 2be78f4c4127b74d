//! `routewitness replay`: MRT files → ingest → ROV → Adj-RIB-In, the judge and a report.
//!
//! Two stages of [`crate::pipeline`], one batch at a time:
//! - [`RovStage`] interns each prefix (caching where its covering VRPs start) and gives
//!   every announcement its RFC 6811 [`Verdict`], over the whole batch first and with
//!   prefetches a few events ahead, so the table look-ups of consecutive events overlap.
//!   It runs on the receiving thread; when a judge makes that thread the busier, the
//!   parser thread interns and the receiving thread only validates;
//! - [`Tally`] records the batch on the receiving thread: the [`Pipeline`] (Adj-RIB-In and
//!   the judges, one per policy, whose decisions it writes), and what only the report
//!   needs: counters, RPKI-invalid claims, damage, the route log.
//!
//! Parsing runs on its own thread ([`crate::ingest::mrt`]), and a compressed file gets one
//! more that decompresses ([`crate::input`]). The threads talk over bounded channels, so
//! memory stays flat whatever the input size.

use crate::ingest::{mrt, Damage, DamageKind, FileSummary, IngestEvent, PeerRegistry};
use crate::judge::{ConflictRecord, Decision, Judge, JudgeStats, Outcome, PeerTrust, Policy};
use crate::model::{AsPath, Asn, EventTime, Peer, RouteAction, RouteEvent};
use crate::pipeline::{
    intern_all, validate_all, DecisionSink, Interner, Pipeline, RovStage, Validator, Verdict,
};
use crate::rib::PrefixId;
use crate::rpki::{AspaSet, RovState, RpkiRef, Vrp, VrpIndex};
use ipnet::IpNet;
use rustc_hash::FxHashMap;
use serde::{Serialize, Serializer};
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::Arc;
use std::time::Instant;

/// Events per message between the ingest thread and the judging thread.
const BATCH: usize = 1024;
/// Batches in flight: bounded, so a slow judge holds ingest back. Deep enough to absorb a
/// burst on the receiving side (a session reset drops and re-judges a whole table) without
/// stalling the parser: 32 -> 128 took the 4.6 M event update bench from 1.23 to 1.16 s
/// without the judge and from 2.07 to 1.82 s with it, for 15 B more per stored route.
const BATCHES_IN_FLIGHT: usize = 128;
/// Damage entries kept in the report (all are counted).
const DAMAGE_KEPT: usize = 200;

/// Events on their way from the ingest thread, with the verdict of each route event.
#[derive(Default)]
struct Batch {
    events: Vec<IngestEvent>,
    verdicts: Vec<Verdict>,
}

impl Batch {
    fn with_capacity(n: usize) -> Self {
        Batch {
            events: Vec::with_capacity(n),
            verdicts: Vec::with_capacity(n),
        }
    }

    fn clear(&mut self) {
        self.events.clear();
        self.verdicts.clear();
    }

    /// Runs ROV over the whole batch in two tight loops after parsing, so that the
    /// cache misses of consecutive events overlap (interleaved with parsing, ROV made
    /// replay 1.5x slower): [`Self::intern`] then [`Self::validate`].
    fn annotate(&mut self, rov: &mut RovStage) {
        self.intern(&mut rov.interner);
        self.validate(&mut rov.validator);
    }

    /// Interns every route event's prefix into `verdicts` (see [`intern_all`]).
    fn intern(&mut self, interner: &mut Interner) {
        intern_all(&self.events, interner, &mut self.verdicts);
    }

    /// Fills in each announcement's RPKI state (see [`validate_all`]).
    fn validate(&mut self, validator: &mut Validator) {
        validate_all(&self.events, validator, &mut self.verdicts);
    }
}

/// Why a replay could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("{}: {source}", .path.display())]
    Open { path: PathBuf, source: io::Error },
    #[error("writing the route log: {0}")]
    Output(io::Error),
    #[error("ingest thread failed")]
    Ingest,
}

/// What to replay and how.
pub struct ReplayConfig {
    pub files: Vec<PathBuf>,
    /// Judge VRP expiry against the route's event time (`false`: ignore expiry).
    pub honour_expires: bool,
    /// Rows in the top-invalid table.
    pub top: usize,
    /// Called now and then with (bytes read from disk, bytes in total).
    pub progress: Option<Box<dyn FnMut(u64, u64)>>,
    /// Announcements and withdrawals to merge into the files' events in time order
    /// (`routewitness eval --inject`), sorted by time; peers by identity.
    pub inject: Vec<crate::eval::Injected>,
}

/// The judge's part of a replay.
pub struct Judging<'a> {
    /// One policy, or two to compare them (`replay --diff`): both judges see the same
    /// events; decisions are logged for the first.
    pub policies: Vec<Policy>,
    pub aspa: &'a AspaSet,
    /// Recorded in every decision (the replay uses the VRP snapshot's build time).
    pub rpki_serial: Option<u64>,
    /// One JSON line per decision of the first policy.
    pub decisions: Option<&'a mut dyn Write>,
    /// Or each decision of the first policy as it is (the daemon keeps the latest).
    pub sink: Option<&'a mut dyn FnMut(Decision)>,
    /// Or an observer of every route event and decision of the first policy
    /// (`routewitness eval`).
    pub observer: Option<&'a mut dyn Observer>,
}

/// Sees what the first judge made of every route event, and its decisions (for
/// `routewitness eval`, which measures holds against labelled incidents).
pub trait Observer {
    /// A route event, once judged: the route's outcome now (`None` for a withdrawal, or
    /// a route the judge did not take).
    fn route(&mut self, r: &RouteEvent, origin: Option<Asn>, outcome: Option<Outcome>);
    /// A decision of the first judge, with its AS path filled in.
    fn decision(&mut self, d: &Decision);
}

/// What one judge did, for the report.
#[derive(Clone, Debug, Serialize)]
pub struct JudgeReport {
    pub policy: String,
    pub policy_hash: String,
    /// False for monitor-only policies: decided, never acted on.
    pub act: bool,
    pub stats: JudgeStats,
    /// Routes quarantined or rejected when the replay ended.
    pub held_at_end: usize,
    /// The conflicts with the most routes held, with their evidence.
    pub conflicts: Vec<ConflictRecord>,
    /// Every peer's trust at the end of the replay, lowest first.
    pub trust: Vec<PeerTrust>,
}

/// How one route fared under one policy.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RouteTrace {
    pub decisions: u32,
    /// The strictest outcome it ever had.
    pub worst: Option<Outcome>,
    /// Its outcome at the end (`propagate` when never held).
    pub last: Option<Outcome>,
    /// The explanation of its first hold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_hold: Option<String>,
}

impl RouteTrace {
    fn record(&mut self, d: &Decision) {
        self.decisions += 1;
        if d.outcome.is_held() {
            self.worst = Some(self.worst.map_or(d.outcome, |w| w.max(d.outcome)));
            if self.first_hold.is_none() {
                self.first_hold = Some(d.explanation());
            }
        }
        self.last = Some(d.outcome);
    }
}

/// A route the two policies of `--diff` treated differently.
#[derive(Clone, Debug, Serialize)]
pub struct DiffRow {
    pub peer: IpAddr,
    pub prefix: IpNet,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_id: Option<u32>,
    pub a: RouteTrace,
    pub b: RouteTrace,
}

/// What a policy change would have done differently (shadow mode).
#[derive(Clone, Debug, Serialize)]
pub struct PolicyDiff {
    pub a: String,
    pub b: String,
    /// Routes that got a decision under either policy.
    pub routes_decided: usize,
    pub treated_alike: usize,
    /// Held (quarantined or rejected) at some point under A only.
    pub held_only_by_a: usize,
    pub held_only_by_b: usize,
    /// Held under both, but not the same way (quarantine vs reject, or a different end).
    pub held_differently: usize,
    pub examples: Vec<DiffRow>,
}

type RouteName = (IpAddr, IpNet, Option<u32>);

/// Counters per verdict slot: valid, invalid (wrong origin), invalid (too long), not found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateCounts(pub [u64; 4]);

impl StateCounts {
    pub fn add(&mut self, state: RovState) {
        self.0[state.slot()] += 1;
    }
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
    pub fn get(&self, state: RovState) -> u64 {
        self.0[state.slot()]
    }
    pub fn invalid(&self) -> u64 {
        self.0[1] + self.0[2]
    }
}

impl Serialize for StateCounts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(4))?;
        m.serialize_entry("valid", &self.0[0])?;
        m.serialize_entry("invalid_wrong_origin", &self.0[1])?;
        m.serialize_entry("invalid_too_long", &self.0[2])?;
        m.serialize_entry("not_found", &self.0[3])?;
        m.end()
    }
}

/// One row of the per-peer table.
#[derive(Clone, Debug, Serialize)]
pub struct PeerRow {
    pub peer: Peer,
    pub announcements: u64,
    pub withdrawals: u64,
    pub judged: StateCounts,
    pub routes_held: u64,
}

/// A VRP named in an explanation.
#[derive(Clone, Debug, Serialize)]
pub struct VrpRef {
    pub prefix: IpNet,
    pub max_length: u8,
    pub asn: Asn,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ta: Option<String>,
    /// True when the VRP had expired at the route's event time (it did not count).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub expired: bool,
}

/// One invalid claim (prefix, origin) and the evidence.
#[derive(Clone, Debug, Serialize)]
pub struct InvalidRow {
    pub prefix: IpNet,
    /// `None`: the path ends in an AS_SET (RFC 6811 origin NONE).
    pub origin: Option<Asn>,
    pub reason: crate::rpki::InvalidReason,
    /// Distinct peers that announced it.
    pub peers: usize,
    pub announcements: u64,
    pub first_seen: EventTime,
    pub example_path: AsPath,
    pub vrps: Vec<VrpRef>,
    /// One line for a ticket.
    pub why: String,
}

/// The Adj-RIB-In at the end of the replay.
#[derive(Clone, Debug, Serialize)]
pub struct RibSummary {
    pub routes: u64,
    pub peak_routes: u64,
    pub distinct_paths: u64,
    pub by_state: StateCounts,
}

/// Figures about the run itself.
#[derive(Clone, Debug, Serialize)]
pub struct Performance {
    pub elapsed_s: f64,
    pub route_events_per_s: f64,
    /// Resident memory when the replay started (VRP index loaded), bytes.
    pub rss_baseline_bytes: Option<u64>,
    /// Peak resident memory during the replay, bytes.
    pub rss_peak_bytes: Option<u64>,
    /// (peak - baseline) / peak routes stored: what one stored route costs, all included.
    pub bytes_per_stored_route: Option<f64>,
    /// CPU time of the parser thread (MRT parsing, and ROV when a judge runs), seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parser_cpu_s: Option<f64>,
    /// CPU time of the receiving thread (Adj-RIB-In, tallies, the judges, and ROV without
    /// a judge), seconds. With `parser_cpu_s` and the wall time it tells which side bounds
    /// the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receiver_cpu_s: Option<f64>,
}

/// CPU time the calling thread has used, in seconds (Linux: /proc/thread-self/stat, in
/// the kernel's USER_HZ ticks of 1/100 s).
pub fn thread_cpu_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // Fields after the command name, which ends at the last ')': state is field 3, utime
    // field 14, stime field 15.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// Everything `replay` found, for `--format table|json`.
#[derive(Clone, Debug, Serialize)]
pub struct ReplayReport {
    pub files: Vec<FileSummary>,
    pub expiry: &'static str,
    pub records: u64,
    pub route_events: u64,
    pub announcements: u64,
    pub withdrawals: u64,
    pub peer_downs: u64,
    pub routes_dropped_by_peer_down: u64,
    pub peers: usize,
    pub prefixes: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_time: Option<EventTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_time: Option<EventTime>,
    /// Every judged announcement, by verdict.
    pub judged: StateCounts,
    pub adj_rib_in: RibSummary,
    pub per_peer: Vec<PeerRow>,
    pub invalid_claims: usize,
    pub top_invalid: Vec<InvalidRow>,
    pub damage_total: u64,
    pub damage: Vec<Damage>,
    /// Departures from the MRT standard that were read in full (no route lost).
    pub notes: Vec<Damage>,
    /// False when any input was damaged or truncated.
    pub complete: bool,
    pub performance: Performance,
    /// One per policy (none with `--no-judge`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub judges: Vec<JudgeReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<PolicyDiff>,
}

mod tally;
pub use tally::{explain, Tally};

/// Peak and current resident memory from /proc (Linux), bytes.
pub fn memory() -> (Option<u64>, Option<u64>) {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return (None, None);
    };
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// Resets the peak-RSS mark (Linux ≥ 4.0), so a later peak measures only what follows.
pub fn reset_peak_memory() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Replays `config.files` in time order (by each file's first record) through ROV.
/// `log` receives one JSON line per judged announcement.
pub fn run<'a>(
    mut config: ReplayConfig,
    index: &'a VrpIndex,
    log: Option<&'a mut dyn Write>,
    judging: Option<Judging<'a>>,
) -> Result<ReplayReport, ReplayError> {
    let mut ordered = Vec::new();
    let mut total_bytes = 0u64;
    for path in &config.files {
        let first = mrt::first_record_time(path).map_err(|source| ReplayError::Open {
            path: path.clone(),
            source,
        })?;
        total_bytes += std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        ordered.push((first, path.clone()));
    }
    // Stable: files without a first record keep their place at the end.
    ordered.sort_by_key(|(t, _)| t.unwrap_or(EventTime(i64::MAX)));
    let files: Vec<PathBuf> = ordered.into_iter().map(|(_, p)| p).collect();

    reset_peak_memory();
    let (_, rss_baseline) = memory();
    let started = Instant::now();
    let receiver_cpu_start = thread_cpu_s();
    let disk = Arc::new(AtomicU64::new(0));
    let disk_for_ingest = disk.clone();
    let (tx, rx) = sync_channel::<Batch>(BATCHES_IN_FLIGHT);
    // Judged batches go back to the ingest thread, which drops their events and reuses
    // their buffers: allocation, reference counting and freeing all stay on one core.
    let (back_tx, back_rx) = sync_channel::<Batch>(BATCHES_IN_FLIGHT + 2);
    let honour_expires = config.honour_expires;
    let inject = std::mem::take(&mut config.inject);

    // ROV runs where there is room. Without a judge the parser thread is the busier, so
    // all of ROV runs on the receiving thread; the judge makes the receiving thread
    // busier, so then the parser thread interns prefixes and the receiving thread only
    // validates. Measured on the 4.6 M event update bench (medians of 7, CPU seconds
    // parser / receiver): without a judge, all ROV on the receiving thread 1.02 / 0.85;
    // with one, all ROV on the parser thread 1.36 / 1.18 (wall 1.45 s), split 1.20 / 1.37
    // (wall 1.38 s). Sharing validation by load (the parser validating when the queue is
    // over half full) was tried: 1.36 / 1.31, wall 1.45 s, from the two threads' caches.
    let intern_on_parser = judging.is_some();
    let mut rov = RovStage::new(index, honour_expires);
    let mut tally = Tally::new(index, honour_expires, log, judging);
    let mut write_error = None;
    let mut parser_prefixes = 0;
    let mut parser_cpu = None;
    std::thread::scope(|scope| -> Result<(), ReplayError> {
        let ingest = std::thread::Builder::new()
            .name("ingest".into())
            .spawn_scoped(scope, move || {
                ingest_files(
                    files,
                    inject,
                    intern_on_parser,
                    &tx,
                    &back_rx,
                    &disk_for_ingest,
                )
            })
            .map_err(|_| ReplayError::Ingest)?;

        for mut batch in rx {
            if write_error.is_none() {
                if intern_on_parser {
                    batch.validate(&mut rov.validator);
                } else {
                    batch.annotate(&mut rov);
                }
                if let Err(e) = tally.handle_batch(&batch) {
                    write_error = Some(e);
                }
            }
            if let Some(p) = config.progress.as_mut() {
                p(disk.load(Ordering::Relaxed), total_bytes);
            }
            // Full (the ingest thread has finished): drop it here.
            let _ = back_tx.try_send(batch);
        }
        (parser_prefixes, parser_cpu) = ingest.join().map_err(|_| ReplayError::Ingest)?;
        Ok(())
    })?;
    let prefixes = if intern_on_parser {
        parser_prefixes
    } else {
        rov.prefixes()
    };
    if let Some(e) = write_error {
        return Err(ReplayError::Output(e));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (rss_peak, _) = memory();
    let peak_routes = tally.peak_routes();
    let events = tally.judged.total() + tally.withdrawals;
    let performance = Performance {
        elapsed_s: elapsed,
        route_events_per_s: if elapsed > 0.0 {
            events as f64 / elapsed
        } else {
            0.0
        },
        rss_baseline_bytes: rss_baseline,
        rss_peak_bytes: rss_peak,
        bytes_per_stored_route: match (rss_peak, rss_baseline) {
            (Some(p), Some(b)) if peak_routes > 0 => {
                Some(p.saturating_sub(b) as f64 / peak_routes as f64)
            }
            _ => None,
        },
        parser_cpu_s: parser_cpu,
        receiver_cpu_s: thread_cpu_s()
            .zip(receiver_cpu_start)
            .map(|(end, start)| end - start),
    };
    Ok(tally.finish(config.top, prefixes, performance))
}

/// The ingest thread: parses `files` in order into batches (with `inject`'s routes
/// merged in by time), interning their prefixes when `intern`; returns the prefixes
/// interned and the thread's CPU time.
fn ingest_files(
    files: Vec<PathBuf>,
    inject: Vec<crate::eval::Injected>,
    intern: bool,
    tx: &std::sync::mpsc::SyncSender<Batch>,
    back_rx: &std::sync::mpsc::Receiver<Batch>,
    disk: &Arc<AtomicU64>,
) -> (usize, Option<f64>) {
    let mut interner = intern.then(Interner::default);
    let mut registry = PeerRegistry::default();
    let mut inject = inject.into_iter().peekable();
    let mut known: FxHashMap<(std::net::IpAddr, Asn), crate::model::PeerIdx> = FxHashMap::default();
    let mut batch = Batch::with_capacity(BATCH);
    let fresh = || match back_rx.try_recv() {
        Ok(mut b) => {
            b.clear();
            b
        }
        Err(_) => Batch::with_capacity(BATCH),
    };
    for path in files {
        let tx = &tx;
        let mut push = |ev: IngestEvent, batch: &mut Batch| {
            match &ev {
                IngestEvent::Peer(idx, p) => {
                    known.insert((p.addr, p.asn), *idx);
                }
                IngestEvent::Route(r) => {
                    while inject.peek().is_some_and(|i| i.time <= r.time) {
                        let Some(i) = inject.next() else { break };
                        let Some(&peer) = known.get(&(i.peer_addr, i.peer_asn)) else {
                            continue;
                        };
                        batch.events.push(IngestEvent::Route(RouteEvent {
                            time: i.time,
                            peer,
                            prefix: i.prefix,
                            path_id: None,
                            action: match i.path {
                                Some(p) => RouteAction::Announce(p),
                                None => RouteAction::Withdraw,
                            },
                            snapshot: false,
                        }));
                    }
                }
                _ => {}
            }
            batch.events.push(ev);
            if batch.events.len() >= BATCH {
                if let Some(interner) = interner.as_mut() {
                    batch.intern(interner);
                }
                let _ = tx.send(std::mem::replace(batch, fresh()));
            }
        };
        let res = mrt::read_file(&path, &mut registry, Some(disk.clone()), |ev| {
            push(ev, &mut batch)
        });
        if let Err(source) = res {
            // The file vanished or became unreadable between sorting and reading.
            let damage = Damage {
                file: path.clone(),
                offset: 0,
                skipped_bytes: None,
                kind: DamageKind::Unrecoverable,
                detail: format!("cannot open: {source}"),
            };
            push(IngestEvent::Damage(Box::new(damage)), &mut batch);
        }
    }
    if !batch.events.is_empty() {
        if let Some(interner) = interner.as_mut() {
            batch.intern(interner);
        }
        let _ = tx.send(batch);
    }
    (interner.map_or(0, |i| i.prefixes.len()), thread_cpu_s())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PeerIdx, RouteAction};
    use std::net::IpAddr;

    fn peer(asn: u32) -> Peer {
        Peer {
            feed: Arc::from("t"),
            addr: IpAddr::from([192, 0, 2, asn as u8]),
            asn: Asn(asn),
            bgp_id: None,
            loc_rib: false,
            bmp: false,
        }
    }

    fn announce(peer: u32, prefix: &str, path: &[u32]) -> IngestEvent {
        IngestEvent::Route(RouteEvent {
            time: EventTime::from_secs(1_400_000_000),
            peer: PeerIdx(peer),
            prefix: prefix.parse().unwrap(),
            path_id: None,
            action: RouteAction::Announce(AsPath::sequence(path)),
            snapshot: false,
        })
    }

    mod rov_cache {
        use super::*;
        use proptest::prelude::*;

        fn event(peer: u32, prefix: IpNet, origin: Option<u32>, secs: i64) -> IngestEvent {
            let path = match origin {
                Some(o) => AsPath::sequence(&[peer + 1, o]),
                None => AsPath::default(),
            };
            IngestEvent::Route(RouteEvent {
                time: EventTime::from_secs(secs),
                peer: PeerIdx(peer),
                prefix,
                path_id: None,
                action: if origin == Some(0) {
                    RouteAction::Withdraw
                } else {
                    RouteAction::Announce(path)
                },
                snapshot: false,
            })
        }

        fn prefixes() -> Vec<IpNet> {
            [
                "10.0.0.0/8",
                "10.1.0.0/16",
                "10.1.2.0/24",
                "10.1.2.0/25",
                "2001:db8::/32",
            ]
            .iter()
            .map(|p| p.parse().unwrap())
            .collect()
        }

        proptest! {
            /// The batched, prefetching ROV stage says what plain
            /// RFC 6811 validation says, event by event, with VRPs that expire and
            /// times that go back and forth (files replayed out of order).
            #[test]
            fn batched_rov_equals_plain_validation(
                vrps in proptest::collection::vec(
                    (0usize..5, 0u8..=8, 1u32..4, proptest::option::of(90i64..110)), 0..8),
                events in proptest::collection::vec(
                    (0u32..2, 0usize..5, proptest::option::of(0u32..4), 80i64..120), 1..300),
                honour in any::<bool>(),
            ) {
                let ps = prefixes();
                let vrps: Vec<Vrp> = vrps.iter().map(|&(p, extra, asn, expires)| Vrp {
                    prefix: ps[p],
                    max_length: (ps[p].prefix_len() + extra).min(ps[p].max_prefix_len()),
                    asn: Asn(asn),
                    ta: None,
                    expires,
                }).collect();
                let index = VrpIndex::from_vrps(vrps);
                let mut rov = RovStage::new(&index, honour);
                let mut batch = Batch::with_capacity(BATCH);
                batch.events.push(IngestEvent::Peer(PeerIdx(0), peer(1)));
                batch.events.push(IngestEvent::Peer(PeerIdx(1), peer(2)));
                let evs: Vec<IngestEvent> = events
                    .iter()
                    .map(|&(peer, p, origin, secs)| event(peer, ps[p], origin, secs))
                    .collect();
                // Batches of 7: the look-ahead crosses batch ends.
                let mut got = Vec::new();
                for chunk in evs.chunks(7) {
                    batch.events.extend(chunk.iter().cloned());
                    batch.annotate(&mut rov);
                    got.append(&mut batch.verdicts);
                    batch.clear();
                }
                prop_assert_eq!(got.len(), evs.len());
                for (ev, v) in evs.iter().zip(&got) {
                    let IngestEvent::Route(r) = ev else { unreachable!() };
                    match &r.action {
                        RouteAction::Announce(path) => {
                            let origin = path.origin(Asn(r.peer.0 + 1));
                            prop_assert_eq!(v.origin, origin);
                            let at = honour.then(|| r.time.secs());
                            prop_assert_eq!(
                                v.state,
                                crate::rpki::validate(&index, &r.prefix, origin, at),
                                "{:?}", r
                            );
                        }
                        RouteAction::Withdraw => prop_assert_eq!(v.state, RovState::NotFound),
                    }
                }
            }
        }
    }

    #[test]
    fn stage_counts_claims_withdrawals_and_peer_down() {
        let index = VrpIndex::from_vrps(vec![Vrp {
            prefix: "192.0.2.0/24".parse().unwrap(),
            max_length: 24,
            asn: Asn(64500),
            ta: None,
            expires: None,
        }]);
        let mut out = Vec::new();
        let mut rov = RovStage::new(&index, true);
        let mut tally = Tally::new(&index, true, Some(&mut out), None);
        let mut stage = |ev: IngestEvent| {
            let v = rov.annotate(&ev);
            tally.handle(&ev, v)
        };
        stage(IngestEvent::Peer(PeerIdx(0), peer(1))).unwrap();
        stage(IngestEvent::Peer(PeerIdx(1), peer(2))).unwrap();
        stage(announce(0, "192.0.2.0/24", &[1, 64500])).unwrap();
        stage(announce(0, "192.0.2.0/25", &[1, 64500])).unwrap();
        stage(announce(1, "192.0.2.0/24", &[2, 666])).unwrap();
        stage(announce(0, "198.51.100.0/24", &[1, 7])).unwrap();
        // A second peer for the same invalid claim; it replaces peer 0's valid route.
        stage(announce(0, "192.0.2.0/24", &[1, 666])).unwrap();
        stage(IngestEvent::Route(RouteEvent {
            time: EventTime::from_secs(1_400_000_001),
            peer: PeerIdx(0),
            prefix: "198.51.100.0/24".parse().unwrap(),
            path_id: None,
            action: RouteAction::Withdraw,
            snapshot: false,
        }))
        .unwrap();
        stage(IngestEvent::PeerDown {
            time: EventTime::from_secs(1_400_000_002),
            peer: PeerIdx(1),
            state: "Idle".into(),
        })
        .unwrap();
        let perf = Performance {
            elapsed_s: 0.0,
            route_events_per_s: 0.0,
            rss_baseline_bytes: None,
            rss_peak_bytes: None,
            bytes_per_stored_route: None,
            parser_cpu_s: None,
            receiver_cpu_s: None,
        };
        let report = tally.finish(10, rov.prefixes(), perf);
        assert_eq!(report.judged.0, [1, 2, 1, 1]);
        assert_eq!(report.prefixes, 3);
        assert_eq!(report.withdrawals, 1);
        assert_eq!(report.routes_dropped_by_peer_down, 1);
        assert_eq!(report.adj_rib_in.routes, 2);
        assert_eq!(report.invalid_claims, 2);
        let wrong = report
            .top_invalid
            .iter()
            .find(|r| r.origin == Some(Asn(666)))
            .unwrap();
        assert_eq!((wrong.peers, wrong.announcements), (2, 2));
        assert!(
            wrong.why.contains("AS666 is not authorised"),
            "{}",
            wrong.why
        );
        assert!(
            wrong.why.contains("192.0.2.0/24-24 AS64500"),
            "{}",
            wrong.why
        );
        let long = report
            .top_invalid
            .iter()
            .find(|r| r.origin == Some(Asn(64500)))
            .unwrap();
        assert!(long.why.starts_with("too long: /25"), "{}", long.why);
        let lines = String::from_utf8(out).unwrap();
        assert_eq!(lines.lines().count(), 5);
        assert!(
            lines.contains(r#""rpki":"invalid","reason":"too-long""#),
            "{lines}"
        );
    }
}
