//! `cargo bench --bench act`: how fast a quarantine reaches a real router (issue 6).
//!
//! The daemon judges GoBGP's Loc-RIB over BMP against the bundled 723k VRPs; GoBGP also
//! announces its routes to BIRD 2, which takes routewitness's quarantine feed over RTR
//! on the configuration `act config bird` prints (filter: `if rw_quarantined() then
//! reject;`). 120 RPKI-invalid routes (a VRP's prefix, announced with origin AS666) are
//! announced one at a time; each is quarantined by the daemon and filtered by BIRD.
//! Printed, p50 / p99 / max over the 120:
//! - decision to BIRD showing it filtered: the daemon's own verification (the change
//!   entering the quarantine feed, in the decision's batch, to BIRD's control socket
//!   showing the route filtered; polled every 2 ms), from `GET /v1/actions`;
//! - end to end: `gobgp global rib add` to BIRD showing it filtered (polled here every
//!   1 ms over BIRD's control socket): BGP to BIRD, BMP to the daemon, judging, RTR;
//! - the reference: StayRTR 0.5.1 as the quarantine cache instead (the same BIRD
//!   configuration but its port): one entry added to its JSON and SIGHUP, to BIRD showing
//!   the route filtered. StayRTR re-reads its file on SIGHUP and notifies at once.
//!
//! Needs gobgpd, bird and stayrtr. Nothing here asserts a speed.

#[path = "../tests/lab/mod.rs"]
mod lab;

use lab::{http_get, repo_file, wait_for, Bird, Daemon};
use routewitness::act::bird::{Bird as BirdCtl, Seen};
use routewitness::act::router_config::{bird as bird_text, Endpoints};
use routewitness::act::verify::quantile;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

const N: usize = 120;

fn bird_conf(quarantine: SocketAddr, bird_port: u16, gobgp_port: u16) -> String {
    let rw = bird_text(&Endpoints {
        rpki: None,
        quarantine: Some(quarantine),
    });
    format!(
        "router id 127.65.0.1;\n{rw}\
         filter rw_in {{ if rw_quarantined() then reject; accept; }}\n\
         protocol bgp gobgp {{\n  local 127.65.0.1 port {bird_port} as 65001;\n  \
         neighbor 127.65.0.2 port {gobgp_port} as 65002;\n  strict bind on; multihop; \
         connect retry time 1;\n  ipv4 {{ import table on; import keep filtered on; \
         import filter rw_in; export none; }};\n}}\n"
    )
}

