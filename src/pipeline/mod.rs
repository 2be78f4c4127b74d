//! The pipeline that `replay` and `run` share: route events through the ROV stage
//! ([`RovStage`]: each announcement's RFC 6811 [`Verdict`]), then the [`Pipeline`]: the
//! Adj-RIB-In, the judges (one per policy) and their decisions, each with its AS path and
//! covering VRPs filled in, to a [`DecisionSink`].
//!
//! ```text
//!  IngestEvent batch ─► RovStage::annotate_all ─► Pipeline::handle_all ─► DecisionSink
//!                       (intern, validate)        (Adj-RIB-In, judges)    (replay: log,
//!                                                                          traces; run:
//!                                                                          state, acting)
//! ```
//!
//! What a command reports about the events (the replay's per-peer counts, RPKI-invalid
//! claims, damage) is the command's own: [`crate::replay::Tally`] wraps a pipeline for
//! the replay report, the daemon uses one directly.

pub mod limits;
mod rov;

pub use limits::{LimitEvent, LimitStatus, Limits};
pub(crate) use rov::{intern_all, validate_all, Interner, Validator};
pub use rov::{RovStage, Verdict};

use crate::ingest::IngestEvent;
use crate::judge::{Decision, Judge, Outcome};
use crate::model::{EventTime, Peer, PeerIdx, RouteAction, RouteEvent};
use crate::rib::AdjRibIn;
use crate::rpki::{AspaSet, VrpIndex};
use std::io;
use std::sync::Arc;

/// Where a pipeline's decisions go.
pub trait DecisionSink {
    /// A decision of judge `judge` (0: the first policy's, the one acted on), its AS path
    /// and covering VRPs filled in.
    fn decision(&mut self, judge: usize, d: Decision) -> io::Result<()>;
}

/// The first judge's decisions, collected (the daemon's sink).
impl DecisionSink for Vec<Decision> {
    fn decision(&mut self, judge: usize, d: Decision) -> io::Result<()> {
        if judge == 0 {
            self.push(d);
        }
        Ok(())
    }
}

/// The Adj-RIB-In and the judges, fed route events with their verdicts, in order.
pub struct Pipeline<'a> {
    honour_expires: bool,
    peers: Vec<Peer>,
    rib: AdjRibIn,
    judges: Vec<Judge<'a>>,
    /// Whether decisions are built for a sink, or only counted (nobody reads them).
    built: bool,
    /// Max-prefix per peer and router (the daemon's; see [`limits`]).
    limits: Option<limits::MaxPrefix>,
}

impl<'a> Pipeline<'a> {
    /// A pipeline over `judges`; `built`: whether anybody reads their decisions (when
    /// not, the judges count them without building them, and [`Self::drain`] drops them).
    pub fn new(mut judges: Vec<Judge<'a>>, honour_expires: bool, built: bool) -> Self {
        for j in &mut judges {
            j.keep_decisions(built);
        }
        Pipeline {
            honour_expires,
            peers: Vec::new(),
            rib: AdjRibIn::default(),
            judges,
            built,
            limits: None,
        }
    }

    /// Limits the routes each BMP peer and each monitored router may store (see
    /// [`limits`]); call before any peer registers.
    pub fn set_limits(&mut self, l: Limits) {
        self.limits = Some(limits::MaxPrefix::new(l));
    }

    /// The limits' crossings since last taken, and the new routes refused (per peer,
    /// per router) meanwhile.
    pub fn take_limit_events(&mut self) -> (Vec<LimitEvent>, [u64; 2]) {
        self.limits.as_mut().map(|m| m.take()).unwrap_or_default()
    }

    /// The peers and routers at or past a limit's warning.
    pub fn limit_status(&self) -> Vec<LimitStatus> {
        self.limits
            .as_ref()
            .map(|m| m.status(&self.peers))
            .unwrap_or_default()
    }

    /// A run of events with their verdicts from [`RovStage::annotate_all`], decisions to
    /// `sink` as they come.
    pub fn handle_all(
        &mut self,
        events: &[IngestEvent],
        verdicts: &[Verdict],
        sink: &mut dyn DecisionSink,
    ) -> io::Result<()> {
        let mut i = 0;
        for ev in events {
            match ev {
                IngestEvent::Route(r) => {
                    if let Some(&v) = verdicts.get(i) {
                        self.route(r, v);
                        self.drain(sink)?;
                    }
                    i += 1;
                }
                IngestEvent::Peer(idx, peer) => self.peer(*idx, peer),
                IngestEvent::PeerDown { peer, time, .. } => {
                    self.peer_down(*time, *peer);
                    self.drain(sink)?;
                }
                IngestEvent::Damage(_) | IngestEvent::FileDone(_) => {}
            }
        }
        Ok(())
    }

