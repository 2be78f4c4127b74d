//! The judge: scenarios on synthetic and real routes, and its guarantees as properties.

mod common;

use ipnet::IpNet;
use proptest::prelude::*;
use routewitness::judge::{Announce, Cause, Decision, Judge, Outcome, Policy, Resolution};
use routewitness::model::{AsPath, Asn, EventTime, Peer, PeerIdx};
use routewitness::rib::PrefixTable;
use routewitness::rpki::vrps::Aspa;
use routewitness::rpki::{validate, AspaSet, Vrp, VrpIndex};
use std::net::IpAddr;
use std::sync::Arc;

const T0: i64 = 1_400_000_000;

/// What the scenarios feed the judge with: the prefix ids and the VRPs for verdicts.
struct Lab<'a> {
    index: &'a VrpIndex,
    prefixes: PrefixTable,
}

impl<'a> Lab<'a> {
    fn new(index: &'a VrpIndex) -> Self {
        Lab {
            index,
            prefixes: PrefixTable::default(),
        }
    }
}

fn peer(i: u32, asn: u32) -> Peer {
    Peer {
        feed: Arc::from("lab"),
        addr: IpAddr::from([198, 51, 100, i as u8]),
        asn: Asn(asn),
        bgp_id: None,
        loc_rib: false,
        bmp: false,
    }
}

fn at(secs: i64) -> EventTime {
    EventTime::from_secs(T0 + secs)
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

/// Policy with no warm-up (the scenarios start at the first event).
fn policy(edit: impl FnOnce(&mut Policy)) -> Policy {
    let mut p = Policy::builtin_default();
    p.warmup = std::time::Duration::ZERO;
    edit(&mut p);
    p
}

fn announce(
    lab: &mut Lab<'_>,
    j: &mut Judge<'_>,
    t: i64,
    p: u32,
    prefix: &str,
    path: &[u32],
    snapshot: bool,
) -> Vec<Decision> {
    let prefix = net(prefix);
    let (pid, _) = lab.prefixes.intern(&prefix);
    let path = AsPath::sequence(path);
    let origin = path.origin(Asn::ZERO);
    let rov = validate(lab.index, &prefix, origin, None);
    j.announce(Announce {
        time: at(t),
        peer: PeerIdx(p),
        prefix,
        prefix_id: pid,
        path_id: None,
        path: &path,
        origin,
        rov,
        snapshot,
    });
    listed(j)
}

/// The judge's decisions, with their VRPs listed as a writer would list them.
fn listed(j: &mut Judge<'_>) -> Vec<Decision> {
    let index = j.vrp_index();
    j.drain()
        .map(|mut d| {
            d.list_vrps(&index, true);
            d
        })
        .collect()
}

fn withdraw(lab: &mut Lab<'_>, j: &mut Judge<'_>, t: i64, p: u32, prefix: &str) -> Vec<Decision> {
    let (pid, _) = lab.prefixes.intern(&net(prefix));
    j.withdraw(at(t), PeerIdx(p), pid, None);
    listed(j)
}

fn rules(d: &Decision) -> Vec<String> {
    d.reasons.iter().map(|r| r.rule.to_string()).collect()
}

/// Peers 0..n in ASes 100, 200, ...; returns nothing, registers them.
fn peers(j: &mut Judge<'_>, asns: &[u32]) {
    for (i, a) in asns.iter().enumerate() {
        j.peer(PeerIdx(i as u32), &peer(i as u32, *a));
    }
}

/// The observer question: a change related to the holder (here AS66, seen as AS65's
/// customer) propagates, but gains standing only once independent witnesses confirm it.
#[test]
fn witnesses_in_one_as_or_behind_one_neighbour_count_less_and_the_origin_not_at_all() {
    let idx = VrpIndex::from_vrps(Vec::new());
    let aspa = AspaSet::default();
    let mut lab = Lab::new(&idx);
    let mut j = Judge::new(
        policy(|p| {
            p.confirm.k = 2.0;
            p.standing.link_age = std::time::Duration::ZERO;
        }),
        &idx,
        &aspa,
        true,
        None,
    );
    // Peers 0,1 in AS100 (one witness); peer 2 is the origin AS66 itself; peers 3,4 in
    // AS300/AS400 both reach AS66 through neighbour 9.
    peers(&mut j, &[100, 100, 66, 300, 400, 500]);
    for p in 0..3 {
        announce(&mut lab, &mut j, 0, p, "11.0.0.0/22", &[100 + p, 65], false);
    }
    // AS66 is AS65's customer (AS65 just before it on its own routes).
    announce(&mut lab, &mut j, 0, 5, "66.0.0.0/16", &[500, 65, 66], false);
    let (pid, _) = lab.prefixes.intern(&net("11.0.0.0/22"));
    let claim = |j: &Judge<'_>| {
        j.claims_of(pid)
            .into_iter()
            .find(|c| c.origin == Some(Asn(66)))
            .unwrap()
    };
    let d = announce(&mut lab, &mut j, 10, 0, "11.0.0.0/22", &[100, 9, 66], false);
    assert!(d.is_empty(), "related: watched, not held: {d:?}");
    assert_eq!(j.conflicts()[0].resolution, Resolution::Legitimate);
    announce(&mut lab, &mut j, 11, 1, "11.0.0.0/22", &[100, 9, 66], false);
    announce(&mut lab, &mut j, 12, 2, "11.0.0.0/22", &[66], false);
    assert_eq!(
        claim(&j).witnesses.effective,
        1.0,
        "one AS, and the origin not at all"
    );
    // AS300 via neighbour 9: AS100 counted 1, AS300 behind the same neighbour 0.5.
    announce(&mut lab, &mut j, 13, 3, "11.0.0.0/22", &[300, 9, 66], false);
    assert_eq!(claim(&j).witnesses.effective, 1.5);
    assert!(claim(&j).established.is_none());
    // AS400, also via 9: 2.0 = k, confirmed: the claim has standing now.
    let d = announce(&mut lab, &mut j, 14, 4, "11.0.0.0/22", &[400, 9, 66], false);
    assert!(d.is_empty(), "{d:?}");
    assert_eq!(claim(&j).established, Some(at(14)));
    assert_eq!(j.stats().conflicts_confirmed, 1);
}

#[test]
fn an_unconfirmed_moas_is_refuted_its_witnesses_lose_trust_and_withdrawal_ends_the_hold() {
    let idx = VrpIndex::from_vrps(Vec::new());
    let aspa = AspaSet::default();
    let mut lab = Lab::new(&idx);
    let mut j = Judge::new(
        policy(|p| {
            p.confirm.on_unconfirmed = routewitness::judge::Action::Reject;
            p.standing.link_age = std::time::Duration::ZERO;
        }),
        &idx,
        &aspa,
        true,
        None,
    );
    peers(&mut j, &[100, 200, 300]);
    announce(&mut lab, &mut j, 0, 0, "11.0.0.0/22", &[100, 65], false);
    announce(&mut lab, &mut j, 0, 1, "11.0.0.0/22", &[200, 65], false);
    // AS666 is AS65's provider (seen just before it): related, so the MOAS is watched
    // while it waits for a second witness (the observer question).
    announce(
        &mut lab,
        &mut j,
        0,
        1,
        "12.1.0.0/16",
        &[200, 666, 65],
        false,
    );
    let d = announce(&mut lab, &mut j, 10, 2, "11.0.0.0/22", &[300, 666], false);
    assert!(d.is_empty(), "{d:?}");
    let before = j.trust_table(at(10))[2].score;
    // The window (15 minutes) passes with no second witness: the next event runs the timer.
    let d = announce(
        &mut lab,
        &mut j,
        16 * 60,
        0,
        "12.0.0.0/16",
        &[100, 5],
        false,
    );
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].cause, Cause::WindowExpired);
    assert_eq!(d[0].outcome, Outcome::Reject);
    assert_eq!(
        d[0].time,
        at(10 + 15 * 60),
        "decided at the deadline itself"
    );
    assert_eq!(rules(&d[0]), ["confirm.on_unconfirmed"]);
    assert_eq!(d[0].previous, Outcome::Propagate);
    assert_eq!(j.conflicts()[0].resolution, Resolution::Refuted);
    let t = j.trust_table(at(16 * 60));
    assert_eq!(t[2].counts.refuted, 1);
    assert!(t[2].score < before, "{} !< {before}", t[2].score);
    let d = withdraw(&mut lab, &mut j, 17 * 60, 2, "11.0.0.0/22");
    assert_eq!(d[0].outcome, Outcome::Withdrawn);
    assert_eq!(d[0].previous, Outcome::Reject);
    assert_eq!(j.held_routes(), 0);
}