/// Polls BIRD every millisecond until `prefix` AS666 is `want` (at most 5 s).
fn until(
    rt: &tokio::runtime::Runtime,
    ctl: &mut BirdCtl,
    prefix: &ipnet::IpNet,
    want: Seen,
) -> bool {
    rt.block_on(async {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(5) {
            if ctl.seen(prefix, 666).await.ok() == Some(want) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        false
    })
}

fn summary(name: &str, mut v: Vec<f64>) {
    let n = v.len();
    let p50 = quantile(&mut v, 0.5).unwrap_or(f64::NAN);
    let p99 = quantile(&mut v, 0.99).unwrap_or(f64::NAN);
    let max = quantile(&mut v, 1.0).unwrap_or(f64::NAN);
    println!("  {name:<52} p50 {p50:6.1} ms   p99 {p99:6.1} ms   max {max:6.1} ms   (n = {n})");
}

fn main() {
    if lab::GoBgp::require().is_none() || !Bird::require() || !lab::StayRtr::require() {
        eprintln!("act bench: needs gobgpd, bird and stayrtr");
        return;
    }
    // The routes: VRP prefixes (IPv4, /16 to /24, max length = length) announced by
    // AS666: RPKI invalid, quarantined by the lab policy.
    let set = routewitness::rpki::vrps::load(
        &repo_file("fixtures/vrp/rpki-client_20250720T093135Z.json.bz2"),
        Default::default(),
    )
    .expect("bundled VRPs");
    let mut prefixes: Vec<ipnet::IpNet> = set
        .vrps
        .iter()
        .filter(|v| {
            matches!(v.prefix, ipnet::IpNet::V4(_))
                && (16..=24).contains(&v.prefix.prefix_len())
                && v.max_length == v.prefix.prefix_len()
                && v.asn.0 != 0
        })
        .map(|v| v.prefix)
        .collect();
    prefixes.sort();
    prefixes.dedup();
    let step = prefixes.len() / (2 * N);
    let prefixes: Vec<ipnet::IpNet> = prefixes.iter().step_by(step).take(2 * N).copied().collect();
    let (ours, reference) = prefixes.split_at(N);

    let bird_dir = lab::scratch("bench-bird");
    let ctl_path = bird_dir.join("bird.ctl");
    let vrps = repo_file("fixtures/vrp/rpki-client_20250720T093135Z.json.bz2");
    let policy = repo_file("tests/lab/policy.toml");
    let d = Daemon::start(&[
        "--no-state",
        "--no-replay",
        "--vrps",
        vrps.to_str().unwrap(),
        "--ignore-expires",
        "--view",
        "loc-rib",
        "--policy",
        policy.to_str().unwrap(),
        "--quarantine-listen",
        "127.0.0.1:0",
        "--quarantine-router",
        "127.0.0.1",
        "--bird-socket",
        ctl_path.to_str().unwrap(),
    ]);
    let quarantine = d.listening("quarantine feed over RTR on ");
    let bird_port = lab::free_port_on("127.65.0.1");
    let gobgp_port = lab::free_port_on("127.65.0.2");
    let bird = Bird::start_in(
        bird_dir.clone(),
        &bird_conf(quarantine, bird_port, gobgp_port),
    );
    let g = lab::gobgp_peer(gobgp_port, ("127.65.0.1", 65001, bird_port), Some(d.bmp));
    wait_for(Duration::from_secs(30), || {
        let p = bird.birdc("show protocols");
        (p.contains("rw_quarantine") && p.matches("Established").count() >= 2).then_some(())
    })
    .expect("BIRD's sessions up");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut ctl = rt
        .block_on(BirdCtl::connect(&ctl_path, Duration::from_secs(2)))
        .expect("BIRD's control socket");

    println!("quarantine to BIRD 2.0.12 over RTR, {N} routes one at a time (2-core machine)");
    let mut end_to_end = Vec::new();
    for p in ours {
        let t = Instant::now();
        g.add(&p.to_string(), &[65010, 666]);
        if until(&rt, &mut ctl, p, Seen::Filtered) {
            end_to_end.push(t.elapsed().as_secs_f64() * 1e3);
        } else {
            eprintln!("{p}: not filtered within 5 s");
        }
    }
    // The daemon's own measure, from its audit log.
    let wanted: std::collections::HashSet<String> = ours.iter().map(|p| p.to_string()).collect();
    let mut decided = Vec::new();
    wait_for(Duration::from_secs(20), || {
        let v: serde_json::Value =
            serde_json::from_str(&http_get(d.api, "/v1/actions?limit=10000").ok()?).ok()?;
        decided = v
            .as_array()?
            .iter()
            .filter(|a| {
                a["target"] == "bird:bird1"
                    && a["action"] == "quarantine"
                    && a["result"] == "verified"
                    && a["prefix"].as_str().is_some_and(|p| wanted.contains(p))
            })
            .filter_map(|a| a["latency_ms"].as_f64())
            .collect();
        (decided.len() >= N).then_some(())
    });
    summary("routewitness: decision -> BIRD shows it filtered", decided);
    summary(
        "routewitness: GoBGP announces -> BIRD filters it",
        end_to_end,
    );
    drop(g);
    drop(bird);
    drop(d);

    // The reference: StayRTR as the quarantine cache, the same BIRD text on its port.
    let stay = lab::StayRtr::start(&quarantine_json(&[]), &[]);
    let bird_port = lab::free_port_on("127.65.0.1");
    let gobgp_port = lab::free_port_on("127.65.0.2");
    let bird_dir = lab::scratch("bench-bird-ref");
    let ctl_path = bird_dir.join("bird.ctl");
    let bird = Bird::start_in(bird_dir, &bird_conf(stay.addr, bird_port, gobgp_port));
    let g = lab::gobgp_peer(gobgp_port, ("127.65.0.1", 65001, bird_port), None);
    wait_for(Duration::from_secs(30), || {
        let p = bird.birdc("show protocols");
        (p.matches("Established").count() >= 2).then_some(())
    })
    .expect("BIRD's sessions up (reference)");
    let mut ctl = rt
        .block_on(BirdCtl::connect(&ctl_path, Duration::from_secs(2)))
        .expect("BIRD's control socket");
    for p in reference {
        g.add(&p.to_string(), &[65010, 666]);
    }
    for p in reference {
        assert!(until(&rt, &mut ctl, p, Seen::Accepted), "{p} reached BIRD");
    }
    let mut held = Vec::new();
    let mut sighup = Vec::new();
    for p in reference {
        held.push(*p);
        let t = Instant::now();
        stay.serve(&quarantine_json(&held));
        if until(&rt, &mut ctl, p, Seen::Filtered) {
            sighup.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    summary("StayRTR: file written + SIGHUP -> BIRD filters it", sighup);
    drop(g);
    drop(bird);
    drop(stay);
    let _ = std::fs::remove_dir_all(Path::new(&lab::scratch("bench-done")));
}

/// A StayRTR JSON file holding `held` as AS666 VRPs of their own length.
fn quarantine_json(held: &[ipnet::IpNet]) -> String {
    let roas: Vec<String> = held
        .iter()
        .map(|p| {
            format!(
                "{{\"prefix\":\"{p}\",\"maxLength\":{},\"asn\":\"AS666\"}}",
                p.prefix_len()
            )
        })
        .collect();
    format!(
        "{{\"metadata\":{{\"buildtime\":\"{}\"}},\"roas\":[{}]}}",
        chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ"),
        roas.join(",")
    )
}