    /// A peer registered (or registered again) under `idx`.
    pub fn peer(&mut self, idx: PeerIdx, peer: &Peer) {
        let i = idx.0 as usize;
        if self.peers.len() <= i {
            self.peers.resize(i + 1, peer.clone());
        }
        self.peers[i] = peer.clone();
        if let Some(m) = self.limits.as_mut() {
            m.peer(idx, peer);
        }
        for j in &mut self.judges {
            j.peer(idx, peer);
        }
    }

    /// A route event with its verdict: into the Adj-RIB-In, then to every judge. Their
    /// decisions wait for [`Self::drain`].
    pub fn route(&mut self, r: &RouteEvent, v: crate::pipeline::Verdict) {
        let Some(pid) = v.prefix else {
            return;
        };
        match &r.action {
            RouteAction::Withdraw => {
                let gone = self.rib.remove(r.peer, pid, r.path_id);
                if let (Some(m), Some(_)) = (self.limits.as_mut(), gone) {
                    if let Some(who) = self.peers.get(r.peer.0 as usize) {
                        m.removed(r.peer, who, 1);
                    }
                }
                for j in &mut self.judges {
                    j.withdraw(r.time, r.peer, pid, r.path_id);
                }
            }
            RouteAction::Announce(path) => {
                let old = self
                    .rib
                    .insert(r.peer, pid, r.path_id, path, v.state.slot() as u8);
                // A limited peer's new route is kept only under its limits (checked after
                // the insert, which says whether it is new: no second look-up).
                if let (None, Some(m), Some(who)) =
                    (old, self.limits.as_mut(), self.peers.get(r.peer.0 as usize))
                {
                    if m.limited(r.peer) {
                        if !m.admit(r.peer, who) {
                            self.rib.remove(r.peer, pid, r.path_id);
                            return;
                        }
                        m.added(r.peer, who);
                    }
                }
                if let Some(a) = v.announce(r) {
                    for j in &mut self.judges {
                        j.announce(a);
                    }
                }
            }
        }
    }

    /// A peer's session went down: its routes leave the Adj-RIB-In and the judges.
    /// Returns how many routes it had.
    pub fn peer_down(&mut self, time: EventTime, peer: PeerIdx) -> usize {
        let dropped = self.rib.clear_peer(peer);
        if let (Some(m), Some(who)) = (self.limits.as_mut(), self.peers.get(peer.0 as usize)) {
            m.removed(peer, who, dropped);
        }
        for j in &mut self.judges {
            j.peer_down(time, peer);
        }
        dropped
    }

    /// A new RPKI data set for every judge (the daemon's RPKI source changed): each
    /// re-judges what it holds, with the paths from the Adj-RIB-In; their decisions wait
    /// for [`Self::drain`]. Returns the claims whose origin validation changed (first
    /// judge).
    pub fn set_rpki(
        &mut self,
        index: Arc<VrpIndex>,
        aspa: Arc<AspaSet>,
        rpki_serial: Option<u64>,
        time: EventTime,
    ) -> usize {
        let mut changed = 0;
        for (i, j) in self.judges.iter_mut().enumerate() {
            let rib = &self.rib;
            let n = j.set_rpki(
                index.clone(),
                aspa.clone(),
                rpki_serial,
                time,
                |peer, pid, id| rib.get(peer, pid, id).map(|r| rib.path(r.path).clone()),
            );
            if i == 0 {
                changed = n;
            }
        }
        changed
    }

    /// Hands the judges' decisions to `sink`, with AS paths from the Adj-RIB-In and the
    /// covering VRPs (or drops them, counted already, when they are not built).
    pub fn drain(&mut self, sink: &mut dyn DecisionSink) -> io::Result<()> {
        let Pipeline {
            judges,
            rib,
            honour_expires,
            built,
            ..
        } = self;
        for (ji, j) in judges.iter_mut().enumerate() {
            if !*built {
                j.discard_decisions();
                continue;
            }
            let index = j.vrp_index();
            for mut d in j.drain() {
                d.list_vrps(&index, *honour_expires);
                // The judge keeps no paths: the route's comes from the Adj-RIB-In, and only
                // for a decision that is written (cloning it costs a reference count on
                // the other core's cache line).
                if d.as_path.is_none() && d.outcome != Outcome::Withdrawn {
                    if let Some(route) = rib.get(d.peer_idx, d.prefix_id, d.path_id) {
                        d.as_path = Some(rib.path(route.path).clone());
                    }
                }
                sink.decision(ji, d)?;
            }
        }
        Ok(())
    }