/// A state transfer (RIB dump entries, a router's table after Peer Up) teaches claims
/// without conflicts; after the warm-up a claim in it that would contradict a holder is
/// left unchecked (neither held nor given standing) until a peer announces it as news,
/// so a router that reconnects cannot slip a hijack in with its table.
#[test]
fn rib_entries_teach_claims_in_the_warm_up_and_are_judged_after_it() {
    let idx = VrpIndex::from_vrps(Vec::new());
    let aspa = AspaSet::default();
    let mut lab = Lab::new(&idx);
    let mut j = Judge::new(
        policy(|p| {
            p.warmup = std::time::Duration::from_secs(900);
            p.conflicts.recurring = routewitness::judge::Action::Quarantine;
        }),
        &idx,
        &aspa,
        true,
        None,
    );
    peers(&mut j, &[100, 200, 300]);
    for p in 0..2 {
        announce(
            &mut lab,
            &mut j,
            0,
            p,
            "11.0.0.0/16",
            &[100 * (p + 1), 65],
            true,
        );
    }
    // The customer's more-specific in the same RIB snapshot: learned, not held.
    for p in 0..2 {
        let d = announce(
            &mut lab,
            &mut j,
            0,
            p,
            "11.0.5.0/24",
            &[100 * (p + 1), 65, 77],
            true,
        );
        assert!(d.is_empty(), "{d:?}");
    }
    assert_eq!(j.stats().conflicts, 0);
    // Both learned, with standing.
    assert_eq!(j.stats().claims_established, 2);
    // After the warm-up, a table sent after Peer Up with another origin's more-specific.
    let d = announce(&mut lab, &mut j, 1000, 2, "11.0.6.0/24", &[300, 99], true);
    assert!(d.is_empty(), "{d:?}");
    assert_eq!(j.stats().conflicts, 0);
    let (pid, _) = lab.prefixes.intern(&net("11.0.6.0/24"));
    assert!(j.claims_of(pid)[0].established.is_none());
    // A peer announces it as news: judged now, as a claim seen before (in the table):
    // recurring, which the default watches and this policy holds (both routes).
    let d = announce(&mut lab, &mut j, 1010, 0, "11.0.6.0/24", &[100, 99], false);
    assert_eq!(d.len(), 2, "{d:?}");
    assert!(d.iter().all(|d| d.outcome == Outcome::Quarantine));
    assert!(
        d.iter().all(|d| rules(d) == ["conflicts.recurring"]),
        "{d:?}"
    );
}

/// ASPA and an empty AS path: from a neighbour (eBGP, which always prepends its own AS)
/// it is Invalid, as the draft says; in the router's own Loc-RIB (BMP, RFC 9069) it is a
/// route the router originates, with no hop to verify.
#[test]
fn an_empty_path_is_aspa_invalid_from_a_neighbour_and_the_routers_own_in_its_loc_rib() {
    let idx = VrpIndex::from_vrps(Vec::new());
    let aspa = AspaSet::new(&[Aspa {
        customer: Asn(70),
        providers: vec![Asn(71)],
        afi: None,
        expires: None,
    }]);
    let mut lab = Lab::new(&idx);
    let p = policy(|p| p.aspa.default_role = routewitness::judge::policy::PeerRole::Customer);
    let mut j = Judge::new(p, &idx, &aspa, true, None);
    j.peer(PeerIdx(0), &peer(0, 70));
    let mut own = peer(1, 70);
    own.loc_rib = true;
    j.peer(PeerIdx(1), &own);
    let empty = AsPath::sequence(&[]);
    let mut judged = |p: u32, prefix: &str, t: i64| {
        let prefix = net(prefix);
        let (pid, _) = lab.prefixes.intern(&prefix);
        j.announce(Announce {
            time: at(t),
            peer: PeerIdx(p),
            prefix,
            prefix_id: pid,
            path_id: None,
            path: &empty,
            origin: Some(Asn(70)),
            rov: validate(&idx, &prefix, Some(Asn(70)), None),
            snapshot: false,
        });
        listed(&mut j)
    };
    let d = judged(0, "14.0.0.0/24", 0);
    assert_eq!(rules(&d[0]), ["anomalies.aspa_invalid"], "{d:?}");
    assert_eq!(d[0].outcome, Outcome::Quarantine);
    let d = judged(1, "14.1.0.0/24", 1);
    assert!(
        d.iter()
            .all(|d| d.outcome == Outcome::Propagate && d.reasons.is_empty()),
        "{d:?}"
    );
}

#[test]
fn rpki_aspa_bogon_prefix_set_and_hold_down() {
    let vrps = vec![Vrp {
        prefix: net("11.1.0.0/16"),
        max_length: 16,
        asn: Asn(65),
        ta: None,
        expires: None,
    }];
    // AS70's only provider is AS71.
    let aspas = vec![Aspa {
        customer: Asn(70),
        providers: vec![Asn(71)],
        afi: None,
        expires: None,
    }];
    let idx = VrpIndex::from_vrps(vrps);
    let aspa = AspaSet::new(&aspas);
    let mut lab = Lab::new(&idx);
    let strict = Policy::load("strict").unwrap();
    let mut p = policy(|p| {
        p.hold_down = std::time::Duration::from_secs(300);
        p.aspa.default_role = routewitness::judge::policy::PeerRole::Customer;
        p.prefix_sets.push(routewitness::judge::policy::PrefixSet {
            name: "ours".into(),
            prefixes: vec![net("12.34.0.0/16")],
            origins: vec![Asn(64)],
            max_length: Some(24),
            action: routewitness::judge::Action::Reject,
        });
    });
    p.rpki = strict.rpki.clone();
    let mut j = Judge::new(p, &idx, &aspa, true, None);
    peers(&mut j, &[100]);
    let d = announce(&mut lab, &mut j, 0, 0, "11.1.2.0/24", &[100, 65], false);
    assert_eq!(d[0].outcome, Outcome::Reject);
    assert_eq!(rules(&d[0]), ["rpki.invalid"]);
    let json = serde_json::to_value(&d[0]).unwrap();
    assert_eq!(
        json["reasons"][0]["vrps"],
        serde_json::json!([{"prefix": "11.1.0.0/16", "max_length": 16, "asn": 65}])
    );
    // Unlisted (as the judge leaves it), the decision says nothing about VRPs rather
    // than an empty list; listing fills them in.
    let mut raw = d[0].clone();
    if let routewitness::judge::Detail::Rpki { vrps, .. } = &mut raw.reasons[0].detail {
        *vrps = None;
    }
    assert!(serde_json::to_value(&raw).unwrap()["reasons"][0]
        .get("vrps")
        .is_none());
    raw.list_vrps(&idx, true);
    assert_eq!(raw, d[0]);
    assert!(
        d[0].explanation()
            .contains("too long for 11.1.0.0/16-16 AS65"),
        "{}",
        d[0].explanation()
    );
    // AS70 sends its route to AS100, which it does not list as a provider: a leak.
    let d = announce(&mut lab, &mut j, 1, 0, "13.0.0.0/24", &[100, 70], false);
    assert_eq!(rules(&d[0]), ["anomalies.aspa_invalid"]);
    let json = serde_json::to_value(&d[0]).unwrap();
    assert_eq!(json["reasons"][0]["bad_hop"], serde_json::json!([70, 100]));
    let d = announce(&mut lab, &mut j, 2, 0, "10.1.0.0/16", &[100, 71], false);
    assert_eq!(d[0].outcome, Outcome::Reject);
    assert_eq!(rules(&d[0]), ["anomalies.bogon"]);
    let d = announce(&mut lab, &mut j, 3, 0, "12.34.5.0/24", &[100, 63], false);
    assert_eq!(rules(&d[0]), ["prefix_sets.ours"]);
    assert!(
        d[0].explanation().contains("allows only AS64"),
        "{}",
        d[0].explanation()
    );
    // The leak is repaired (a provider path): the release waits for the hold-down.
    let d = announce(
        &mut lab,
        &mut j,
        60,
        0,
        "13.0.0.0/24",
        &[100, 71, 70],
        false,
    );
    assert!(d.is_empty(), "released before the hold-down: {d:?}");
    // The hold began at t=1: it may end at 301, decided at that time by the next event.
    let d = announce(&mut lab, &mut j, 302, 0, "14.0.0.0/24", &[100, 71], false);
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].cause, Cause::HoldDownEnded);
    assert_eq!(d[0].outcome, Outcome::Propagate);
    assert_eq!(d[0].time, at(301));
}

