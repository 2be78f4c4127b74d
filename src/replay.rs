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

#[derive(Default, Clone, Copy)]
struct PeerAcc {
    announcements: u64,
    withdrawals: u64,
    judged: StateCounts,
}

/// Evidence for one RPKI-invalid (prefix, origin) claim. Update streams carry ~10^5 of
/// them, so it is kept small: most claims are carried by one peer.
struct ClaimAcc {
    prefix: IpNet,
    origin: Option<Asn>,
    example_path: AsPath,
    announcements: u64,
    first_seen: EventTime,
    /// Distinct peers carrying it: the first inline, the rest (rare) boxed.
    first_peer: u32,
    more_peers: Box<[u32]>,
    state: RovState,
}

/// The RPKI-invalid claims of a replay, for the report: per prefix id, the first of its
/// claims (the rest chained by `next`), so that the slots a batch will touch can be
/// prefetched a few events ahead, as ROV does. (An `FxHashMap` keyed by prefix id and
/// origin cost 0.16 s of the judging thread's 1.31 s on the 4.6 M event update bench, nearly
/// all of it one cache miss per invalid announcement; hashbrown does not say where a key's
/// slot is, so it cannot be prefetched.)
#[derive(Default)]
struct InvalidClaims {
    heads: Vec<u32>,
    accs: Vec<(u32, ClaimAcc)>,
}

impl InvalidClaims {
    const NONE: u32 = u32::MAX;

    fn len(&self) -> usize {
        self.accs.len()
    }

    fn iter(&self) -> impl Iterator<Item = &ClaimAcc> {
        self.accs.iter().map(|(_, a)| a)
    }

    /// Stage 0: the prefix's head; stage 1: its first claim.
    #[inline]
    fn prefetch(&self, pid: PrefixId, stage: u8) {
        let Some(head) = self.heads.get(pid.0 as usize) else {
            return;
        };
        if stage == 0 {
            // The slot's address only: reading it now would wait for it.
            crate::mem::prefetch(head);
        } else if let Some(a) = self.accs.get(*head as usize) {
            crate::mem::prefetch(a);
        }
    }

    fn entry(
        &mut self,
        pid: PrefixId,
        origin: Option<Asn>,
        new: impl FnOnce() -> ClaimAcc,
    ) -> &mut ClaimAcc {
        let i = pid.0 as usize;
        if self.heads.len() <= i {
            self.heads.resize(i + 1, Self::NONE);
        }
        let mut at = self.heads[i];
        while at != Self::NONE {
            let (next, acc) = &self.accs[at as usize];
            if acc.origin == origin {
                return &mut self.accs[at as usize].1;
            }
            at = *next;
        }
        let at = self.accs.len();
        self.accs.push((self.heads[i], new()));
        self.heads[i] = at as u32;
        &mut self.accs[at].1
    }
}

impl ClaimAcc {
    fn add_peer(&mut self, peer: u32) {
        if peer == self.first_peer {
            return;
        }
        if !self.more_peers.contains(&peer) {
            let mut more = std::mem::take(&mut self.more_peers).into_vec();
            more.push(peer);
            self.more_peers = more.into_boxed_slice();
        }
    }

    fn peers(&self) -> usize {
        1 + self.more_peers.len()
    }
}

/// The recording side of a replay: consumes [`IngestEvent`]s with their [`Verdict`]s, in
/// order, and keeps the Adj-RIB-In and everything the report needs.
pub struct Tally<'a> {
    /// The Adj-RIB-In and the judges (what the daemon runs too).
    pipeline: Pipeline<'a>,
    /// Where the judges' decisions go: the decision log, the traces of `--diff`, an
    /// observer, a sink.
    out: Recorder<'a>,
    index: RpkiRef<'a, VrpIndex>,
    honour_expires: bool,
    acc: Vec<PeerAcc>,
    judged: StateCounts,
    /// RPKI-invalid claims.
    claims: InvalidClaims,
    damage: Vec<Damage>,
    damage_total: u64,
    notes: Vec<Damage>,
    files: Vec<FileSummary>,
    peer_downs: u64,
    dropped: u64,
    withdrawals: u64,
    first_time: Option<EventTime>,
    last_time: Option<EventTime>,
    log: Option<&'a mut dyn Write>,
}

