//! `cargo bench --bench rejudge`: the time to swap in a new RPKI data set and re-judge
//! everything held, as the daemon does when its RPKI source changes.
//!
//! The judge first takes the bundled Route Views RIB slice (270,005 routes from 35 peers,
//! 2014) under the default policy with the rpki-client snapshot of 2025-07-20 09:31; then
//! the next snapshot (10:01, 30 minutes later) is indexed and swapped in: every live
//! claim's origin is validated again and every route's ASPA verification redone, with the
//! paths from the Adj-RIB-In. Printed: the index build, the swap with re-judging, the
//! claims whose state changed and the decisions made; median of 5. Nothing here asserts
//! a speed.

use routewitness::cli::fixtures_dir;
use routewitness::ingest::{mrt, PeerRegistry};
use routewitness::judge::Judge;
use routewitness::judge::Policy;
use routewitness::pipeline::{Pipeline, RovStage};
use routewitness::rpki::vrps::{load, LoadOptions};
use routewitness::rpki::{AspaSet, VrpIndex};
use std::sync::Arc;
use std::time::Instant;

fn main() {
    let fx = fixtures_dir();
    let old = load(
        &fx.join("vrp/rpki-client_20250720T093135Z.json.bz2"),
        LoadOptions::default(),
    )
    .expect("bundled VRPs");
    let new = load(
        &fx.join("vrp/rpki-client_20250720T100145Z.json.bz2"),
        LoadOptions::default(),
    )
    .expect("the next snapshot");
    // A harsher change: the next snapshot without one trust anchor's VRPs (as if it
    // broke), so that many claims change state.
    let mut tas: Vec<String> = new.vrps.iter().filter_map(|v| v.ta.clone()).collect();
    tas.sort();
    tas.dedup();
    let mut lost = new.clone();
    lost.vrps.retain(|v| v.ta.as_deref() != Some("arin"));
    let mut events = Vec::new();
    let mut registry = PeerRegistry::default();
    mrt::read_file(
        &fx.join("mrt/routeviews2_rib.20140523.0600_slice.mrt.gz"),
        &mut registry,
        None,
        |ev| events.push(ev),
    )
    .expect("RIB slice");
    println!(
        "re-judging benchmark: {} route events judged, then {} VRPs -> {} VRPs (2-core machine)",
        events.len(),
        old.vrps.len(),
        new.vrps.len()
    );
    println!("  trust anchors: {}", tas.join(", "));
    for (label, set) in [
        ("the next snapshot", &new),
        ("the next snapshot without ARIN", &lost),
    ] {
        let (mut builds, mut swaps) = (Vec::new(), Vec::new());
        let (mut changed, mut decisions, mut routes) = (0, 0, 0);
        for _ in 0..5 {
            let index = Arc::new(VrpIndex::new(&old));
            let aspa = Arc::new(AspaSet::new(&old.aspas));
            let mut rov = RovStage::new(index.clone(), true);
            let judge = Judge::new(
                Policy::load("default").unwrap(),
                index.clone(),
                &*aspa,
                true,
                Some(1),
            );
            // As the daemon runs it; nobody reads the decisions here (counted only).
            let mut tally = Pipeline::new(vec![judge], true, false);
            let mut dropped: Vec<routewitness::judge::Decision> = Vec::new();
            let mut verdicts = Vec::new();
            rov.annotate_all(&events, &mut verdicts);
            tally.handle_all(&events, &verdicts, &mut dropped).unwrap();
            routes = tally.routes_stored();
            let before = tally.judges()[0].stats().decisions;
            let t = Instant::now();
            let new_index = Arc::new(VrpIndex::new(set));
            let new_aspa = Arc::new(AspaSet::new(&set.aspas));
            builds.push(t.elapsed().as_secs_f64());
            let t = Instant::now();
            rov.set_index(new_index.clone());
            let now = tally.judges()[0].now();
            changed = tally.set_rpki(new_index, new_aspa, Some(2), now);
            tally.drain(&mut dropped).unwrap();
            swaps.push(t.elapsed().as_secs_f64());
            decisions = tally.judges()[0].stats().decisions - before;
        }
        let median = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        println!(
            "  {label} ({} VRPs): index {:.3} s; swap and re-judge {routes} routes: {:.3} s \
             ({changed} claims changed state, {decisions} decisions)",
            set.vrps.len(),
            median(builds),
            median(swaps)
        );
    }
}
