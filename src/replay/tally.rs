//! [`Tally`]: what the replay report needs, recorded batch by batch on the receiving
//! thread around the [`Pipeline`] (Adj-RIB-In and judges): counters per peer, the
//! RPKI-invalid claims with their evidence, damage, the route log and the judges' report.

use super::*;

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
    pub(super) judged: StateCounts,
    /// RPKI-invalid claims.
    claims: InvalidClaims,
    damage: Vec<Damage>,
    damage_total: u64,
    notes: Vec<Damage>,
    files: Vec<FileSummary>,
    peer_downs: u64,
    dropped: u64,
    pub(super) withdrawals: u64,
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
    pub(super) fn handle_batch(&mut self, batch: &Batch) -> io::Result<()> {
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