/// The replay's [`DecisionSink`]: the first judge's decisions to the decision log, the
/// observer and the sink; every judge's to its trace (with two policies).
struct Recorder<'a> {
    decision_log: Option<&'a mut dyn Write>,
    sink: Option<&'a mut dyn FnMut(Decision)>,
    observer: Option<&'a mut dyn Observer>,
    /// Per policy, how each decided route fared (only with two policies).
    traces: Vec<FxHashMap<RouteName, RouteTrace>>,
}

impl DecisionSink for Recorder<'_> {
    fn decision(&mut self, judge: usize, d: Decision) -> io::Result<()> {
        if judge == 0 {
            if let Some(log) = self.decision_log.as_mut() {
                serde_json::to_writer(&mut **log, &d)?;
                log.write_all(b"\n")?;
            }
        }
        if let Some(t) = self.traces.get_mut(judge) {
            t.entry((d.peer, d.prefix, d.path_id))
                .or_default()
                .record(&d);
        }
        if judge == 0 {
            if let Some(o) = self.observer.as_mut() {
                o.decision(&d);
            }
            if let Some(sink) = self.sink.as_mut() {
                sink(d);
            }
        }
        Ok(())
    }
}

/// One line of `--output` JSONL.
#[derive(Serialize)]
struct RouteLine<'a> {
    time: EventTime,
    peer: std::net::IpAddr,
    peer_asn: Asn,
    prefix: IpNet,
    #[serde(skip_serializing_if = "Option::is_none")]
    path_id: Option<u32>,
    origin: Option<Asn>,
    as_path: &'a AsPath,
    rpki: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<crate::rpki::InvalidReason>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    vrps: Vec<VrpRef>,
}

impl<'a> Tally<'a> {
    pub fn new(
        index: impl Into<RpkiRef<'a, VrpIndex>>,
        honour_expires: bool,
        log: Option<&'a mut dyn Write>,
        judging: Option<Judging<'a>>,
    ) -> Self {
        let index: RpkiRef<'a, VrpIndex> = index.into();
        let (judges, out) = match judging {
            Some(j) => {
                let n = j.policies.len();
                let judges: Vec<Judge<'a>> = j
                    .policies
                    .into_iter()
                    .map(|p| Judge::new(p, index.clone(), j.aspa, honour_expires, j.rpki_serial))
                    .collect();
                let traces = if n > 1 {
                    vec![FxHashMap::default(); n]
                } else {
                    Vec::new()
                };
                let out = Recorder {
                    decision_log: j.decisions,
                    sink: j.sink,
                    observer: j.observer,
                    traces,
                };
                (judges, out)
            }
            None => (
                Vec::new(),
                Recorder {
                    decision_log: None,
                    sink: None,
                    observer: None,
                    traces: Vec::new(),
                },
            ),
        };
        // Nobody reads them: the judges count their decisions without building them.
        let built = out.decision_log.is_some()
            || out.sink.is_some()
            || out.observer.is_some()
            || !out.traces.is_empty();
        Tally {
            pipeline: Pipeline::new(judges, honour_expires, built),
            out,
            index,
            honour_expires,
            acc: Vec::new(),
            judged: StateCounts::default(),
            claims: InvalidClaims::default(),
            damage: Vec::new(),
            damage_total: 0,
            notes: Vec::new(),
            files: Vec::new(),
            peer_downs: 0,
            dropped: 0,
            withdrawals: 0,
            first_time: None,
            last_time: None,
            log,
        }
    }

    /// The judges (one per policy).
    pub fn judges(&self) -> &[Judge<'a>] {
        self.pipeline.judges()
    }

    /// Handles a batch of events with their verdicts.
    fn handle_batch(&mut self, batch: &Batch) -> io::Result<()> {
        self.handle_all(&batch.events, &batch.verdicts)
    }

    /// Handles a run of events with their verdicts from [`RovStage::annotate_all`],
    /// prefetching the invalid-claim slots ahead. (Prefetching each route's Adj-RIB-In slot
    /// and the judge's claim chain a few events ahead, as ROV does, was tried: no
    /// measurable change on the update bench.)
    pub fn handle_all(&mut self, events: &[IngestEvent], verdicts: &[Verdict]) -> io::Result<()> {
        const STEP: usize = 4;
        let invalid = |v: &Verdict| match (v.prefix, v.state) {
            (Some(pid), RovState::Invalid(_)) => Some(pid),
            _ => None,
        };
        let mut i = 0;
        for ev in events {
            let v = match ev {
                IngestEvent::Route(_) => {
                    if let Some(pid) = verdicts.get(i + 2 * STEP).and_then(invalid) {
                        self.claims.prefetch(pid, 0);
                    }
                    if let Some(pid) = verdicts.get(i + STEP).and_then(invalid) {
                        self.claims.prefetch(pid, 1);
                    }
                    let v = verdicts.get(i).copied();
                    i += 1;
                    v
                }
                _ => None,
            };
            self.handle(ev, v)?;
        }
        Ok(())
    }