#[test]
fn a_session_going_down_ends_its_holds() {
    let idx = VrpIndex::from_vrps(Vec::new());
    let aspa = AspaSet::default();
    let mut lab = Lab::new(&idx);
    let mut j = Judge::new(policy(|_| {}), &idx, &aspa, true, None);
    peers(&mut j, &[100, 200]);
    announce(&mut lab, &mut j, 0, 0, "10.0.0.0/24", &[100, 5], false);
    announce(&mut lab, &mut j, 0, 0, "192.168.0.0/24", &[100, 5], false);
    announce(&mut lab, &mut j, 0, 1, "11.0.0.0/24", &[200, 5], false);
    assert_eq!(j.held_routes(), 2);
    j.peer_down(at(5), PeerIdx(0));
    let d: Vec<_> = j.drain().collect();
    assert_eq!(d.len(), 2);
    assert!(d
        .iter()
        .all(|d| d.outcome == Outcome::Withdrawn && d.cause == Cause::PeerDown));
    assert_eq!(j.held_routes(), 0);
}

/// `f` monitored routers (BMP feeds "router-0", ...), each presenting `made_up` peers in
/// ASes of their own, indexed from `honest`.
fn routers(honest: usize, f: usize, made_up: usize) -> Vec<Peer> {
    let mut out = Vec::new();
    for r in 0..f {
        for m in 0..made_up {
            let i = (honest + out.len()) as u32;
            let mut p = peer(i, 3000 + (r * 100 + m) as u32);
            p.feed = Arc::from(format!("router-{r}"));
            p.bmp = true;
            out.push(p);
        }
    }
    out
}

/// Events for the property tests: (peer, prefix index, origin index, neighbour, withdraw?).
fn events() -> impl Strategy<Value = Vec<(u32, u8, u8, u32, bool)>> {
    prop::collection::vec(
        (0u32..4, 0u8..3, 0u8..3, 1u32..6, prop::bool::weighted(0.2)),
        1..60,
    )
}

/// Liars in the ASes `asns`, each a collector's peer (a domain of its own).
fn liars(honest: usize, asns: &[u32]) -> Vec<Peer> {
    asns.iter()
        .enumerate()
        .map(|(i, &a)| peer((honest + i) as u32, a))
        .collect()
}

fn run_events(
    policy: Policy,
    honest: usize,
    evs: &[(u32, u8, u8, u32, bool)],
    liar_peers: &[Peer],
) -> (Vec<String>, bool) {
    let idx = VrpIndex::from_vrps(Vec::new());
    let aspa = AspaSet::default();
    let mut lab = Lab::new(&idx);
    let mut j = Judge::new(policy, &idx, &aspa, true, None);
    // Honest peers 0..honest establish 11.0.0.0/16 from AS65.
    for p in 0..honest as u32 {
        j.peer(PeerIdx(p), &peer(p, 1000 + p));
        announce(&mut lab, &mut j, 0, p, "11.0.0.0/16", &[1000 + p, 65], true);
    }
    for (i, l) in liar_peers.iter().enumerate() {
        j.peer(PeerIdx((honest + i) as u32), l);
    }
    let prefixes = ["11.0.0.0/16", "11.0.7.0/24", "11.0.0.0/17"];
    let mut out = Vec::new();
    let mut confirmed = false;
    for (n, &(p, pi, oi, neighbour, wd)) in evs.iter().enumerate() {
        let liar = honest as u32 + p % liar_peers.len() as u32;
        let t = 60 + n as i64 * 7;
        let prefix = prefixes[pi as usize];
        let d = if wd {
            withdraw(&mut lab, &mut j, t, liar, prefix)
        } else {
            let origin = [666u32, 667, 668][oi as usize];
            announce(
                &mut lab,
                &mut j,
                t,
                liar,
                prefix,
                // Forged through the holder (AS65), so the claim is related to it and
                // only witnesses stand between the liars and standing.
                &[
                    liar_peers[(liar as usize) - honest].asn.0,
                    65,
                    neighbour,
                    origin,
                ],
                false,
            )
        };
        for d in d {
            confirmed |= d.cause == Cause::Confirmed;
            out.push(serde_json::to_string(&d).unwrap());
        }
    }
    // No conflicting claim of the liars may be established.
    for prefix in prefixes {
        let (pid, _) = lab.prefixes.intern(&net(prefix));
        for c in j.claims_of(pid) {
            if c.origin != Some(Asn(65)) {
                confirmed |= c.established.is_some();
            }
        }
    }
    (out, confirmed)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// With k ≥ f+1, no f peers, in any ASes, with any paths, announcing and withdrawing in
    /// any order, can establish a claim that conflicts with an established one.
    #[test]
    fn f_liars_cannot_establish_a_conflicting_claim(
        evs in events(),
        f in 1usize..4,
        same_as in any::<bool>(),
        beta in 0.0f64..=1.0,
    ) {
        let liar_asns: Vec<u32> = (0..f as u32)
            .map(|i| if same_as { 2000 } else { 2000 + i })
            .collect();
        let p = policy(|p| {
            p.confirm.k = f as f64 + 1.0;
            p.confirm.same_neighbour_weight = beta;
        });
        let (_, confirmed) = run_events(p, 3, &evs, &liars(3, &liar_asns));
        prop_assert!(!confirmed, "{f} liars established a conflicting claim");
    }

    /// Issue 18, point 2: with k ≥ f+1, f lying monitored routers (BMP), each presenting
    /// any number of made-up peers (every one in an AS of its own), announcing and
    /// withdrawing in any order with any neighbours, cannot establish a claim that
    /// conflicts with an established one: a router is one witness domain.
    #[test]
    fn f_lying_routers_with_made_up_peers_cannot_establish_a_conflicting_claim(
        evs in events(),
        f in 1usize..3,
        made_up in 1usize..6,
        beta in 0.0f64..=1.0,
    ) {
        let p = policy(|p| {
            p.confirm.k = f as f64 + 1.0;
            p.confirm.same_neighbour_weight = beta;
        });
        let (_, confirmed) = run_events(p, 3, &evs, &routers(3, f, made_up));
        prop_assert!(!confirmed, "{f} routers with {made_up} peers each established a conflicting claim");
    }

    /// The same input twice gives byte-identical decisions.
    #[test]
    fn decisions_are_a_function_of_the_input(evs in events()) {
        let (a, _) = run_events(policy(|_| {}), 2, &evs, &liars(2, &[2000, 2001]));
        let (b, _) = run_events(policy(|_| {}), 2, &evs, &liars(2, &[2000, 2001]));
        prop_assert_eq!(a, b);
    }
}

#[test]
fn the_property_harness_can_see_a_confirmation() {
    // The guard for the property above: with k = f, f liars in distinct ASes and
    // distinct neighbours *do* establish their claim, so the harness detects it.
    let evs = [(0, 1, 0, 1, false), (1, 1, 0, 2, false)];
    let p = policy(|p| p.confirm.k = 2.0);
    let (_, confirmed) = run_events(p, 3, &evs, &liars(3, &[2000, 2001]));
    assert!(confirmed);
}

