//! BMP ingest on real captures: every stream in fixtures/bmp (routers of five vendors,
//! and GoBGP 3.10 / FRR 8.4.4 from the lab), the lab's expected RPKI states, FRR's
//! prepended AS, and fuzzing of the decoder path.

use proptest::prelude::*;
use routewitness::ingest::bmp::{frame, read_stream, BmpConverter, View, DEFAULT_MAX_MESSAGE};
use routewitness::ingest::{IngestEvent, PeerRegistry};
use routewitness::model::{Asn, EventTime, RouteAction, RouteEvent};
use routewitness::rpki::{validate, LoadOptions, RovState, VrpIndex};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/bmp")
}

fn captures() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "bmp") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&root(), &mut out);
    out.sort();
    out
}

struct Read {
    events: Vec<IngestEvent>,
    registry: PeerRegistry,
}

fn read(rel: &str, view: View) -> Read {
    let bytes = std::fs::read(root().join(rel)).unwrap();
    let mut conv = BmpConverter::new(view);
    let mut registry = PeerRegistry::default();
    let mut events = Vec::new();
    let s = read_stream(
        &bytes,
        rel,
        EventTime(0),
        &mut conv,
        &mut registry,
        &mut |e| events.push(e),
    );
    assert!(s.broken.is_none() && s.skipped.is_empty(), "{rel}: {s:?}");
    Read { events, registry }
}

fn announcements(r: &Read) -> Vec<(&RouteEvent, String, Option<Asn>)> {
    r.events
        .iter()
        .filter_map(|e| match e {
            IngestEvent::Route(r) => Some(r),
            _ => None,
        })
        .filter_map(|ev| match &ev.action {
            RouteAction::Announce(p) => {
                let speaker = r.registry.peers[ev.peer.0 as usize].asn;
                let path: Vec<String> = p
                    .segments()
                    .flat_map(|(_, asns)| asns.iter().map(|a| a.to_string()))
                    .collect();
                Some((ev, path.join(" "), p.origin(speaker)))
            }
            RouteAction::Withdraw => None,
        })
        .collect()
}

#[test]
fn every_capture_frames_and_reads_without_panic() {
    let files = captures();
    assert!(files.len() >= 75, "{} captures", files.len());
    let mut routes = 0u64;
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        for view in [View::PrePolicy, View::PostPolicy, View::LocRib] {
            let mut conv = BmpConverter::new(view);
            let mut reg = PeerRegistry::default();
            let s = read_stream(&bytes, "t", EventTime(0), &mut conv, &mut reg, &mut |e| {
                if matches!(e, IngestEvent::Route(_)) {
                    routes += 1;
                }
            });
            assert!(s.broken.is_none(), "{}: {s:?}", f.display());
            // PROVENANCE.md: every stream frames cleanly but one, whose last message the
            // original pcap cut (12,503 of 12,659 bytes framed).
            let cut = f
                .to_string_lossy()
                .contains("202-BMP-CISCO-HUAWEI-multiple-sources/traffic-02");
            assert_eq!(
                s.truncated_tail,
                if cut { 156 } else { 0 },
                "{}",
                f.display()
            );
        }
    }
    assert!(routes > 5_000, "{routes} route events");
}