    /// Handles one event; `verdict` is [`RovStage::annotate`]'s answer for it. Fails only
    /// when writing the route log fails.
    ///
    /// Takes the event by reference: the replay hands batches back to the ingest thread,
    /// which drops them there, so the AS paths' reference counts never bounce between
    /// cores (measured: ~10% of the judging thread's time).
    pub fn handle(&mut self, ev: &IngestEvent, verdict: Option<Verdict>) -> io::Result<()> {
        match ev {
            IngestEvent::Peer(idx, peer) => {
                let i = idx.0 as usize;
                if self.acc.len() <= i {
                    self.acc.resize(i + 1, PeerAcc::default());
                }
                self.pipeline.peer(*idx, peer);
            }
            IngestEvent::Route(r) => {
                if let Some(v) = verdict {
                    self.route(r, v)?;
                    self.pipeline.route(r, v);
                    if !self.pipeline.judges().is_empty() {
                        self.observe(r, v);
                        self.pipeline.drain(&mut self.out)?;
                    }
                }
            }
            IngestEvent::PeerDown { peer, time, .. } => {
                self.peer_downs += 1;
                self.dropped += self.pipeline.peer_down(*time, *peer) as u64;
                self.pipeline.drain(&mut self.out)?;
            }
            IngestEvent::Damage(d) if !d.kind.is_loss() => self.notes.push((**d).clone()),
            IngestEvent::Damage(d) => {
                self.damage_total += 1;
                if self.damage.len() < DAMAGE_KEPT {
                    self.damage.push((**d).clone());
                }
            }
            IngestEvent::FileDone(s) => self.files.push((**s).clone()),
        }
        Ok(())
    }

    /// The report's side of a route event (the pipeline stores and judges it).
    fn route(&mut self, r: &RouteEvent, v: Verdict) -> io::Result<()> {
        if self.first_time.is_none() {
            self.first_time = Some(r.time);
        }
        self.last_time = Some(r.time);
        let pi = r.peer.0 as usize;
        let path = match &r.action {
            RouteAction::Withdraw => {
                self.withdrawals += 1;
                if let Some(a) = self.acc.get_mut(pi) {
                    a.withdrawals += 1;
                }
                return Ok(());
            }
            RouteAction::Announce(path) => path,
        };
        let (Some(pid), origin, state) = (v.prefix, v.origin, v.state) else {
            return Ok(());
        };
        let peer_asn = self.pipeline.peers().get(pi).map_or(Asn::ZERO, |p| p.asn);
        self.judged.add(state);
        if let Some(a) = self.acc.get_mut(pi) {
            a.announcements += 1;
            a.judged.add(state);
        }
        if let RovState::Invalid(_) = state {
            let claim = self.claims.entry(pid, origin, || ClaimAcc {
                prefix: r.prefix,
                origin,
                example_path: path.clone(),
                announcements: 0,
                first_seen: r.time,
                first_peer: r.peer.0,
                more_peers: Box::default(),
                state,
            });
            claim.state = state;
            claim.announcements += 1;
            claim.add_peer(r.peer.0);
        }
        if self.log.is_some() {
            self.write_line(r, path, origin, state, peer_asn)?;
        }
        Ok(())
    }

    /// Tells the observer (`eval`) how the first judge treats the route now.
    fn observe(&mut self, r: &RouteEvent, v: Verdict) {
        let (Some(o), Some(j), Some(pid)) = (
            self.out.observer.as_mut(),
            self.pipeline.judges().first(),
            v.prefix,
        ) else {
            return;
        };
        let outcome = match r.action {
            RouteAction::Withdraw => None,
            RouteAction::Announce(_) => j.route_outcome(r.peer, pid, r.path_id),
        };
        o.route(r, v.origin, outcome);
    }