#[test]
fn the_router_property_harness_can_see_a_confirmation() {
    // The guard for the router property: one router presenting two made-up peers in
    // distinct ASes through distinct neighbours establishes the claim when its peers
    // count apart (`one_vote_per_router = false`, what the judge did before), not when
    // the router is one witness domain (the default); two routers do.
    let evs = [(0, 1, 0, 1, false), (1, 1, 0, 2, false)];
    let k2 = |per_router: bool| {
        policy(move |p| {
            p.confirm.k = 2.0;
            p.confirm.one_vote_per_router = per_router;
        })
    };
    let (_, confirmed) = run_events(k2(false), 3, &evs, &routers(3, 1, 2));
    assert!(confirmed);
    let (_, confirmed) = run_events(k2(true), 3, &evs, &routers(3, 1, 2));
    assert!(!confirmed);
    let (_, confirmed) = run_events(k2(true), 3, &evs, &routers(3, 2, 1));
    assert!(confirmed);
}

/// The bundled Route Views RIB slice (2014-05-23), as events, with the verdicts replay
/// gives them.
struct RealRib {
    events: Vec<routewitness::ingest::IngestEvent>,
}

fn real_rib() -> RealRib {
    use routewitness::ingest::{mrt, PeerRegistry};
    let mut reg = PeerRegistry::default();
    let mut events = Vec::new();
    mrt::read_file(
        &common::fixture("mrt/routeviews2_rib.20140523.0600_slice.mrt.gz"),
        &mut reg,
        None,
        |ev| events.push(ev),
    )
    .expect("read the RIB slice");
    RealRib { events }
}

fn bundled_rpki() -> (VrpIndex, AspaSet) {
    let set = routewitness::rpki::vrps::load(
        &common::fixture("vrp/rpki-client_20250720T093135Z.json.bz2"),
        routewitness::rpki::LoadOptions::default(),
    )
    .expect("bundled VRPs");
    (VrpIndex::new(&set), AspaSet::new(&set.aspas))
}