    /// The judges (one per policy).
    pub fn judges(&self) -> &[Judge<'a>] {
        &self.judges
    }

    /// The first judge, to act on (an operator's hold or release); call
    /// [`Self::drain`] afterwards.
    pub fn judge_mut(&mut self) -> Option<&mut Judge<'a>> {
        self.judges.first_mut()
    }

    /// The peers registered so far, by index.
    pub fn peers(&self) -> &[Peer] {
        &self.peers
    }

    /// The Adj-RIB-In.
    pub fn rib(&self) -> &AdjRibIn {
        &self.rib
    }

    /// Routes in the Adj-RIB-In now.
    pub fn routes_stored(&self) -> usize {
        self.rib.len()
    }
}

/// Events and RPKI data for the tests of the pipeline and of the daemon's pipeline thread.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use crate::model::{AsPath, Asn};
    use crate::rpki::vrps::{Vrp, VrpSet};
    use std::net::IpAddr;

    pub(crate) const T0: i64 = 1_700_000_000;

    /// One ROA: 192.0.2.0/24 (max length 24) for AS65001.
    pub(crate) fn one_roa() -> VrpSet {
        VrpSet {
            vrps: vec![Vrp {
                prefix: "192.0.2.0/24".parse().unwrap(),
                max_length: 24,
                asn: Asn(65001),
                ta: None,
                expires: None,
            }],
            aspas: Vec::new(),
            warnings: Vec::new(),
            source: None,
        }
    }

    /// Peer `i` (198.51.100.(i+1), AS `asn`) registered.
    pub(crate) fn peer_event(i: u32, asn: u32) -> IngestEvent {
        IngestEvent::Peer(
            PeerIdx(i),
            Peer {
                feed: Arc::from("unit"),
                addr: IpAddr::from([198, 51, 100, i as u8 + 1]),
                asn: Asn(asn),
                bgp_id: None,
                loc_rib: false,
                bmp: false,
            },
        )
    }

    /// Peer `peer`'s route for `prefix` at T0 + `t` s: announced along `path`, or
    /// withdrawn (`None`).
    pub(crate) fn route(t: i64, peer: u32, prefix: &str, path: Option<&[u32]>) -> IngestEvent {
        IngestEvent::Route(RouteEvent {
            time: EventTime::from_secs(T0 + t),
            peer: PeerIdx(peer),
            prefix: prefix.parse().unwrap(),
            path_id: None,
            action: match path {
                Some(p) => RouteAction::Announce(AsPath::sequence(p)),
                None => RouteAction::Withdraw,
            },
            snapshot: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{one_roa, peer_event, route, T0};
    use super::*;
    use crate::judge::Policy;
    use crate::model::Asn;

    fn rpki() -> (VrpIndex, AspaSet) {
        let set = one_roa();
        (VrpIndex::new(&set), AspaSet::new(&set.aspas))
    }

    /// Runs `events` through a ROV stage and a pipeline of one default judge (no warm-up).
    fn run(events: &[IngestEvent], built: bool) -> (usize, Vec<Decision>, u64) {
        let (index, aspa) = rpki();
        let mut policy = Policy::builtin_default();
        policy.warmup = std::time::Duration::ZERO;
        let judge = Judge::new(policy, &index, &aspa, false, Some(1));
        let mut rov = RovStage::new(&index, false);
        let mut pipe = Pipeline::new(vec![judge], false, built);
        let mut verdicts = Vec::new();
        rov.annotate_all(events, &mut verdicts);
        let mut out: Vec<Decision> = Vec::new();
        pipe.handle_all(events, &verdicts, &mut out).unwrap();
        let counted = pipe.judges()[0].stats().decisions;
        (pipe.routes_stored(), out, counted)
    }

    #[test]
    fn an_rpki_invalid_route_is_stored_judged_and_its_decision_carries_path_and_vrps() {
        let events = [
            peer_event(0, 64500),
            route(0, 0, "192.0.2.0/24", Some(&[64500, 65002])),
        ];
        let (stored, out, counted) = run(&events, true);
        assert_eq!(stored, 1);
        let held: Vec<&Decision> = out.iter().filter(|d| d.outcome.is_held()).collect();
        assert_eq!(held.len(), 1, "{out:?}");
        let d = held[0];
        assert_eq!(d.prefix, "192.0.2.0/24".parse::<ipnet::IpNet>().unwrap());
        assert_eq!(d.origin, Some(Asn(65002)));
        assert_eq!(
            d.as_path.as_ref().map(|p| p.sequence_asns().to_vec()),
            Some(vec![64500, 65002])
        );
        // The covering VRP (AS65001's) is listed among the reasons.
        let json = serde_json::to_string(d).unwrap();
        assert!(json.contains("65001"), "{json}");
        assert_eq!(counted, out.len() as u64);
    }

    #[test]
    fn decisions_nobody_reads_are_counted_not_built() {
        let events = [
            peer_event(0, 64500),
            route(0, 0, "192.0.2.0/24", Some(&[64500, 65002])),
        ];
        let (_, out, counted) = run(&events, false);
        assert!(out.is_empty());
        // As many as the same events give when they are built.
        let (_, built, _) = run(&events, true);
        assert!(!built.is_empty());
        assert_eq!(counted, built.len() as u64);
    }

    #[test]
    fn withdrawals_and_a_peer_going_down_empty_the_adj_rib_in() {
        let events = [
            peer_event(0, 64500),
            peer_event(1, 64501),
            route(0, 0, "192.0.2.0/24", Some(&[64500, 65001])),
            route(1, 1, "192.0.2.0/24", Some(&[64501, 65001])),
            route(2, 1, "198.51.100.0/24", Some(&[64501, 65003])),
            route(3, 0, "192.0.2.0/24", None),
        ];
        let (stored, ..) = run(&events, true);
        assert_eq!(stored, 2);
        let mut down = events.to_vec();
        down.push(IngestEvent::PeerDown {
            peer: PeerIdx(1),
            time: EventTime::from_secs(T0 + 4),
            state: "down".into(),
        });
        let (stored, ..) = run(&down, true);
        assert_eq!(stored, 0);
    }
}

/// Issue 18, point 7: the held routes a restart restores are the judge's own, whatever
/// the order of announcements, replacements (the same peer and prefix with a new
/// origin), withdrawals and batches, and wherever the state's snapshots fall.
#[cfg(test)]
mod restore_equals_live {
    use super::testing::{one_roa, peer_event, route};
    use super::*;
    use crate::judge::Policy;
    use proptest::prelude::*;

    const PREFIXES: [&str; 3] = ["192.0.2.0/24", "192.0.2.0/25", "192.0.2.128/25"];
    const ORIGINS: [u32; 3] = [65001, 65002, 65003];

    /// A held route: prefix, origin, peer, peer AS, path id.
    type Key = (
        ipnet::IpNet,
        Option<u32>,
        std::net::IpAddr,
        u32,
        Option<u32>,
    );

    fn key_set(
        v: impl Iterator<Item = crate::judge::HeldRoute>,
    ) -> std::collections::BTreeSet<Key> {
        v.map(|h| {
            (
                h.prefix,
                h.origin.map(|a| a.0),
                h.peer,
                h.peer_asn.0,
                h.path_id,
            )
        })
        .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn the_restored_holds_are_the_judges(
            steps in proptest::collection::vec(
                (0u32..3, 0usize..3, proptest::option::weighted(0.8, 0usize..3)),
                1..60,
            ),
            cuts in proptest::collection::vec(1usize..8, 1..20),
            keep in 1u64..40,
        ) {
            let set = one_roa();
            let (index, aspa) = (VrpIndex::new(&set), AspaSet::new(&set.aspas));
            let mut policy = Policy::builtin_default();
            policy.warmup = std::time::Duration::ZERO;
            let judge = Judge::new(policy, &index, &aspa, false, Some(1));
            let mut rov = RovStage::new(&index, false);
            let mut pipe = Pipeline::new(vec![judge], false, true);
            let path = crate::state::testing::temp("restore-live");
            let (mut store, _) = crate::state::Store::open(&path, keep).unwrap();
            let mut events: Vec<IngestEvent> = (0..3).map(|i| peer_event(i, 64500 + i)).collect();
            for (t, (peer, prefix, origin)) in steps.iter().enumerate() {
                let path = origin.map(|o| vec![64500 + peer, ORIGINS[o]]);
                events.push(route(t as i64, *peer, PREFIXES[*prefix], path.as_deref()));
            }
            let mut at = 0;
            for cut in cuts.iter().cycle() {
                if at >= events.len() {
                    break;
                }
                let end = (at + cut).min(events.len());
                let batch = &events[at..end];
                let mut verdicts = Vec::new();
                rov.annotate_all(batch, &mut verdicts);
                let mut out: Vec<Decision> = Vec::new();
                pipe.handle_all(batch, &verdicts, &mut out).unwrap();
                store.write_decisions(&out).unwrap();
                at = end;
            }
            drop(store);
            let live = key_set(pipe.judges()[0].held().into_iter());
            let (_, restored) = crate::state::Store::open(&path, keep).unwrap();
            let back = key_set(restored.quarantine.into_iter().map(|h| h.route));
            prop_assert_eq!(back, live);
            let _ = std::fs::remove_dir_all(path.parent().unwrap());
        }
    }
}