    fn judge_reports(&mut self, top: usize) -> Vec<JudgeReport> {
        let end = self.last_time.unwrap_or_default();
        self.pipeline
            .judges()
            .iter()
            .map(|j| {
                let mut conflicts: Vec<ConflictRecord> = j.conflicts().to_vec();
                conflicts.sort_by(|a, b| {
                    b.routes_held
                        .cmp(&a.routes_held)
                        .then(
                            b.witnesses
                                .witnesses
                                .len()
                                .cmp(&a.witnesses.witnesses.len()),
                        )
                        .then(a.first_seen.cmp(&b.first_seen))
                        .then(a.prefix.cmp(&b.prefix))
                });
                conflicts.truncate(top);
                let mut trust = j.trust_table(end.max(j.now()));
                trust.sort_by(|a, b| {
                    a.score
                        .total_cmp(&b.score)
                        .then(a.peer.addr.cmp(&b.peer.addr))
                });
                JudgeReport {
                    policy: j.policy().name.clone(),
                    policy_hash: j.policy_hash().to_string(),
                    act: j.policy().act,
                    stats: j.stats(),
                    held_at_end: j.held_routes(),
                    conflicts,
                    trust,
                }
            })
            .collect()
    }

    fn policy_diff(&self, top: usize) -> Option<PolicyDiff> {
        let [a, b] = self.out.traces.as_slice() else {
            return None;
        };
        let mut keys: Vec<&RouteName> = a.keys().chain(b.keys()).collect();
        keys.sort();
        keys.dedup();
        let empty = RouteTrace::default();
        let mut diff = PolicyDiff {
            a: self.pipeline.judges()[0].policy().name.clone(),
            b: self.pipeline.judges()[1].policy().name.clone(),
            routes_decided: keys.len(),
            treated_alike: 0,
            held_only_by_a: 0,
            held_only_by_b: 0,
            held_differently: 0,
            examples: Vec::new(),
        };
        for k in keys {
            let ta = a.get(k).unwrap_or(&empty);
            let tb = b.get(k).unwrap_or(&empty);
            match (ta.worst, tb.worst) {
                (wa, wb) if wa == wb && ta.last == tb.last => {
                    diff.treated_alike += 1;
                    continue;
                }
                (Some(_), None) => diff.held_only_by_a += 1,
                (None, Some(_)) => diff.held_only_by_b += 1,
                _ => diff.held_differently += 1,
            }
            if diff.examples.len() < top {
                diff.examples.push(DiffRow {
                    peer: k.0,
                    prefix: k.1,
                    path_id: k.2,
                    a: ta.clone(),
                    b: tb.clone(),
                });
            }
        }
        Some(diff)
    }