/// Real routes with injected ones: a sub-prefix hijack of a real prefix, a MOAS, and an
/// ASPA leak through a real ASPA, each judged at the right event with the right reasons.
#[test]
fn injected_hijack_moas_and_leak_on_the_real_rib() {
    use routewitness::ingest::IngestEvent;
    use routewitness::model::{RouteAction, RouteEvent};
    use routewitness::pipeline::RovStage;
    use std::collections::{BTreeMap, BTreeSet};

    let rib = real_rib();
    let (index, aspa) = bundled_rpki();
    let mut rov = RovStage::new(&index, true);
    let mut j = Judge::new(Policy::builtin_default(), &index, &aspa, true, None);
    let mut peers: Vec<Peer> = Vec::new();
    // prefix -> (origins, peer ASes) from the RIB itself, to pick targets.
    let mut seen: BTreeMap<IpNet, (BTreeSet<u32>, BTreeSet<u32>)> = BTreeMap::new();
    let mut rib_time = EventTime(0);
    let mut feed = |ev: &IngestEvent, j: &mut Judge<'_>, peers: &mut Vec<Peer>| -> Vec<Decision> {
        let v = rov.annotate(ev);
        match ev {
            IngestEvent::Peer(idx, p) => {
                j.peer(*idx, p);
                if peers.len() <= idx.0 as usize {
                    peers.resize(idx.0 as usize + 1, p.clone());
                }
                peers[idx.0 as usize] = p.clone();
            }
            IngestEvent::Route(r) => {
                if let Some(a) = v.unwrap().announce(r) {
                    j.announce(a);
                }
            }
            _ => {}
        }
        j.drain().collect()
    };
    for ev in &rib.events {
        let d = feed(ev, &mut j, &mut peers);
        // RIB entries decide only RPKI and anomaly holds, never conflicts.
        for d in d {
            assert!(
                d.reasons.iter().all(|r| !r.rule.starts_with("conflicts.")),
                "{}",
                d.explanation()
            );
        }
        if let IngestEvent::Route(r) = ev {
            rib_time = rib_time.max(r.time);
            if let RouteAction::Announce(p) = &r.action {
                let e = seen.entry(r.prefix).or_default();
                e.0.insert(p.origin(Asn::ZERO).map_or(0, |a| a.0));
                e.1.insert(peers[r.peer.0 as usize].asn.0);
            }
        }
    }
    assert_eq!(j.stats().conflicts, 0);
    // 9,072 prefixes from 47 peers: every claim that contradicts nobody has standing, but
    // not the RPKI-invalid ones (RPKI is decisive where it covers: 2025 ROAs against a 2014
    // table make a fifth of them invalid).
    assert!(j.stats().claims_established > 7_000, "{:?}", j.stats());
    // Targets: real prefixes with one origin, carried by many peer ASes, RPKI not-found for
    // the prefix and its first /24 (so only the conflict rules speak).
    let not_found = |p: &IpNet, o: u32| {
        validate(&index, p, Some(Asn(o)), None) == routewitness::rpki::RovState::NotFound
    };
    let targets: Vec<(IpNet, u32)> = seen
        .iter()
        .filter(|(p, (o, a))| o.len() == 1 && a.len() >= 10 && (16..=22).contains(&p.prefix_len()))
        .map(|(p, (o, _))| (*p, *o.iter().next().unwrap()))
        .filter(|(p, o)| {
            let sub = p.subnets(24).unwrap().next().unwrap();
            not_found(p, *o) && not_found(&sub, 64_999) && !seen.contains_key(&sub)
        })
        .take(2)
        .collect();
    assert_eq!(targets.len(), 2, "the RIB slice has such prefixes");
    let t0 = EventTime(rib_time.0 + 3_600_000_000);
    // A real peer whose own AS is public (Route Views has peers with private ASNs).
    let li = peers
        .iter()
        .position(|p| !routewitness::judge::anomaly::reserved_asn(p.asn.0))
        .unwrap();
    let liar = PeerIdx(li as u32);
    let liar_asn = peers[li].asn.0;
    let inject = |time: EventTime, peer: PeerIdx, prefix: IpNet, path: &[u32]| {
        IngestEvent::Route(RouteEvent {
            time,
            peer,
            prefix,
            path_id: None,
            action: RouteAction::Announce(AsPath::sequence(path)),
            snapshot: false,
        })
    };

    // 1. Sub-prefix hijack: one real peer announces the first /24 of a real prefix with
    //    its own origin (AS64999 stands for the hijacker, reached through AS3491).
    let (victim, victim_origin) = targets[0];
    let hijack = victim.subnets(24).unwrap().next().unwrap();
    let d = feed(
        &inject(t0, liar, hijack, &[liar_asn, 3491, 64_999]),
        &mut j,
        &mut peers,
    );
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].outcome, Outcome::Quarantine);
    assert_eq!(d[0].time, t0);
    let r: Vec<_> = rules(&d[0]);
    assert!(r.contains(&"conflicts.sub_prefix".to_string()), "{r:?}");
    let json = serde_json::to_value(&d[0]).unwrap();
    let sub = json["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == "conflicts.sub_prefix")
        .unwrap();
    assert_eq!(sub["against"][0]["prefix"], victim.to_string());
    assert_eq!(sub["against"][0]["origin"], victim_origin);
    assert_eq!(sub["witnesses"]["effective"], 1.0);
    // The origin AS64999 is private: the default policy only watches reserved ASNs (a
    // 2008 day has a hundred legitimate claims with one in the path).
    assert!(!r.contains(&"anomalies.reserved_asn".to_string()), "{r:?}");

    // 2. MOAS: the same peer claims the second real prefix for another origin, unrelated
    //    to its holder: a suspected hijack, held while it lasts; the window passing
    //    changes nothing, and the peer is not made to pay (it may have been fooled).
    let (moas_prefix, moas_origin) = targets[1];
    let d = feed(
        &inject(t0, liar, moas_prefix, &[liar_asn, 3491, 17557]),
        &mut j,
        &mut peers,
    );
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(rules(&d[0])[0], "conflicts.moas");
    assert!(
        d[0].explanation().contains(&format!(
            "new origin for established {moas_prefix} (AS{moas_origin})"
        )),
        "{}",
        d[0].explanation()
    );
    let before = j.trust_table(t0)[li].counts.refuted;
    let later = EventTime(t0.0 + 16 * 60 * 1_000_000);
    j.advance(later);
    assert!(j.drain().next().is_none(), "still quarantined: no change");
    let rec = j
        .conflicts()
        .iter()
        .find(|c| c.prefix == moas_prefix)
        .unwrap();
    assert_eq!(rec.resolution, Resolution::Pending);
    assert_eq!(rec.relation, None);
    assert_eq!(j.trust_table(later)[li].counts.refuted, before);
    assert!(
        j.held().iter().any(|h| h.prefix == moas_prefix)
            && j.held().iter().any(|h| h.prefix == hijack),
        "both hijacks still held"
    );

    // 3. An ASPA leak: a real ASPA customer's route reaches a peer through an AS its ASPA
    //    does not list, on a customer session (upstream verification).
    let leak_customer = 945u32; // ASPA: providers 13213, 150369 (the bundled snapshot)
    let p = policy(|p| {
        p.aspa.roles.push(routewitness::judge::policy::RoleRule {
            asn: Asn(liar_asn),
            role: routewitness::judge::policy::PeerRole::Customer,
        })
    });
    let mut j2 = Judge::new(p, &index, &aspa, true, None);
    j2.peer(liar, &peers[li]);
    let leak_prefix = net("45.67.0.0/24");
    let path = AsPath::sequence(&[liar_asn, 174, leak_customer]);
    let (pid, _) = PrefixTable::default().intern(&leak_prefix);
    j2.announce(Announce {
        time: t0,
        peer: liar,
        prefix: leak_prefix,
        prefix_id: pid,
        path_id: None,
        path: &path,
        origin: Some(Asn(leak_customer)),
        rov: validate(&index, &leak_prefix, Some(Asn(leak_customer)), None),
        snapshot: false,
    });
    let d: Vec<_> = j2.drain().collect();
    let leak = d
        .iter()
        .find(|d| rules(d).contains(&"anomalies.aspa_invalid".to_string()))
        .expect("the leak is held");
    let json = serde_json::to_value(leak).unwrap();
    let r = json["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == "anomalies.aspa_invalid")
        .unwrap();
    assert_eq!(r["bad_hop"], serde_json::json!([945, 174]));
    assert_eq!(r["role"], "customer");
}

#[test]
fn squats_are_held_only_once_the_judge_has_watched_long_enough() {
    let idx = VrpIndex::from_vrps(Vec::new());
    let aspa = AspaSet::default();
    let mut lab = Lab::new(&idx);
    let mut j = Judge::new(
        policy(|p| {
            p.conflicts.squat = routewitness::judge::Action::Quarantine;
            p.conflicts.squat_lookback = std::time::Duration::from_secs(3600);
        }),
        &idx,
        &aspa,
        true,
        None,
    );
    peers(&mut j, &[100, 200]);
    // Within the first hour the judge has no history to tell a squat by.
    let d = announce(&mut lab, &mut j, 0, 0, "11.0.0.0/16", &[100, 65], false);
    assert!(d.is_empty(), "{d:?}");
    let d = announce(&mut lab, &mut j, 60, 0, "12.1.0.0/16", &[100, 66], false);
    assert!(d.is_empty(), "{d:?}");
    // Two hours in: a more-specific of recently announced space is no squat...
    announce(&mut lab, &mut j, 7200, 1, "11.0.0.0/16", &[200, 65], false);
    let d = announce(&mut lab, &mut j, 7201, 1, "11.0.9.0/24", &[200, 65], false);
    assert!(d.is_empty(), "{d:?}");
    // ...but space nobody announced is, until witnesses confirm it.
    let d = announce(&mut lab, &mut j, 7202, 0, "13.0.0.0/16", &[100, 77], false);
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(rules(&d[0]), ["conflicts.squat"]);
    assert!(
        d[0].explanation()
            .contains("space nobody announced in the last 1h"),
        "{}",
        d[0].explanation()
    );
    let d = announce(
        &mut lab,
        &mut j,
        7203,
        1,
        "13.0.0.0/16",
        &[200, 9, 77],
        false,
    );
    assert!(
        d.iter()
            .any(|d| d.outcome == Outcome::Propagate && d.cause == Cause::Confirmed),
        "{d:?}"
    );
    // Space withdrawn an hour ago: its claim is remembered (the holder's history, kept
    // for `conflicts.memory`), so its origin announcing it again is no squat.
    withdraw(&mut lab, &mut j, 7300, 0, "12.1.0.0/16");
    let d = announce(
        &mut lab,
        &mut j,
        7300 + 7200,
        1,
        "12.1.0.0/16",
        &[200, 66],
        false,
    );
    assert!(d.is_empty(), "{d:?}");
}

/// Regression: timers used to fire queue by queue, so a hold-down release due before a
/// confirmation deadline came out after it.
#[test]
fn timers_fire_in_time_order_across_kinds() {
    let idx = VrpIndex::from_vrps(Vec::new());
    let aspa = AspaSet::default();
    let mut lab = Lab::new(&idx);
    let mut j = Judge::new(
        policy(|p| {
            p.hold_down = std::time::Duration::from_secs(60);
            p.confirm.on_unconfirmed = routewitness::judge::Action::Reject;
            p.anomalies.reserved_asn = routewitness::judge::Action::Quarantine;
            p.standing.link_age = std::time::Duration::ZERO;
        }),
        &idx,
        &aspa,
        true,
        None,
    );
    peers(&mut j, &[100, 200, 300]);
    announce(&mut lab, &mut j, 0, 0, "11.0.0.0/16", &[100, 65], false);
    announce(&mut lab, &mut j, 0, 1, "11.0.0.0/16", &[200, 65], false);
    // AS66 is AS65's customer: its MOAS is related, watched until its window ends.
    announce(&mut lab, &mut j, 0, 1, "66.0.0.0/16", &[200, 65, 66], false);
    // A related MOAS at t=0 (deadline 900), a reserved ASN held at t=5, repaired at t=20
    // (release due at 65).
    announce(&mut lab, &mut j, 0, 2, "11.0.0.0/16", &[300, 66], false);
    announce(
        &mut lab,
        &mut j,
        5,
        0,
        "12.0.0.0/16",
        &[100, 64512, 7],
        false,
    );
    assert!(announce(&mut lab, &mut j, 20, 0, "12.0.0.0/16", &[100, 7], false).is_empty());
    let d = announce(&mut lab, &mut j, 1000, 1, "13.0.0.0/16", &[200, 8], false);
    let times: Vec<_> = d.iter().map(|d| (d.time, d.cause)).collect();
    assert_eq!(
        times,
        [
            (at(65), Cause::HoldDownEnded),
            (at(900), Cause::WindowExpired)
        ],
        "{d:?}"
    );
}

/// Regression: registering a peer ahead of lower-numbered ones filled their slots with
/// its identity (and ASPA role) until they registered.
#[test]
fn a_peer_registered_out_of_order_lends_its_identity_to_nobody() {
    let idx = VrpIndex::from_vrps(Vec::new());
    let aspa = AspaSet::default();
    let mut j = Judge::new(policy(|_| {}), &idx, &aspa, true, None);
    j.peer(PeerIdx(2), &peer(2, 300));
    let t = j.trust_table(at(0));
    assert_eq!(t.len(), 3);
    assert_eq!(t[0].peer.asn, Asn::ZERO);
    assert_eq!(t[1].peer.asn, Asn::ZERO);
    assert_eq!(t[2].peer.asn, Asn(300));
    j.peer(PeerIdx(0), &peer(0, 100));
    assert_eq!(j.trust_table(at(0))[0].peer.asn, Asn(100));
}

/// A judge restored from what another saved judges as that one would: the established
/// claim holds a MOAS that arrives in a table after Peer Up (no new warm-up learns it),
/// the peers' trust and counts come back by identity (not index), an operator's hold
/// applies when its claim appears again, and decisions keep their numbering.
#[test]
fn a_restored_judge_keeps_established_claims_trust_and_operator_holds() {
    use routewitness::judge::OperatorAction;
    let idx = VrpIndex::from_vrps(Vec::new());
    let aspa = AspaSet::default();
    let warm = || policy(|p| p.warmup = std::time::Duration::from_secs(900));
    let mut lab = Lab::new(&idx);
    let mut j = Judge::new(warm(), &idx, &aspa, true, None);
    peers(&mut j, &[100, 200, 300]);
    for p in 0..3 {
        announce(
            &mut lab,
            &mut j,
            0,
            p,
            "11.0.0.0/22",
            &[100 * (p + 1), 65],
            false,
        );
    }
    assert_eq!(j.stats().claims_established, 1);
    // After the warm-up: AS300 announces a MOAS, held; an operator holds 12.0.0.0/16.
    let d = announce(&mut lab, &mut j, 1000, 2, "11.0.0.0/22", &[300, 666], false);
    assert_eq!(d[0].outcome, Outcome::Quarantine);
    announce(&mut lab, &mut j, 1000, 0, "12.0.0.0/16", &[100, 5], false);
    let (pid, _) = lab.prefixes.intern(&net("12.0.0.0/16"));
    j.operator(pid, Some(Asn(5)), OperatorAction::Hold, "noc", at(1001));
    listed(&mut j);
    let trust_before = j.trust_table(at(1001));
    let saved = j.save(true);
    // Both claims have standing (12.0.0.0/16 contradicts nobody); the MOAS has none.
    assert_eq!(saved.claims.as_ref().map(Vec::len), Some(2));
    assert_eq!(saved.operators.len(), 1);
    let seq = saved.seq;
    assert!(seq >= 2);

    // A new process: prefix ids and peer indexes are handed out anew.
    let mut lab2 = Lab::new(&idx);
    lab2.prefixes.intern(&net("10.0.0.0/8"));
    let mut r = Judge::new(warm(), &idx, &aspa, true, None);
    r.restore(saved.clone(), at(2000), |p| lab2.prefixes.intern(p).0);
    for (i, a) in [300u32, 100, 200].iter().enumerate() {
        let orig = [100u32, 200, 300].iter().position(|x| x == a).unwrap() as u32;
        r.peer(PeerIdx(i as u32), &peer(orig, *a));
    }
    let after = r.trust_table(at(1001));
    for t in &trust_before {
        let again = after.iter().find(|x| x.peer == t.peer).unwrap();
        assert_eq!(again.counts, t.counts, "{:?}", t.peer);
        assert!((again.score - t.score).abs() < 1e-12);
    }
    // AS300 announces the MOAS again: held, not learned.
    let d = announce(
        &mut lab2,
        &mut r,
        2010,
        0,
        "11.0.0.0/22",
        &[300, 666],
        false,
    );
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].outcome, Outcome::Quarantine);
    assert_eq!(rules(&d[0]), ["conflicts.moas"]);
    assert_eq!(d[0].seq, seq + 1, "numbering goes on");
    // The legitimate origin comes back: established already, not held.
    let d = announce(&mut lab2, &mut r, 2010, 1, "11.0.0.0/22", &[100, 65], true);
    assert!(d.is_empty(), "{d:?}");
    // The operator's hold applies when the claim appears again.
    let d = announce(&mut lab2, &mut r, 2011, 1, "12.0.0.0/16", &[100, 5], true);
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(rules(&d[0]), ["operator.hold"]);
    // Saving again keeps what is not seen yet (AS200's trust, no claims lost).
    let again = r.save(true);
    assert_eq!(again.trust.len(), saved.trust.len());
    assert_eq!(again.claims.map(|c| c.len()), Some(2));
}