#[test]
fn gobgp_lab_stream_gives_the_lab_routes_in_each_view() {
    let rel = "lab/gobgp-3.10_minimal-lab.bmp";
    // Pre-policy Adj-RIB-In from BIRD (127.65.0.1, AS65001): one UPDATE, three prefixes,
    // and an IPv6 one.
    let pre = read(rel, View::PrePolicy);
    let a = announcements(&pre);
    let got: Vec<(String, String)> = a
        .iter()
        .map(|(e, p, _)| (e.prefix.to_string(), p.clone()))
        .collect();
    assert_eq!(
        got,
        [
            ("203.0.113.128/25", "65001"),
            ("100.64.1.0/24", "65001"),
            ("100.64.2.0/24", "65001"),
            ("2001:db8:400::/48", "65001"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    let peer = &pre.registry.peers[a[0].0.peer.0 as usize];
    assert_eq!(
        (peer.addr.to_string(), peer.asn),
        ("127.65.0.1".into(), Asn(65001))
    );
    // The initial table after Peer Up is state transfer.
    assert!(a.iter().all(|(e, _, _)| e.snapshot));
    // GoBGP sends no Termination: the session's end takes the peer down.
    assert!(matches!(
        pre.events.last(),
        Some(IngestEvent::PeerDown { .. })
    ));

    // Loc-RIB (RFC 9069): peer 0.0.0.0, GoBGP's own routes with an empty AS path, whose
    // origin is the speaker's AS.
    let loc = read(rel, View::LocRib);
    let a = announcements(&loc);
    assert_eq!(a.len(), 11);
    let own = a
        .iter()
        .find(|(e, _, _)| e.prefix.to_string() == "198.51.100.0/24")
        .unwrap();
    assert_eq!((own.1.as_str(), own.2), ("", Some(Asn(65002))));
    let peer = &loc.registry.peers[own.0.peer.0 as usize];
    assert_eq!(
        (peer.addr.to_string(), peer.asn),
        ("0.0.0.0".into(), Asn(65002))
    );
}

#[test]
fn lab_routes_get_the_rpki_state_their_community_expects() {
    // lab-up.sh tags each injected route with large community (65002, 0, N): the RFC 8097
    // state it should have against the lab's VRPs (0 valid, 1 not-found, 2 invalid).
    let set = routewitness::rpki::vrps::load(&root().join("lab/vrps.json"), LoadOptions::default())
        .unwrap();
    let index = VrpIndex::new(&set);
    let loc = read("lab/gobgp-3.10_minimal-lab.bmp", View::LocRib);
    let want = [
        ("198.51.100.0/24", RovState::Valid),
        ("2001:db8:100::/48", RovState::Valid),
        ("198.18.0.0/24", RovState::NotFound),
        ("2001:db8:300::/48", RovState::NotFound),
    ];
    let a = announcements(&loc);
    for (prefix, state) in want {
        let (e, _, origin) = a
            .iter()
            .find(|(e, _, _)| e.prefix.to_string() == prefix)
            .unwrap();
        assert_eq!(
            validate(&index, &e.prefix, *origin, None),
            state,
            "{prefix}"
        );
    }
    for prefix in ["203.0.113.0/24", "198.51.100.128/25", "2001:db8:200::/48"] {
        let (e, _, origin) = a
            .iter()
            .find(|(e, _, _)| e.prefix.to_string() == prefix)
            .unwrap();
        assert!(
            matches!(
                validate(&index, &e.prefix, *origin, None),
                RovState::Invalid(_)
            ),
            "{prefix}"
        );
    }
}

#[test]
fn frr_8_4_prepended_as_is_removed() {
    // FRR 8.4.4 reports 100.64.1.0/24 from AS65002 as [65003 65002 65001]: 65003 is FRR
    // itself (lab README §3, quirk 1).
    let pre = read("lab/frr-8.4.4_full-lab-run3.bmp", View::PrePolicy);
    let a = announcements(&pre);
    let path_of = |p: &str| {
        a.iter()
            .find(|(e, _, _)| e.prefix.to_string() == p)
            .map(|(_, path, o)| (path.clone(), *o))
            .unwrap()
    };
    assert_eq!(
        path_of("100.64.1.0/24"),
        ("65002 65001".into(), Some(Asn(65001)))
    );
    assert_eq!(
        path_of("198.51.100.0/24"),
        ("65002".into(), Some(Asn(65002)))
    );
    // A GoBGP path is left alone.
    let gobgp = read("lab/gobgp-3.10_minimal-lab.bmp", View::PrePolicy);
    assert!(announcements(&gobgp).iter().all(|(_, p, _)| p == "65001"));
}

#[test]
fn peer_down_in_a_cisco_capture() {
    // pmacct's 204-BMP-CISCO-peer_down: IPv6-transported stream with Peer Down messages.
    let bytes = std::fs::read(root().join(
        "raw-streams/204-BMP-CISCO-peer_down/traffic-00.flow0_2001-db8-90--1_20-2a02-a90-4007-31--69_1790.bmp",
    ))
    .unwrap();
    let mut conv = BmpConverter::new(View::PostPolicy);
    let mut reg = PeerRegistry::default();
    let mut downs = 0;
    let mut routes = 0;
    let s = read_stream(
        &bytes,
        "xr",
        EventTime(0),
        &mut conv,
        &mut reg,
        &mut |e| match e {
            IngestEvent::PeerDown { .. } => downs += 1,
            IngestEvent::Route(_) => routes += 1,
            _ => {}
        },
    );
    assert!(s.broken.is_none() && s.skipped.is_empty(), "{s:?}");
    assert_eq!(conv.counts.peer_down, 3);
    // Its routes are L3VPN (skipped: not unicast); its peers still go up and down.
    assert_eq!(routes, 0);
    assert_eq!(conv.counts.peer_up, 10);
    assert!(downs >= 3, "{downs} downs");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Garbage never panics, and framing never claims more than it has.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        if let Ok(Some(n)) = frame(&bytes, DEFAULT_MAX_MESSAGE) {
            prop_assert!((6..=bytes.len()).contains(&n));
        }
        let mut conv = BmpConverter::new(View::PrePolicy);
        let mut reg = PeerRegistry::default();
        let _ = read_stream(&bytes, "fuzz", EventTime(0), &mut conv, &mut reg, &mut |_| {});
    }

    /// Real streams with bytes flipped, cut or spliced: never a panic; whatever framed
    /// before the damage is still read, the same.
    #[test]
    fn mutated_captures_never_panic_and_keep_what_came_before(
        file in 0usize..8,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..12),
        cut in any::<prop::sample::Index>(),
    ) {
        let files = captures();
        let original = std::fs::read(&files[file * files.len() / 8]).unwrap();
        let mut bytes = original.clone();
        let mut flipped = Vec::new();
        for (at, b) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= b;
            if b != 0 {
                flipped.push(i);
            }
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        // The messages that end before the first damaged byte (a flip or the cut), by the
        // common header's length, are intact: read alone they give some events, and the
        // damaged stream must give the same ones first.
        let damaged_at = flipped.iter().copied().min().unwrap_or(usize::MAX).min(bytes.len());
        let mut intact = 0usize;
        while intact + 6 <= original.len() {
            let len = u32::from_be_bytes(original[intact + 1..intact + 5].try_into().unwrap()) as usize;
            if len < 6 || intact + len > damaged_at {
                break;
            }
            intact += len;
        }
        for view in [View::PrePolicy, View::PostPolicy, View::LocRib] {
            let events_of = |b: &[u8]| {
                let mut conv = BmpConverter::new(view);
                let mut reg = PeerRegistry::default();
                let mut out = Vec::new();
                let _ = read_stream(b, "fuzz", EventTime(0), &mut conv, &mut reg, &mut |e| {
                    if let IngestEvent::Route(r) = e {
                        out.push(format!("{r:?}"));
                    }
                });
                out
            };
            let before = events_of(&original[..intact]);
            let got = events_of(&bytes);
            prop_assert!(got.len() >= before.len(), "{} routes before the damage, {} read", before.len(), got.len());
            prop_assert_eq!(&got[..before.len()], &before[..]);
        }
    }
}

/// Judges a stream of events (in order) under the default policy; the decisions as JSONL.
fn judge_all(
    events: &[IngestEvent],
    index: &VrpIndex,
    aspa: &routewitness::rpki::AspaSet,
) -> (Vec<u8>, u64) {
    use routewitness::judge::Policy;
    use routewitness::pipeline::RovStage;
    use routewitness::replay::{Judging, Tally};
    let mut out = Vec::new();
    let mut routes = 0;
    // A collector's peers are one witness each; over BMP all the peers of one router are
    // one witness domain by default (issue 18). The stream re-encodes a collector's
    // sessions, so it is judged with the peers apart for the two to compare.
    let mut policy = Policy::load("default").unwrap();
    policy.confirm.one_vote_per_router = false;
    {
        let mut rov = RovStage::new(index, true);
        let mut tally = Tally::new(
            index,
            true,
            None,
            Some(Judging {
                policies: vec![policy],
                aspa,
                rpki_serial: Some(1),
                decisions: Some(&mut out),
                sink: None,
                observer: None,
            }),
        );
        for ev in events {
            if matches!(ev, IngestEvent::Route(_)) {
                routes += 1;
            }
            let v = rov.annotate(ev);
            tally.handle(ev, v).unwrap();
        }
    }
    (out, routes)
}

/// The same routes, replayed from MRT or streamed as BMP (re-encoded with mrt2bmp: the
/// UPDATE PDUs byte for byte), give byte-identical decisions: the BMP path feeds the
/// judge exactly what MRT replay feeds it.
#[test]
fn bmp_and_mrt_of_the_same_routes_are_judged_alike() {
    use routewitness::ingest::mrt2bmp;
    let vrps = routewitness::rpki::vrps::load(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/vrp/rpki-client_20250720T093135Z.json.bz2"),
        LoadOptions::default(),
    )
    .unwrap();
    let index = VrpIndex::new(&vrps);
    let aspa = routewitness::rpki::AspaSet::new(&vrps.aspas);
    let mrt_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/mrt");
    // The YouTube hijack dumps (15 minutes each, real route-views2 BGP4MP).
    let files = [
        "routeviews2_updates.20080224.1839.bz2",
        "routeviews2_updates.20080224.1854.bz2",
    ];
    let mut mrt_events = Vec::new();
    let mut bmp_bytes = Vec::new();
    let mut registry = PeerRegistry::default();
    for f in files {
        let path = mrt_dir.join(f);
        routewitness::ingest::mrt::read_file(&path, &mut registry, None, |e| {
            if !matches!(e, IngestEvent::FileDone(_) | IngestEvent::Damage(_)) {
                mrt_events.push(e)
            }
        })
        .unwrap();
        let mut raw = Vec::new();
        std::io::Read::read_to_end(
            &mut routewitness::input::InputReader::open(&path).unwrap(),
            &mut raw,
        )
        .unwrap();
        let st = mrt2bmp::convert(&raw, &mut bmp_bytes);
        assert_eq!(st.truncated_tail, 0);
        assert!(st.route_monitoring > 10_000, "{st:?}");
    }
    let mut conv = BmpConverter::new(View::PrePolicy);
    let mut reg = PeerRegistry::default();
    let mut bmp_events = Vec::new();
    let s = read_stream(
        &bmp_bytes,
        "rv2",
        EventTime(0),
        &mut conv,
        &mut reg,
        &mut |e| bmp_events.push(e),
    );
    assert!(s.broken.is_none() && s.skipped.is_empty(), "{s:?}");
    // read_stream ends the session at the end of the stream; MRT has no such event.
    while matches!(bmp_events.last(), Some(IngestEvent::PeerDown { state, .. }) if state == "BMP session closed")
    {
        bmp_events.pop();
    }
    let (a, ra) = judge_all(&mrt_events, &index, &aspa);
    let (b, rb) = judge_all(&bmp_events, &index, &aspa);
    assert_eq!(ra, rb);
    assert!(ra > 100_000, "{ra} route events");
    let lines = a.iter().filter(|&&c| c == b'\n').count();
    assert!(lines > 1_000, "{lines} decisions");
    assert!(
        a == b,
        "decisions differ ({} vs {} bytes)",
        a.len(),
        b.len()
    );
}

/// What one way of reading gave: the events (as Debug lines) and the counts.
type Way = (Vec<String>, String);

/// A stream read message by message both ways: `BmpConverter::bytes` (in place when it
/// can) and bgpkit's decoder with `BmpConverter::message`. Returns the events (as Debug
/// lines) and counts of each way, and how many messages went in place.
fn both_ways(bytes: &[u8], view: View) -> (Way, Way, u64) {
    use routewitness::ingest::bmp::decode;
    let mut fast = (
        BmpConverter::new(view),
        PeerRegistry::default(),
        Vec::new(),
        0u64,
    );
    let mut slow = (
        BmpConverter::new(view),
        PeerRegistry::default(),
        Vec::new(),
        0u64,
    );
    let (r1, r2) = (fast.0.router("t", "t"), slow.0.router("t", "t"));
    let mut at = 0;
    while let Ok(Some(n)) = frame(&bytes[at..], DEFAULT_MAX_MESSAGE) {
        let msg = &bytes[at..at + n];
        at += n;
        let (conv, reg, out, errors) = &mut fast;
        if conv
            .bytes(r1, msg, EventTime(7), reg, &mut |e| {
                out.push(format!("{e:?}"))
            })
            .is_err()
        {
            *errors += 1;
        }
        let (conv, reg, out, errors) = &mut slow;
        match decode(msg) {
            Ok(m) => conv.message(r2, m, EventTime(7), reg, &mut |e| {
                out.push(format!("{e:?}"))
            }),
            Err(_) => *errors += 1,
        }
    }
    let counts = |c: &BmpConverter, errors: u64| {
        format!(
            "{} routes {:?} errors {errors}",
            serde_json::to_string(&c.counts).unwrap(),
            c.routes()
        )
    };
    let in_place = fast.0.read_in_place;
    (
        (fast.2, counts(&fast.0, fast.3)),
        (slow.2, counts(&slow.0, slow.3)),
        in_place,
    )
}

/// The PCH 2015 update fixture re-encoded as BMP (as the BMP bench does).
fn pch_as_bmp() -> Vec<u8> {
    use std::io::Read as _;
    let mut mrt = Vec::new();
    routewitness::input::InputReader::open(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/mrt/pch_updates.et-header.20151023.gz"),
    )
    .unwrap()
    .read_to_end(&mut mrt)
    .unwrap();
    let mut bmp = Vec::new();
    routewitness::ingest::mrt2bmp::convert(&mrt, &mut bmp);
    bmp
}

#[test]
fn reading_in_place_gives_what_bgpkit_gives_on_every_capture() {
    let (mut in_place, mut messages) = (0, 0);
    let mut streams: Vec<(String, Vec<u8>)> = captures()
        .iter()
        .map(|f| (f.display().to_string(), std::fs::read(f).unwrap()))
        .collect();
    streams.push(("PCH 2015 updates as BMP".into(), pch_as_bmp()));
    for (name, bytes) in &streams {
        for view in [View::PrePolicy, View::PostPolicy, View::LocRib] {
            let (fast, slow, n) = both_ways(bytes, view);
            assert_eq!(fast.1, slow.1, "{name} {view:?}: counts");
            assert_eq!(fast.0.len(), slow.0.len(), "{name} {view:?}: events");
            for (i, (a, b)) in fast.0.iter().zip(&slow.0).enumerate() {
                assert_eq!(a, b, "{name} {view:?}: event {i}");
            }
            in_place += n;
        }
        let mut at = 0;
        while let Ok(Some(n)) = frame(&bytes[at..], DEFAULT_MAX_MESSAGE) {
            at += n;
            messages += 3;
        }
    }
    // Most messages are Route Monitoring of the common shapes; the rest (Peer Up,
    // statistics, VPN routes, AS4_PATH...) go through bgpkit.
    eprintln!("{in_place} of {messages} messages read in place");
    assert!(
        in_place * 10 > messages * 8,
        "{in_place} of {messages} messages read in place"
    );
}

/// A message with its common header's length set to its size, as `frame` cuts them.
fn framed(mut msg: Vec<u8>) -> Vec<u8> {
    if msg.len() >= 6 {
        let n = (msg.len() as u32).to_be_bytes();
        msg[1..5].copy_from_slice(&n);
    }
    msg
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Real Route Monitoring messages with bytes flipped, inserted or cut after the
    /// common header: read in place or not, the events, counts and errors are bgpkit's.
    #[test]
    fn damaged_updates_read_in_place_give_what_bgpkit_gives(
        pick in any::<prop::sample::Index>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        insert in proptest::option::of((any::<prop::sample::Index>(), proptest::collection::vec(any::<u8>(), 1..8))),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        static MSGS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
        let msgs = MSGS.get_or_init(|| {
            let bytes = pch_as_bmp();
            let mut out = Vec::new();
            let mut at = 0;
            while let Ok(Some(n)) = frame(&bytes[at..], DEFAULT_MAX_MESSAGE) {
                out.push(bytes[at..at + n].to_vec());
                at += n;
            }
            // And the captures' messages, other vendors' shapes.
            for f in captures() {
                let bytes = std::fs::read(f).unwrap();
                let mut at = 0;
                while let Ok(Some(n)) = frame(&bytes[at..], DEFAULT_MAX_MESSAGE) {
                    out.push(bytes[at..at + n].to_vec());
                    at += n;
                }
            }
            out
        });
        let mut msg = msgs[pick.index(msgs.len())].clone();
        let body = msg.len() - 6;
        for (at, b) in flips {
            let i = 6 + at.index(body);
            msg[i] ^= b;
        }
        if let Some((at, bytes)) = insert {
            let i = 6 + at.index(msg.len() - 5);
            msg.splice(i..i, bytes);
        }
        if let Some(at) = cut {
            msg.truncate(6 + at.index(msg.len() - 5));
        }
        let msg = framed(msg);
        let (fast, slow, _) = both_ways(&msg, View::PrePolicy);
        prop_assert_eq!(fast, slow);
    }
}

/// A generated path attribute.
#[derive(Clone, Debug)]
enum Attr {
    AsPath(Vec<(u8, Vec<u32>)>),
    As4Path(Vec<(u8, Vec<u32>)>),
    MpReach(u16, u8, Vec<u8>, Vec<(u8, u128)>),
    MpUnreach(u16, u8, Vec<(u8, u128)>),
    Other(u8, Vec<u8>),
}

/// Prefixes as (length, address); mostly valid for IPv4 (`v6` false) or IPv6, with
/// some /0 (bgpkit's ADD-PATH heuristic) and some too long for the family.
fn prefix(v6: bool) -> impl Strategy<Value = (u8, u128)> + Clone {
    let max = if v6 { 128u8 } else { 32 };
    (
        prop_oneof![2 => Just(0u8), 1 => max + 1..=255, 30 => 1u8..=max],
        any::<u128>(),
    )
}

fn segments() -> impl Strategy<Value = Vec<(u8, Vec<u32>)>> {
    proptest::collection::vec(
        (0u8..=5, proptest::collection::vec(any::<u32>(), 0..5)),
        0..4,
    )
}

fn attr() -> impl Strategy<Value = Attr> {
    let afi = prop_oneof![4 => 1u16..=2, 1 => 0u16..=3, 1 => Just(16388u16)];
    let safi = prop_oneof![4 => Just(1u8), 1 => Just(2u8), 1 => Just(4u8), 1 => Just(128u8)];
    let next_hop = prop_oneof![prop::sample::select(vec![4usize, 16, 32]), 0usize..=48]
        .prop_flat_map(|n| proptest::collection::vec(any::<u8>(), n));
    // The prefixes of the AFI's family (others as IPv4).
    let prefixes = |afi: u16| proptest::collection::vec(prefix(afi == 2), 0..4);
    prop_oneof![
        3 => segments().prop_map(Attr::AsPath),
        1 => segments().prop_map(Attr::As4Path),
        2 => (afi.clone(), safi.clone(), next_hop)
            .prop_flat_map(move |(a, s, nh)| (Just(a), Just(s), Just(nh), prefixes(a)))
            .prop_map(|(a, s, nh, p)| Attr::MpReach(a, s, nh, p)),
        2 => (afi, safi)
            .prop_flat_map(move |(a, s)| (Just(a), Just(s), prefixes(a)))
            .prop_map(|(a, s, p)| Attr::MpUnreach(a, s, p)),
        2 => (
            prop::sample::select(vec![1u8, 3, 4, 5, 8, 16, 32, 99, 255]),
            proptest::collection::vec(any::<u8>(), 0..10)
        )
            .prop_map(|(t, v)| Attr::Other(t, v)),
    ]
}

/// Wire bytes of prefixes of a family (`v6`), each cut to its length's octets.
fn nlri_bytes(prefixes: &[(u8, u128)], v6: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for &(len, addr) in prefixes {
        let octets = if v6 {
            addr.to_be_bytes().to_vec()
        } else {
            (addr as u32).to_be_bytes().to_vec()
        };
        out.push(len);
        let n = usize::from(len).div_ceil(8).min(octets.len());
        out.extend_from_slice(&octets[..n]);
    }
    out
}

fn path_bytes(segs: &[(u8, Vec<u32>)], asn4: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for (kind, asns) in segs {
        out.extend([*kind, asns.len() as u8]);
        for a in asns {
            if asn4 {
                out.extend(a.to_be_bytes());
            } else {
                out.extend((*a as u16).to_be_bytes());
            }
        }
    }
    out
}

/// A BMPv3 Route Monitoring message (pre-policy, an IPv4 peer) holding one UPDATE.
fn route_monitoring(asn4: bool, withdrawn: &[u8], attrs: &[(Attr, bool)], nlri: &[u8]) -> Vec<u8> {
    let mut a = Vec::new();
    for (attr, extended) in attrs {
        let (flags, kind, value) = match attr {
            Attr::AsPath(s) => (0x40, 2, path_bytes(s, asn4)),
            Attr::As4Path(s) => (0xc0, 17, path_bytes(s, true)),
            Attr::MpReach(afi, safi, nh, p) => {
                let mut v = afi.to_be_bytes().to_vec();
                v.extend([*safi, nh.len() as u8]);
                v.extend(nh);
                v.push(0);
                v.extend(nlri_bytes(p, *afi == 2));
                (0x80, 14, v)
            }
            Attr::MpUnreach(afi, safi, p) => {
                let mut v = afi.to_be_bytes().to_vec();
                v.push(*safi);
                v.extend(nlri_bytes(p, *afi == 2));
                (0x80, 15, v)
            }
            Attr::Other(t, v) => (0xc0, *t, v.clone()),
        };
        if *extended || value.len() > 255 {
            a.extend([flags | 0x10, kind]);
            a.extend((value.len() as u16).to_be_bytes());
        } else {
            a.extend([flags, kind, value.len() as u8]);
        }
        a.extend(value);
    }
    let mut body = (withdrawn.len() as u16).to_be_bytes().to_vec();
    body.extend(withdrawn);
    body.extend((a.len() as u16).to_be_bytes());
    body.extend(a);
    body.extend(nlri);
    let mut m = vec![3, 0, 0, 0, 0, 0];
    m.extend([0, if asn4 { 0 } else { 0x20 }]);
    m.extend([0u8; 8]);
    m.extend([0u8; 12]);
    m.extend([192, 0, 2, 1]);
    m.extend(64500u32.to_be_bytes());
    m.extend([192, 0, 2, 1]);
    m.extend(1_500_000_000u32.to_be_bytes());
    m.extend(250_000u32.to_be_bytes());
    m.extend([0xff; 16]);
    m.extend(((19 + body.len()) as u16).to_be_bytes());
    m.push(2);
    m.extend(body);
    framed(m)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// Generated UPDATEs of every shape (both AS number sizes; /0 and overlong prefixes;
    /// several AS_PATHs, an AS4_PATH; MP attributes of other families, SAFIs and next-hop
    /// lengths; unknown attributes, extended lengths): read in place or not, the events
    /// and counts are bgpkit's.
    #[test]
    fn generated_updates_read_in_place_give_what_bgpkit_gives(
        asn4 in any::<bool>(),
        withdrawn in proptest::collection::vec(prefix(false), 0..3),
        attrs in proptest::collection::vec((attr(), any::<bool>()), 0..5),
        nlri in proptest::collection::vec(prefix(false), 0..3),
    ) {
        let msg = route_monitoring(asn4, &nlri_bytes(&withdrawn, false), &attrs, &nlri_bytes(&nlri, false));
        let (fast, slow, _) = both_ways(&msg, View::PrePolicy);
        prop_assert_eq!(fast, slow);
    }
}

#[test]
fn generated_updates_of_the_common_shapes_are_read_in_place() {
    // The generator's common case goes the fast way (so the property above tests it).
    let attrs = [
        (Attr::Other(1, vec![0]), false),
        (Attr::AsPath(vec![(2, vec![64500, 3356, 13335])]), false),
        (
            Attr::MpReach(
                2,
                1,
                vec![0x20; 16],
                vec![(32, 0x2001_0db8 << 96), (48, 1 << 100)],
            ),
            true,
        ),
        (Attr::MpUnreach(2, 1, vec![(64, 7 << 80)]), false),
    ];
    for asn4 in [true, false] {
        let msg = route_monitoring(
            asn4,
            &nlri_bytes(&[(8, 10 << 24)], false),
            &attrs,
            &nlri_bytes(&[(24, 0xc633_6400)], false),
        );
        let (fast, slow, n) = both_ways(&msg, View::PrePolicy);
        assert_eq!(n, 1);
        assert_eq!(fast, slow);
        // A peer, 2 withdrawals, 3 announcements.
        assert_eq!(fast.0.len(), 6, "{:#?}", fast.0);
    }
}