    fn write_line(
        &mut self,
        r: &RouteEvent,
        path: &AsPath,
        origin: Option<Asn>,
        state: RovState,
        peer_asn: Asn,
    ) -> io::Result<()> {
        let vrps = if state == RovState::NotFound {
            Vec::new()
        } else {
            self.vrp_refs(&r.prefix, r.time)
        };
        let line = RouteLine {
            time: r.time,
            peer: self
                .pipeline
                .peers()
                .get(r.peer.0 as usize)
                .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |p| p.addr),
            peer_asn,
            prefix: r.prefix,
            path_id: r.path_id,
            origin,
            as_path: path,
            rpki: state.name(),
            reason: state.reason(),
            vrps,
        };
        if let Some(log) = self.log.as_mut() {
            serde_json::to_writer(&mut *log, &line)?;
            log.write_all(b"\n")?;
        }
        Ok(())
    }

    fn vrp_refs(&self, prefix: &IpNet, time: EventTime) -> Vec<VrpRef> {
        let at = time.secs();
        self.index
            .covering(prefix)
            .into_iter()
            .map(|v: &Vrp| VrpRef {
                prefix: v.prefix,
                max_length: v.max_length,
                asn: v.asn,
                ta: v.ta.clone(),
                expired: self.honour_expires && v.expires.is_some_and(|e| e < at),
            })
            .collect()
    }

    /// Closes the replay and builds the report.
    /// `prefixes`: [`RovStage::prefixes`].
    pub fn finish(mut self, top: usize, prefixes: usize, performance: Performance) -> ReplayReport {
        let judges = self.judge_reports(top);
        let diff = self.policy_diff(top);
        let mut held = vec![0u64; self.pipeline.peers().len()];
        let mut by_state = StateCounts::default();
        for (peer, _, route) in self.pipeline.rib().iter() {
            if let Some(h) = held.get_mut(peer.0 as usize) {
                *h += 1;
            }
            by_state.0[(route.slot as usize).min(3)] += 1;
        }
        let per_peer = self
            .pipeline
            .peers()
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let a = self.acc.get(i).copied().unwrap_or_default();
                PeerRow {
                    peer: p.clone(),
                    announcements: a.announcements,
                    withdrawals: a.withdrawals,
                    judged: a.judged,
                    routes_held: held[i],
                }
            })
            .collect();
        let mut claims: Vec<_> = self
            .claims
            .iter()
            .map(|c| (c.prefix, c.origin, c))
            .collect();
        claims.sort_by(|a, b| {
            b.2.peers()
                .cmp(&a.2.peers())
                .then(b.2.announcements.cmp(&a.2.announcements))
                .then((a.0, a.1).cmp(&(b.0, b.1)))
        });
        let top_invalid = claims
            .into_iter()
            .take(top)
            .map(|(prefix, origin, c)| {
                let vrps = self.vrp_refs(&prefix, c.first_seen);
                InvalidRow {
                    prefix,
                    origin,
                    reason: c
                        .state
                        .reason()
                        .unwrap_or(crate::rpki::InvalidReason::WrongOrigin),
                    peers: c.peers(),
                    announcements: c.announcements,
                    first_seen: c.first_seen,
                    example_path: c.example_path.clone(),
                    why: explain(&prefix, origin, c.state, &vrps),
                    vrps,
                }
            })
            .collect();
        let announcements = self.judged.total();
        ReplayReport {
            records: self.files.iter().map(|f| f.records).sum(),
            complete: self.damage_total == 0,
            files: self.files,
            expiry: if self.honour_expires {
                "judged at event time"
            } else {
                "ignored"
            },
            route_events: announcements + self.withdrawals,
            announcements,
            withdrawals: self.withdrawals,
            peer_downs: self.peer_downs,
            routes_dropped_by_peer_down: self.dropped,
            peers: self.pipeline.peers().len(),
            prefixes,
            first_time: self.first_time,
            last_time: self.last_time,
            judged: self.judged,
            adj_rib_in: RibSummary {
                routes: self.pipeline.rib().len() as u64,
                peak_routes: self.pipeline.rib().peak_len() as u64,
                distinct_paths: self.pipeline.rib().distinct_paths() as u64,
                by_state,
            },
            per_peer,
            invalid_claims: self.claims.len(),
            top_invalid,
            damage_total: self.damage_total,
            damage: self.damage,
            notes: self.notes,
            performance,
            judges,
            diff,
        }
    }

    /// Most routes held at once (for memory accounting).
    pub fn peak_routes(&self) -> usize {
        self.pipeline.rib().peak_len()
    }
}

/// The one-line reason an operator pastes into a ticket.
pub fn explain(prefix: &IpNet, origin: Option<Asn>, state: RovState, vrps: &[VrpRef]) -> String {
    let live: Vec<&VrpRef> = vrps.iter().filter(|v| !v.expired).collect();
    let list = |vs: &[&VrpRef]| {
        vs.iter()
            .map(|v| format!("{}-{} {}", v.prefix, v.max_length, v.asn))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match (state, origin) {
        (RovState::Valid, _) => format!("valid: matched by {}", list(&live)),
        (RovState::NotFound, _) => "not-found: no VRP covers this prefix".to_string(),
        (RovState::Invalid(crate::rpki::InvalidReason::TooLong), Some(o)) => {
            let mine: Vec<&VrpRef> = live.iter().copied().filter(|v| v.asn == o).collect();
            format!(
                "too long: /{} exceeds maxLength of {}",
                prefix.prefix_len(),
                list(&mine)
            )
        }
        (RovState::Invalid(_), None) => format!(
            "no origin (path ends in an AS_SET) and covered by {}",
            list(&live)
        ),
        (RovState::Invalid(_), Some(o)) => {
            format!("{o} is not authorised; covering VRPs: {}", list(&live))
        }
    }
}

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
                let mut interner = intern_on_parser.then(Interner::default);
                let mut registry = PeerRegistry::default();
                let mut inject = inject.into_iter().peekable();
                let mut known: FxHashMap<(std::net::IpAddr, Asn), crate::model::PeerIdx> =
                    FxHashMap::default();
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
                    let res =
                        mrt::read_file(&path, &mut registry, Some(disk_for_ingest.clone()), |ev| {
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