/// A policy swapped into a running judge applies at once to the routes it holds: a
/// prefix set added holds another origin's route, an RPKI action relaxed releases the
/// invalid route; each is a decision with cause `policy` and the new policy's hash, and
/// routes the swap does not touch get no decision.
#[test]
fn a_swapped_policy_rejudges_the_routes_held_and_not_the_others() {
    use routewitness::judge::policy::PrefixSet;
    use routewitness::judge::Action;
    let vrps = vec![Vrp {
        prefix: net("11.1.0.0/16"),
        max_length: 16,
        asn: Asn(65),
        expires: None,
        ta: None,
    }];
    let idx = VrpIndex::from_vrps(vrps);
    let aspa = AspaSet::default();
    let mut lab = Lab::new(&idx);
    let mut j = Judge::new(policy(|_| {}), &idx, &aspa, true, None);
    peers(&mut j, &[100, 200]);
    // RPKI-invalid (wrong origin): held; an unrelated route: propagated.
    let d = announce(&mut lab, &mut j, 0, 0, "11.1.0.0/16", &[100, 66], false);
    assert_eq!(d[0].outcome, Outcome::Quarantine);
    assert!(announce(&mut lab, &mut j, 0, 1, "12.0.0.0/16", &[200, 7], false).is_empty());
    let old_hash = j.policy_hash().to_string();

    let relaxed = || {
        policy(|p| {
            p.rpki.invalid = Action::Propagate;
            p.prefix_sets.push(PrefixSet {
                name: "ours".into(),
                prefixes: vec![net("12.0.0.0/8")],
                origins: vec![Asn(8)],
                max_length: None,
                action: Action::Reject,
            });
        })
    };
    j.set_policy(relaxed(), at(10));
    let d = listed(&mut j);
    assert_eq!(d.len(), 2, "{d:?}");
    assert!(d.iter().all(|x| x.cause == Cause::Policy));
    assert!(d.iter().all(|x| *x.policy != *old_hash));
    let released = d.iter().find(|x| x.prefix == net("11.1.0.0/16")).unwrap();
    assert_eq!(released.outcome, Outcome::Propagate);
    let held = d.iter().find(|x| x.prefix == net("12.0.0.0/16")).unwrap();
    assert_eq!(held.outcome, Outcome::Reject);
    assert_eq!(rules(held), ["prefix_sets.ours"]);
    // The same policy again changes nothing.
    j.set_policy(relaxed(), at(20));
    assert!(listed(&mut j).is_empty());
}

/// A new RPKI data set re-judges what the judge holds: a ROA for the route's origin
/// releases the RPKI-invalid route, and an ASPA that the path now breaks holds another
/// (its path from the caller, as the judge keeps none); both with cause `rpki` and the
/// new serial.
#[test]
fn a_new_rpki_set_rejudges_origins_and_paths() {
    let roa = |asn: u32| Vrp {
        prefix: net("11.1.0.0/16"),
        max_length: 16,
        asn: Asn(asn),
        expires: None,
        ta: None,
    };
    let old = VrpIndex::from_vrps(vec![roa(65)]);
    let no_aspa = AspaSet::default();
    let mut lab = Lab::new(&old);
    let mut j = Judge::new(
        policy(|p| {
            p.aspa.roles = vec![routewitness::judge::policy::RoleRule {
                asn: Asn(200),
                role: routewitness::judge::policy::PeerRole::Customer,
            }];
        }),
        &old,
        &no_aspa,
        true,
        Some(1),
    );
    peers(&mut j, &[100, 200]);
    let d = announce(&mut lab, &mut j, 0, 0, "11.1.0.0/16", &[100, 66], false);
    assert_eq!(d[0].outcome, Outcome::Quarantine);
    // From the customer AS200: a path through AS300 to AS400.
    assert!(announce(
        &mut lab,
        &mut j,
        0,
        1,
        "12.0.0.0/16",
        &[200, 300, 400],
        false
    )
    .is_empty());

    // The new set: AS66 holds the ROA; AS300 declares AS999 its only provider, so
    // AS300 -> AS200 upwards is a leak.
    let new = std::sync::Arc::new(VrpIndex::from_vrps(vec![roa(66)]));
    let aspa = std::sync::Arc::new(AspaSet::new(&[Aspa {
        customer: Asn(300),
        providers: vec![Asn(999)],
        afi: None,
        expires: None,
    }]));
    let paths = [
        (0u32, "11.1.0.0/16", vec![100u32, 66]),
        (1, "12.0.0.0/16", vec![200, 300, 400]),
    ];
    let ids: Vec<_> = paths
        .iter()
        .map(|(p, pfx, path)| {
            (
                *p,
                lab.prefixes.get(&net(pfx)).unwrap(),
                AsPath::sequence(path),
            )
        })
        .collect();
    let changed = j.set_rpki(new, aspa, Some(2), at(10), |peer, pid, _| {
        ids.iter()
            .find(|(p, id, _)| PeerIdx(*p) == peer && *id == pid)
            .map(|(_, _, path)| path.clone())
    });
    assert_eq!(changed, 1, "one claim's origin validation changed");
    let d = listed(&mut j);
    assert_eq!(d.len(), 2, "{d:?}");
    assert!(d
        .iter()
        .all(|x| x.cause == Cause::Rpki && x.rpki_serial == Some(2)));
    let released = d.iter().find(|x| x.prefix == net("11.1.0.0/16")).unwrap();
    assert_eq!(released.outcome, Outcome::Propagate);
    let leak = d.iter().find(|x| x.prefix == net("12.0.0.0/16")).unwrap();
    assert_eq!(leak.outcome, Outcome::Quarantine);
    assert_eq!(rules(leak), ["anomalies.aspa_invalid"]);
}

// ----- standing (issue 16): the lying-origin question, kept apart from witnesses -----

/// The YouTube case in miniature: a more-specific of a holder's space from an origin the
/// paths show no relationship with is held from its first announcement, for as long as
/// any peer carries it: more peers carrying it release nothing (they were fooled, they
/// did not lie, and lose no trust). The holder announcing the same more-specific itself
/// (fighting back) is never held.
#[test]
fn a_sub_prefix_from_an_unrelated_origin_stays_held_however_many_carry_it() {
    let idx = VrpIndex::from_vrps(Vec::new());
    let aspa = AspaSet::default();
    let mut lab = Lab::new(&idx);
    let mut j = Judge::new(policy(|_| {}), &idx, &aspa, true, None);
    peers(&mut j, &[100, 200, 300, 400, 500]);
    // The holder: AS36561's /22, seen from one peer only (never confirmed by two).
    let d = announce(
        &mut lab,
        &mut j,
        0,
        0,
        "208.65.152.0/22",
        &[100, 1239, 36561],
        false,
    );
    assert!(d.is_empty(), "{d:?}");
    // The hijack, hours later, through the attacker's real upstream.
    let d = announce(
        &mut lab,
        &mut j,
        3600,
        1,
        "208.65.153.0/24",
        &[200, 3491, 17557],
        false,
    );
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].outcome, Outcome::Quarantine);
    assert_eq!(rules(&d[0]), ["conflicts.sub_prefix"]);
    // Every other peer carries it: each route held, nothing released.
    for p in 2..5 {
        let d = announce(
            &mut lab,
            &mut j,
            3601,
            p,
            "208.65.153.0/24",
            &[100 * (p + 1), 3491, 17557],
            false,
        );
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].outcome, Outcome::Quarantine, "{d:?}");
    }
    assert_eq!(j.held_routes(), 4);
    // An hour later it is still held (no window, no confirmation).
    let d = announce(&mut lab, &mut j, 7200, 0, "12.0.0.0/16", &[100, 5], false);
    assert!(d.is_empty(), "{d:?}");
    assert_eq!(j.held_routes(), 4);
    assert!(j
        .trust_table(at(7200))
        .iter()
        .all(|t| t.counts.refuted == 0 && t.counts.conflict_held == 0));
    // The holder fights back with the same /24: not held; the peer's hijack route is
    // replaced by the holder's (a closing decision for the hijack's claim).
    let d = announce(
        &mut lab,
        &mut j,
        7300,
        1,
        "208.65.153.0/24",
        &[200, 1239, 36561],
        false,
    );
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].outcome, Outcome::Withdrawn);
    assert_eq!(d[0].origin, Some(Asn(17557)));
    let d = announce(
        &mut lab,
        &mut j,
        7300,
        0,
        "208.65.153.128/25",
        &[100, 1239, 36561],
        false,
    );
    assert!(d.is_empty(), "the holder's own more-specific: {d:?}");
    assert_eq!(j.held_routes(), 3, "the others still carry the hijack");
    let rec = j
        .conflicts()
        .iter()
        .find(|c| c.origin == Some(Asn(17557)))
        .unwrap();
    assert_eq!(rec.relation, None);
    assert_eq!(rec.resolution, Resolution::Pending);
}

/// A new origin the paths relate to the holder is a legitimate change: recorded, not
/// held: the holder carrying it (transit), a customer (the holder seen upstream of it
/// before), a provider (seen upstream of the holder before). Evidence newer than
/// `standing.link_age` does not count.
#[test]
fn an_origin_related_to_the_holder_is_a_legitimate_change() {
    let idx = VrpIndex::from_vrps(Vec::new());
    let aspa = AspaSet::default();
    let mut lab = Lab::new(&idx);
    let mut j = Judge::new(policy(|_| {}), &idx, &aspa, true, None);
    peers(&mut j, &[100, 200, 300]);
    announce(
        &mut lab,
        &mut j,
        0,
        0,
        "11.0.0.0/16",
        &[100, 3356, 65],
        false,
    );
    // AS77 seen as AS65's customer (65 just before 77 on 77's own routes).
    announce(&mut lab, &mut j, 0, 0, "77.0.0.0/16", &[100, 65, 77], false);
    // AS88 seen as AS65's provider.
    announce(&mut lab, &mut j, 0, 1, "12.0.0.0/16", &[200, 88, 65], false);
    let hour = 3600;
    // Transit: the holder carries the new origin's more-specific.
    let d = announce(
        &mut lab,
        &mut j,
        hour,
        1,
        "11.0.1.0/24",
        &[200, 65, 99],
        false,
    );
    assert!(d.is_empty(), "{d:?}");
    // Customer, through another upstream.
    let d = announce(
        &mut lab,
        &mut j,
        hour,
        2,
        "11.0.2.0/24",
        &[300, 1299, 77],
        false,
    );
    assert!(d.is_empty(), "{d:?}");
    // Provider originating its customer's more-specific.
    let d = announce(&mut lab, &mut j, hour, 2, "11.0.3.0/24", &[300, 88], false);
    assert!(d.is_empty(), "{d:?}");
    let relations: Vec<_> = j
        .conflicts()
        .iter()
        .map(|c| (c.relation.map(|r| r.name()), c.resolution))
        .collect();
    assert_eq!(
        relations,
        [
            (Some("transit"), Resolution::Legitimate),
            (Some("customer"), Resolution::Legitimate),
            (Some("provider"), Resolution::Legitimate)
        ]
    );
    assert_eq!(j.stats().legitimate_changes, 3);
    assert_eq!(j.held_routes(), 0);
    // A link first seen a minute before is no excuse (link_age is 1 h).
    announce(
        &mut lab,
        &mut j,
        hour,
        0,
        "13.0.0.0/16",
        &[100, 65, 55],
        false,
    );
    let d = announce(
        &mut lab,
        &mut j,
        hour + 60,
        2,
        "11.0.4.0/24",
        &[300, 1299, 55],
        false,
    );
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(rules(&d[0]), ["conflicts.sub_prefix"]);
}

/// State transfer is not news: a peer sending its table (a burst of claims new to the
/// judge, as an MRT stream shows a session coming up, with no End-of-RIB) raises no
/// conflict; the few held before the burst showed are released (cause `transfer`); a
/// claim learned unchecked is judged when a peer not sending its table announces it.
#[test]
fn a_table_sent_again_is_state_transfer_not_news() {
    let idx = VrpIndex::from_vrps(Vec::new());
    let aspa = AspaSet::default();
    let mut lab = Lab::new(&idx);
    let mut j = Judge::new(
        policy(|p| {
            p.standing.transfer_burst = 5;
            p.conflicts.recurring = routewitness::judge::Action::Quarantine;
        }),
        &idx,
        &aspa,
        true,
        None,
    );
    peers(&mut j, &[100, 200]);
    announce(&mut lab, &mut j, 0, 0, "11.0.0.0/16", &[100, 65], false);
    // Peer 1 sends its table an hour later: more-specifics of 11.0.0.0/16 from AS66.
    let mut held = Vec::new();
    let mut released = Vec::new();
    for i in 0..10 {
        let d = announce(
            &mut lab,
            &mut j,
            3600 + i,
            1,
            &format!("11.0.{i}.0/24"),
            &[200, 66],
            false,
        );
        for d in d {
            match d.outcome {
                Outcome::Quarantine => held.push(d.prefix),
                Outcome::Propagate => {
                    assert_eq!(d.cause, Cause::Transfer);
                    released.push(d.prefix);
                }
                _ => panic!("{d:?}"),
            }
        }
    }
    assert_eq!(held.len(), 4, "judged as news until the 5th new claim");
    assert_eq!(
        released, held,
        "then the early ones were state transfer too"
    );
    assert_eq!(j.held_routes(), 0);
    assert!(j.stats().transfer_routes >= 10);
    // Peer 0, not sending a table, announces one of them minutes later: judged now, as a
    // claim seen before in the table (recurring: the default watches it, this policy
    // holds it). Within two minutes of the burst it would be news reaching a second peer
    // (`a_mass_hijack_is_not_a_table_because_every_peer_bursts`).
    let d = announce(&mut lab, &mut j, 3800, 0, "11.0.7.0/24", &[100, 66], false);
    let held: Vec<_> = d
        .iter()
        .filter(|d| d.outcome == Outcome::Quarantine)
        .collect();
    assert_eq!(held.len(), 2, "both routes of the claim: {d:?}");
    assert!(held.iter().all(|d| rules(d) == ["conflicts.recurring"]));
}

/// A mass hijack (one AS announcing hundreds of others' prefixes, as AS4134 did in 2010)
/// reaches every peer as a burst of new claims: a burst, but not one peer's table. A new
/// claim in the bursts of two independent peers at once is news, judged and held.
#[test]
fn a_mass_hijack_is_not_a_table_because_every_peer_bursts() {
    let idx = VrpIndex::from_vrps(Vec::new());
    let aspa = AspaSet::default();
    // 40 holders, announced over an hour (no burst), then two hours later AS666 announces
    // a /24 of each within a minute, from the peers given: each peer's burst of new
    // claims is far past `transfer_burst`. Returns the prefixes held at the end.
    let run = |from: &[(u32, u32)]| {
        let mut lab = Lab::new(&idx);
        let mut j = Judge::new(policy(|_| {}), &idx, &aspa, true, None);
        peers(&mut j, &[100, 200, 300]);
        for i in 0..40u32 {
            let prefix = format!("11.{i}.0.0/16");
            announce(
                &mut lab,
                &mut j,
                i as i64 * 90,
                0,
                &prefix,
                &[100, 1000 + i],
                false,
            );
        }
        let mut held = std::collections::BTreeSet::new();
        for i in 0..40u32 {
            let prefix = format!("11.{i}.1.0/24");
            for &(p, asn) in from {
                let t = 7200 + i as i64;
                for d in announce(&mut lab, &mut j, t, p, &prefix, &[asn, 666], false) {
                    if d.outcome == Outcome::Quarantine {
                        held.insert(d.prefix);
                    } else {
                        held.remove(&d.prefix);
                    }
                }
            }
        }
        held
    };
    let held = run(&[(1, 200), (2, 300)]);
    assert_eq!(held.len(), 40, "every hijacked prefix held: {held:?}");
    // One peer sending the same claims alone is its table: learned, not held (the few
    // held before the burst showed are released).
    let held = run(&[(1, 200)]);
    assert!(held.is_empty(), "{held:?}");
}

/// An unrelated origin that claimed the space before (and went away) is recurring:
/// watched by default, held by strict. What one collector's stream shows again and again
/// of long-standing routes is not news the second time.
#[test]
fn an_unrelated_origin_seen_before_is_recurring() {
    let idx = VrpIndex::from_vrps(Vec::new());
    let aspa = AspaSet::default();
    for (strict, held_again) in [(false, false), (true, true)] {
        let mut lab = Lab::new(&idx);
        let p = if strict {
            policy(|p| {
                p.conflicts.recurring = routewitness::judge::Action::Quarantine;
            })
        } else {
            policy(|_| {})
        };
        let mut j = Judge::new(p, &idx, &aspa, true, None);
        peers(&mut j, &[100, 200]);
        announce(&mut lab, &mut j, 0, 0, "11.0.0.0/16", &[100, 65], false);
        let d = announce(&mut lab, &mut j, 3600, 1, "11.0.9.0/24", &[200, 66], false);
        assert_eq!(rules(&d[0]), ["conflicts.sub_prefix"]);
        withdraw(&mut lab, &mut j, 3700, 1, "11.0.9.0/24");
        let d = announce(&mut lab, &mut j, 7200, 1, "11.0.9.0/24", &[200, 66], false);
        assert_eq!(!d.is_empty(), held_again, "strict {strict}: {d:?}");
        if held_again {
            assert_eq!(rules(&d[0]), ["conflicts.recurring"]);
        }
    }
}

/// Forged origin (type-1): a route of the holder's own origin whose last link comes from
/// an AS never seen giving transit (nor the holder's customer) is flagged
/// (`conflicts.forged_origin`, held by strict, watched by default); the holder's routes
/// through its known upstreams are not, nor a new upstream that carries others' routes.
#[test]
fn a_forged_origin_from_a_stub_is_flagged() {
    let idx = VrpIndex::from_vrps(Vec::new());
    let aspa = AspaSet::default();
    let mut lab = Lab::new(&idx);
    let mut j = Judge::new(
        policy(|p| p.conflicts.forged_origin = routewitness::judge::Action::Quarantine),
        &idx,
        &aspa,
        true,
        None,
    );
    peers(&mut j, &[100, 200, 300]);
    // The victim AS65 with its upstream AS3356; the attacker AS666, a stub with its own
    // prefix behind AS174; AS1299, a transit carrying AS70's routes.
    announce(
        &mut lab,
        &mut j,
        0,
        0,
        "11.0.0.0/16",
        &[100, 3356, 65],
        false,
    );
    announce(
        &mut lab,
        &mut j,
        0,
        1,
        "66.0.0.0/16",
        &[200, 174, 666],
        false,
    );
    announce(
        &mut lab,
        &mut j,
        0,
        2,
        "70.0.0.0/16",
        &[300, 1299, 70],
        false,
    );
    // The forged path: the attacker's real path to itself, then the victim.
    let d = announce(
        &mut lab,
        &mut j,
        3600,
        1,
        "11.0.0.0/16",
        &[200, 174, 666, 65],
        false,
    );
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(rules(&d[0]), ["conflicts.forged_origin"]);
    assert!(
        d[0].explanation().contains("link AS666 AS65 never seen"),
        "{}",
        d[0].explanation()
    );
    // A new upstream that gives transit to others: a new provider, not flagged.
    let d = announce(
        &mut lab,
        &mut j,
        3600,
        2,
        "11.0.0.0/16",
        &[300, 1299, 65],
        false,
    );
    assert!(d.is_empty(), "{d:?}");
    // The forged route withdrawn: its closing decision.
    let d = withdraw(&mut lab, &mut j, 4000, 1, "11.0.0.0/16");
    assert_eq!(d[0].outcome, Outcome::Withdrawn);
    // The default policy watches it (no hold).
    let mut lab = Lab::new(&idx);
    let mut j = Judge::new(policy(|_| {}), &idx, &aspa, true, None);
    peers(&mut j, &[100, 200]);
    announce(
        &mut lab,
        &mut j,
        0,
        0,
        "11.0.0.0/16",
        &[100, 3356, 65],
        false,
    );
    announce(
        &mut lab,
        &mut j,
        0,
        1,
        "66.0.0.0/16",
        &[200, 174, 666],
        false,
    );
    let d = announce(
        &mut lab,
        &mut j,
        3600,
        1,
        "11.0.0.0/16",
        &[200, 174, 666, 65],
        false,
    );
    assert!(d.is_empty(), "{d:?}");
}
