//! `routewitness run` as a process: BMP in over TCP, the HTTP API out, bad input,
//! shutdown; and a real GoBGP streaming BMP to it (tests/lab.rs has the harness).

mod lab;
mod rpki_repo;

use lab::{http_get, http_post, repo_file, wait_for, Daemon};
use serde_json::Value;
use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

fn lab_daemon(view: &str) -> Daemon {
    Daemon::start(&[
        "--no-replay",
        "--vrps",
        repo_file("fixtures/bmp/lab/vrps.json").to_str().unwrap(),
        "--policy",
        repo_file("tests/lab/policy.toml").to_str().unwrap(),
        "--view",
        view,
    ])
}

/// The first decision for `prefix` whose `field` is `value` (e.g. cause "operator",
/// outcome "quarantine"), waiting up to `secs` for it.
fn decision_for(d: &Daemon, secs: u64, prefix: &str, field: &str, value: &str) -> Option<Value> {
    wait_for(Duration::from_secs(secs), || {
        let v: Value = serde_json::from_str(&http_get(d.api, "/v1/decisions").ok()?).ok()?;
        v.as_array()?
            .iter()
            .find(|x| x["prefix"] == prefix && x[field] == value)
            .cloned()
    })
}

/// The first decision an operator caused for `prefix`, waiting up to 5 s for it.
fn decision_by_operator(d: &Daemon, prefix: &str) -> Option<Value> {
    decision_for(d, 5, prefix, "cause", "operator")
}

/// A new BMP session that sends GoBGP 3.10's real lab stream (and stays open).
fn gobgp_stream(d: &Daemon) -> TcpStream {
    let mut s = TcpStream::connect(d.bmp).unwrap();
    s.write_all(&std::fs::read(repo_file("fixtures/bmp/lab/gobgp-3.10_minimal-lab.bmp")).unwrap())
        .unwrap();
    s
}

/// The daemon's `/v1/status`, if it answers.
fn status_of(d: &Daemon) -> Option<Value> {
    serde_json::from_str(&http_get(d.api, "/v1/status").ok()?).ok()
}

fn claim_rpki(d: &Daemon, prefix: &str) -> Option<String> {
    let v: Value =
        serde_json::from_str(&http_get(d.api, &format!("/v1/routes?prefix={prefix}")).ok()?)
            .ok()?;
    v["claims"].as_array()?.first()?["rpki"]
        .as_str()
        .map(str::to_string)
}

#[test]
fn bmp_stream_is_judged_bad_sessions_are_dropped_and_shutdown_is_clean() {
    let mut d = lab_daemon("loc-rib");
    // GoBGP 3.10's real stream from the lab, kept open so its routes stay.
    let router = gobgp_stream(&d);
    let status = wait_for(Duration::from_secs(10), || {
        let s = status_of(&d)?;
        (s["announcements"] == 11).then_some(s)
    })
    .expect("the 11 Loc-RIB routes of the stream");
    assert_eq!(status["routers"][0]["sys_name"], "GoBGP");
    assert_eq!(status["feeds"][0]["sessions_open"], 1);
    assert_eq!(status["routers"][0]["connected"], true);
    assert_eq!(status["view"], "loc-rib");

    // The lab's expected states (large community 65002:0:N in the capture).
    assert_eq!(claim_rpki(&d, "198.51.100.0/24").as_deref(), Some("valid"));
    // Filtered by origin: the claim of AS65002, none of AS65099.
    let by = |o: &str| -> Value {
        serde_json::from_str(
            &http_get(
                d.api,
                &format!("/v1/routes?prefix=198.51.100.0/24&origin={o}"),
            )
            .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(by("AS65002")["claims"].as_array().unwrap().len(), 1);
    assert_eq!(by("65099")["claims"].as_array().unwrap().len(), 0);
    assert!(http_get(d.api, "/v1/routes?prefix=198.51.100.0/24&origin=x").is_err());
    assert_eq!(
        claim_rpki(&d, "198.18.0.0/24").as_deref(),
        Some("not-found")
    );
    assert_eq!(claim_rpki(&d, "203.0.113.0/24").as_deref(), Some("invalid"));

    // Each RPKI-invalid route is quarantined, with its reason and VRPs.
    let decisions: Value =
        serde_json::from_str(&http_get(d.api, "/v1/decisions").unwrap()).unwrap();
    let held: Vec<&Value> = decisions
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["outcome"] == "quarantine")
        .collect();
    let prefixes: Vec<&str> = held.iter().map(|x| x["prefix"].as_str().unwrap()).collect();
    for p in ["203.0.113.0/24", "198.51.100.128/25", "2001:db8:200::/48"] {
        assert!(prefixes.contains(&p), "{p} not quarantined: {prefixes:?}");
    }
    let one = held
        .iter()
        .find(|x| x["prefix"] == "203.0.113.0/24")
        .unwrap();
    assert_eq!(one["reasons"][0]["rule"], "rpki.invalid");
    assert_eq!(one["reasons"][0]["vrps"][0]["asn"], 65099);
    let since = held
        .iter()
        .map(|x| x["seq"].as_u64().unwrap())
        .max()
        .unwrap();
    let later: Value =
        serde_json::from_str(&http_get(d.api, &format!("/v1/decisions?since={since}")).unwrap())
            .unwrap();
    assert!(later
        .as_array()
        .unwrap()
        .iter()
        .all(|x| x["seq"].as_u64().unwrap() > since));

    // Bad input: a wrong version drops that session; a message cut at close is counted.
    let mut bad = TcpStream::connect(d.bmp).unwrap();
    bad.write_all(&[9, 0, 0, 0, 6, 4]).unwrap();
    let mut cut = TcpStream::connect(d.bmp).unwrap();
    cut.write_all(&[3, 0, 0, 0, 60, 4, 1, 2, 3]).unwrap();
    drop(cut);
    let metrics = wait_for(Duration::from_secs(10), || {
        let m = http_get(d.api, "/metrics").ok()?;
        (m.contains(r#"routewitness_bmp_errors_total{kind="bad_version"} 1"#)
            && m.contains(r#"routewitness_bmp_errors_total{kind="truncated_at_close"} 1"#))
        .then_some(m)
    })
    .expect("both errors counted");
    assert!(
        metrics.contains("routewitness_bmp_messages_total 20"),
        "{metrics}"
    );
    // One series per router address (not per port): the two sessions that ended count
    // out, the good one is still up.
    let metrics = wait_for(Duration::from_secs(10), || {
        let m = http_get(d.api, "/metrics").ok()?;
        m.contains(r#"routewitness_bmp_session_up{router="127.0.0.1"} 1"#)
            .then_some(m)
    })
    .expect("one session up from 127.0.0.1");
    assert_eq!(
        metrics.matches("routewitness_bmp_session_up{").count(),
        1,
        "{metrics}"
    );
    assert!(
        metrics.contains("# HELP routewitness_bmp_session_up"),
        "{metrics}"
    );
    // The good session is unaffected.
    let s: Value = serde_json::from_str(&http_get(d.api, "/v1/status").unwrap()).unwrap();
    assert_eq!(s["routers"][0]["connected"], true);
    assert_eq!(s["routes_stored"], 11);
    // Its trust table names the router's Loc-RIB peer.
    let peers: Value = serde_json::from_str(&http_get(d.api, "/v1/peers").unwrap()).unwrap();
    assert_eq!(peers[0]["peer"]["asn"], 65002);

    // The router goes away without Termination: its routes go.
    drop(router);
    wait_for(Duration::from_secs(10), || {
        let s = status_of(&d)?;
        (s["routes_stored"] == 0 && s["routers"][0]["connected"] == false).then_some(())
    })
    .expect("routes dropped with the session");
    drop(bad);

    // The router reconnects: its peer is the same peer (same index, same trust).
    let again = gobgp_stream(&d);
    let s = wait_for(Duration::from_secs(10), || {
        let s = status_of(&d)?;
        (s["routes_stored"] == 11).then_some(s)
    })
    .expect("routes back after the reconnect");
    assert_eq!(s["peers"], 1, "{s}");
    // Two sessions of the router (and the two bad ones) are listed; one peer.
    let gobgp = s["routers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["sys_name"] == "GoBGP")
        .count();
    assert_eq!(gobgp, 2, "{s}");
    let peers: Value = serde_json::from_str(&http_get(d.api, "/v1/peers").unwrap()).unwrap();
    assert_eq!(peers.as_array().unwrap().len(), 1, "{peers}");
    assert_eq!(peers[0]["peer"]["feed"], "127.0.0.1");
    drop(again);

    // SIGTERM: stops within the deadline, exit 0, says so.
    let (code, took, log) = d.terminate();
    assert_eq!(code, Some(0), "{log}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(log.contains("stopped"), "{log}");
}

#[test]
fn bad_usage_exits_64_and_a_port_in_use_fails() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_routewitness"))
        .args(["run", "--policy", "no-such-policy", "--no-replay"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(64),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_routewitness"))
        .args(["run", "--no-replay", "--vrps"])
        .arg(repo_file("fixtures/bmp/lab/vrps.json"))
        .args(["--bmp", &format!("127.0.0.1:{port}")])
        .args(["--api", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot listen for BMP"));
}

/// A real GoBGP 3.10 (Debian's gobgpd) streams its Loc-RIB over BMP; routes added and
/// deleted through its CLI are judged live.
#[test]
fn gobgp_streams_bmp_and_its_routes_are_judged_live() {
    let Some(gobgp) = lab::GoBgp::require() else {
        return;
    };
    let d = lab_daemon("loc-rib");
    let g = gobgp.start(d.bmp);
    g.add("198.51.100.0/24", &[]);
    g.add("203.0.113.0/24", &[]);
    g.add("198.18.0.0/24", &[]);
    let found = wait_for(Duration::from_secs(30), || {
        let states = (
            claim_rpki(&d, "198.51.100.0/24")?,
            claim_rpki(&d, "203.0.113.0/24")?,
            claim_rpki(&d, "198.18.0.0/24")?,
        );
        Some(states)
    });
    assert_eq!(
        found,
        Some(("valid".into(), "invalid".into(), "not-found".into())),
        "{}",
        d.log()
    );
    let held = decision_for(&d, 10, "203.0.113.0/24", "outcome", "quarantine")
        .expect("the invalid route quarantined");
    assert_eq!(held["reasons"][0]["rule"], "rpki.invalid");
    // Deleted at the router: the hold ends with the route.
    g.del("203.0.113.0/24");
    decision_for(&d, 15, "203.0.113.0/24", "outcome", "withdrawn")
        .expect("the withdrawal recorded");
    // The status is a snapshot refreshed every 200 ms.
    let s = wait_for(Duration::from_secs(5), || {
        let s = status_of(&d)?;
        (s["routers"][0]["sys_name"] == "GoBGP" && s["routes_stored"] == 2).then_some(s)
    });
    assert!(
        s.is_some(),
        "{}",
        http_get(d.api, "/v1/status").unwrap_or_default()
    );
    drop(g);
    // GoBGP stopped: the session closes and its peers go down.
    wait_for(Duration::from_secs(15), || {
        let s = status_of(&d)?;
        (s["routers"][0]["connected"] == false && s["routes_stored"] == 0).then_some(())
    })
    .expect("session closed");
}

#[test]
fn the_example_configuration_checks_and_a_broken_one_exits_64_with_its_line() {
    let bin = env!("CARGO_BIN_EXE_routewitness");
    let out = std::process::Command::new(bin)
        .args(["config", "--check"])
        .arg(repo_file("routewitness.example.toml"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("8 MRT files") && said.contains("127.0.0.1:11019"),
        "{said}"
    );
    let dir = std::env::temp_dir().join(format!("rw-daemon-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "policy = \"default\"\n\n[api]\nlisen = \"127.0.0.1:1\"\n",
    )
    .unwrap();
    for cmd in [&["config", "--check"][..], &["run", "--config"][..]] {
        let out = std::process::Command::new(bin)
            .args(cmd)
            .arg(&bad)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{cmd:?}: {err}");
        assert!(
            err.contains("line 4") && err.contains("lisen"),
            "{cmd:?}: {err}"
        );
    }
}

/// Writes a `routewitness.toml` in `dir` whose BMP feed (`feeds/bmp.toml`, with
/// `bmp_keys`) and API listen on kernel-chosen loopback ports, with `keys` (top-level
/// keys and tables) after its `feeds` line; returns its path.
fn write_config(dir: &Path, bmp_keys: &str, keys: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir.join("feeds")).unwrap();
    std::fs::write(
        dir.join("feeds/bmp.toml"),
        format!("type = \"bmp\"\nlisten = \"127.0.0.1:0\"\n{bmp_keys}"),
    )
    .unwrap();
    let conf = dir.join("routewitness.toml");
    std::fs::write(
        &conf,
        format!("feeds = [\"feeds/bmp.toml\"]\n{keys}\n[api]\nlisten = \"127.0.0.1:0\"\n"),
    )
    .unwrap();
    conf
}

#[test]
fn run_takes_everything_from_a_configuration_file() {
    let dir = std::env::temp_dir().join(format!("rw-daemon-run-config-{}", std::process::id()));
    let conf = write_config(
        &dir,
        "view = \"loc-rib\"\n",
        &format!(
            "policy = {:?}\n[rpki]\nvrps = {:?}",
            repo_file("tests/lab/policy.toml"),
            repo_file("fixtures/bmp/lab/vrps.json"),
        ),
    );
    let d = Daemon::start_raw(&["--config", conf.to_str().unwrap()]);
    let s: Value = serde_json::from_str(&http_get(d.api, "/v1/status").unwrap()).unwrap();
    assert_eq!(
        (s["view"].as_str(), s["policy"].as_str()),
        (Some("loc-rib"), Some("lab"))
    );
    assert_eq!(s["replayed_files"], 0);
    assert!(s["rpki"].as_str().unwrap().starts_with("6 VRPs"), "{s}");
    let _router = gobgp_stream(&d);
    assert!(wait_for(Duration::from_secs(10), || claim_rpki(&d, "203.0.113.0/24")).is_some());
}

/// A real FRR 8.4 (Debian's bgpd with its BMP module) learns routes from a real GoBGP
/// over eBGP on loopback and streams them, pre-policy, to the daemon: FRR's quirk of
/// prepending its own AS is undone, and the routes are judged.
#[test]
fn frr_streams_pre_policy_bmp_with_its_prepend_undone() {
    if lab::GoBgp::require().is_none() || !lab::require_frr() {
        return;
    }
    let d = lab_daemon("pre-policy");
    let lab = lab::FrrLab::start(d.bmp);
    lab.gobgp.add("198.51.100.0/24", &[]);
    lab.gobgp.add("203.0.113.0/24", &[]);
    let held = decision_for(&d, 60, "203.0.113.0/24", "outcome", "quarantine");
    let Some(held) = held else {
        panic!(
            "no quarantine for 203.0.113.0/24\nstatus: {}\nfrr: {}\n{}",
            http_get(d.api, "/v1/status").unwrap_or_default(),
            lab.vtysh("show bgp ipv4 unicast"),
            lab.frr.log()
        );
    };
    // Seen by FRR from GoBGP (127.65.0.2, AS65002); FRR 8.4 reports the path as
    // [65003 65002], and the daemon judges [65002].
    assert_eq!(held["peer"], "127.65.0.2");
    assert_eq!(held["peer_asn"], 65002);
    assert_eq!(held["as_path"], "65002", "{held}");
    assert_eq!(held["reasons"][0]["rule"], "rpki.invalid");
    assert_eq!(claim_rpki(&d, "198.51.100.0/24").as_deref(), Some("valid"));
    let s = wait_for(Duration::from_secs(5), || {
        let s = status_of(&d)?;
        (s["routers"][0]["prepends_removed"].as_u64()? > 0).then_some(s)
    })
    .expect("prepends counted");
    assert!(
        s["routers"][0]["sys_descr"]
            .as_str()
            .unwrap_or("")
            .contains("FRRouting"),
        "{s}"
    );
}

/// The README's first command: `routewitness run` with no options replays the bundled
/// fixtures, then serves BMP and the API on the documented loopback ports.
#[test]
fn run_with_no_options_is_the_documented_default() {
    let d = Daemon::start_raw(&[]);
    assert_eq!(d.bmp.to_string(), "127.0.0.1:11019");
    assert_eq!(d.api.to_string(), "127.0.0.1:9179");
    let s = wait_for(Duration::from_secs(60), || {
        let s = status_of(&d)?;
        (s["announcements"] == 630_625).then_some(s)
    })
    .unwrap_or_else(|| panic!("bundled replay not judged:\n{}", d.log()));
    assert_eq!(s["replayed_files"], 8);
    let feeds = s["feeds"].as_array().unwrap();
    assert_eq!(feeds.len(), 9, "{s}");
    assert_eq!(feeds[0]["type"], "bmp");
    assert_eq!(feeds[0]["listen"], "127.0.0.1:11019");
    let replayed: u64 = feeds[1..]
        .iter()
        .map(|f| f["announcements"].as_u64().unwrap())
        .sum();
    assert_eq!(replayed, 630_625);
    assert_eq!(s["policy"], "default");
    assert!(
        s["rpki"].as_str().unwrap().starts_with("723521 VRPs"),
        "{s}"
    );
    let log = d.log();
    for said in [
        "BMP listener on 127.0.0.1:11019",
        "HTTP API on http://127.0.0.1:9179",
        "VRPs have expired",
        "replayed 8 MRT files",
    ] {
        assert!(log.contains(said), "{said}: {log}");
    }
    // The YouTube hijack of 2008 is among what the replay judged.
    let v: Value =
        serde_json::from_str(&http_get(d.api, "/v1/routes?prefix=208.65.153.0/24").unwrap())
            .unwrap();
    assert!(
        v["claims"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["origin"] == 36561),
        "{v}"
    );
}

/// Operators release and hold claims through the API, with the bearer token only; each
/// is a decision with cause `operator` and, for a hold, the note as its reason.
#[test]
fn operators_hold_and_release_with_the_token_only() {
    let dir = std::env::temp_dir().join(format!("rw-daemon-token-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let token = "s3cret-token-for-the-test";
    std::fs::write(dir.join("token"), format!("{token}\n")).unwrap();
    let tf = dir.join("token");
    let d = Daemon::start(&[
        "--no-replay",
        "--vrps",
        repo_file("fixtures/bmp/lab/vrps.json").to_str().unwrap(),
        "--policy",
        repo_file("tests/lab/policy.toml").to_str().unwrap(),
        "--view",
        "loc-rib",
        "--api-token-file",
        tf.to_str().unwrap(),
    ]);
    let router = gobgp_stream(&d);
    let invalid = "203.0.113.0-24-AS65002";
    let held = wait_for(Duration::from_secs(10), || {
        let v: Value = serde_json::from_str(&http_get(d.api, "/v1/quarantine").ok()?).ok()?;
        v.as_array()?.iter().find(|h| h["id"] == invalid).cloned()
    })
    .expect("the invalid route in /v1/quarantine");
    assert_eq!(held["rules"], serde_json::json!(["rpki.invalid"]));
    assert_eq!(held["outcome"], "quarantine");

    let path = format!("/v1/quarantine/{invalid}/release");
    assert_eq!(http_post(d.api, &path, None, "").0, 401);
    assert_eq!(
        http_post(d.api, &path, Some("wrong-token-of-the-same-len"), "").0,
        401
    );
    let (code, body) = http_post(
        d.api,
        &path,
        Some(token),
        r#"{"note":"noc: known lab route"}"#,
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["routes"], 1);
    let released = decision_by_operator(&d, "203.0.113.0/24").expect("the release recorded");
    assert_eq!(released["outcome"], "propagate");
    let v: Value = serde_json::from_str(&http_get(d.api, "/v1/quarantine").unwrap()).unwrap();
    assert!(
        v.as_array().unwrap().iter().all(|h| h["id"] != invalid),
        "{v}"
    );

    let (code, body) = http_post(
        d.api,
        "/v1/quarantine/198.51.100.0-24-AS65002/hold",
        Some(token),
        r#"{"note":"noc: suspicious"}"#,
    );
    assert_eq!(code, 200, "{body}");
    let hold = decision_by_operator(&d, "198.51.100.0/24").expect("the hold recorded");
    assert_eq!(hold["outcome"], "quarantine");
    assert_eq!(hold["reasons"][0]["rule"], "operator.hold");
    assert_eq!(hold["reasons"][0]["operator"], "noc: suspicious");
    // No such claim; a malformed id.
    assert_eq!(
        http_post(
            d.api,
            "/v1/quarantine/192.0.2.0-24-AS1/hold",
            Some(token),
            ""
        )
        .0,
        404
    );
    assert_eq!(
        http_post(d.api, "/v1/quarantine/nonsense/hold", Some(token), "").0,
        400
    );
    drop(router);

    // Without a configured token, holds and releases are refused outright.
    let d2 = lab_daemon("loc-rib");
    assert_eq!(http_post(d2.api, &path, Some(token), "").0, 403);
}

/// A router that reconnects again and again does not grow the status: ended sessions
/// beyond the last 64 are only counted.
#[test]
fn ended_sessions_are_listed_up_to_a_bound() {
    let d = lab_daemon("loc-rib");
    let capture = std::fs::read(repo_file("fixtures/bmp/lab/gobgp-3.10_minimal-lab.bmp")).unwrap();
    // In rounds of 10 (under the 64 open sessions the daemon accepts at once).
    for round in 1..=7 {
        for _ in 0..10 {
            let mut s = TcpStream::connect(d.bmp).unwrap();
            s.write_all(&capture).unwrap();
        }
        wait_for(Duration::from_secs(20), || {
            let s = status_of(&d)?;
            (s["announcements"] == round * 10 * 11).then_some(())
        })
        .expect("round judged");
    }
    let s = wait_for(Duration::from_secs(20), || {
        let s = status_of(&d)?;
        (s["announcements"] == 70 * 11
            && s["routers"]
                .as_array()?
                .iter()
                .all(|r| r["connected"] == false))
        .then_some(s)
    })
    .unwrap_or_else(|| panic!("{}", http_get(d.api, "/v1/status").unwrap_or_default()));
    assert_eq!(s["routers"].as_array().unwrap().len(), 64);
    assert_eq!(s["peers"], 1);
}

/// `/v1/peers`' entry for the peer at `addr`.
fn peer_entry(d: &Daemon, addr: &str) -> Option<Value> {
    let v: Value = serde_json::from_str(&http_get(d.api, "/v1/peers").ok()?).ok()?;
    v.as_array()?
        .iter()
        .find(|p| p["peer"]["addr"] == addr)
        .cloned()
}

/// The ids in `/v1/quarantine`, with whether each is listed as restored.
fn quarantine_ids(d: &Daemon) -> Vec<(String, bool)> {
    let v: Value = serde_json::from_str(&http_get(d.api, "/v1/quarantine").unwrap()).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|h| (h["id"].as_str().unwrap().to_string(), h["restored"] == true))
        .collect()
}

/// Waits up to 10 s for the claim `id` in `/v1/quarantine`.
fn wait_until_held(d: &Daemon, id: &str) {
    wait_for(Duration::from_secs(10), || {
        quarantine_ids(d).iter().any(|(x, _)| x == id).then_some(())
    })
    .unwrap_or_else(|| panic!("{id} not held:\n{}", d.log()));
}

/// Kill -9 and restart: the decision log, the quarantine, the operator's hold, peer trust
/// and the established claims all come back; the demo replay is not judged twice; a
/// route held before is held again when its router re-sends it (not learned afresh), and
/// decisions number on. SIGTERM then leaves the quarantine as it was (stopping is not the
/// routers withdrawing).
#[test]
fn kill_9_and_restart_resume_the_same_quarantine_trust_and_claims() {
    let dir = lab::scratch("state");
    let token = "s3cret-token-for-the-state-test";
    std::fs::write(dir.join("token"), token).unwrap();
    // The RIB (2014) replayed first: by the time BMP arrives the warm-up is long over,
    // so evidence about the router counts at once.
    let policy = repo_file("tests/lab/policy.toml");
    let rib = repo_file("fixtures/mrt/routeviews2_rib.20140523.0600_slice.mrt.gz");
    let vrps = repo_file("fixtures/bmp/lab/vrps.json");
    let (rib, vrps, policy, tf) = (
        rib.to_str().unwrap(),
        vrps.to_str().unwrap(),
        policy.to_str().unwrap().to_string(),
        dir.join("token").to_str().unwrap().to_string(),
    );
    let args = [
        "--bmp",
        "127.0.0.1:0",
        "--api",
        "127.0.0.1:0",
        "--replay",
        rib,
        "--vrps",
        vrps,
        "--policy",
        &policy,
        "--view",
        "loc-rib",
        "--api-token-file",
        &tf,
    ];
    let (invalid, held_by_noc) = ("203.0.113.0-24-AS65002", "198.51.100.0-24-AS65002");
    let established = |d: &Daemon| -> Option<String> {
        let v: Value =
            serde_json::from_str(&http_get(d.api, "/v1/routes?prefix=1.8.8.0/24").ok()?).ok()?;
        v["claims"][0]["established"].as_str().map(str::to_string)
    };

    let mut d = Daemon::start_in(&dir, &args);
    wait_for(Duration::from_secs(30), || {
        d.log().contains("replayed 1 MRT files").then_some(())
    })
    .expect("the RIB replayed");
    let when = established(&d).expect("1.8.8.0/24 established by the RIB's 34 peers");
    let router = gobgp_stream(&d);
    wait_until_held(&d, invalid);
    let path = format!("/v1/quarantine/{held_by_noc}/hold");
    let (code, body) = http_post(d.api, &path, Some(token), r#"{"note":"noc"}"#);
    assert_eq!(code, 200, "{body}");
    let before: Vec<Value> =
        serde_json::from_str(&http_get(d.api, "/v1/decisions?limit=100000").unwrap()).unwrap();
    let last_seq = before.last().unwrap()["seq"].as_u64().unwrap();
    // The GoBGP router's own routes come from peer 0.0.0.0 (Loc-RIB).
    let trust_before = wait_for(Duration::from_secs(5), || {
        let p = peer_entry(&d, "0.0.0.0")?;
        (p["counts"]["rpki_invalid"].as_u64()? > 0).then_some(p)
    })
    .expect("the router's trust has evidence");
    d.kill();
    drop(router);

    let mut d = Daemon::start_in(&dir, &args);
    let log = wait_for(Duration::from_secs(30), || {
        let log = d.log();
        log.contains("not replaying the 1 MRT files").then_some(log)
    })
    .unwrap_or_else(|| d.log());
    assert!(log.contains("(run 2): restored"), "{log}");
    assert!(log.contains("not replaying the 1 MRT files"), "{log}");
    // At once, before the router is back: the log, the quarantine, the claims.
    let again: Vec<Value> =
        serde_json::from_str(&http_get(d.api, "/v1/decisions?limit=100000").unwrap()).unwrap();
    assert_eq!(again, before, "the decision log survives kill -9");
    let q = quarantine_ids(&d);
    for id in [invalid, held_by_noc] {
        assert!(q.contains(&(id.to_string(), true)), "{id} restored: {q:?}");
    }
    assert_eq!(established(&d), Some(when), "1.8.8.0/24 still established");
    // The router comes back with the same table: the same routes held, for the same
    // reasons, no longer listed as restored; the operator's hold holds.
    let router = gobgp_stream(&d);
    let held = wait_for(Duration::from_secs(10), || {
        let v: Value = serde_json::from_str(&http_get(d.api, "/v1/quarantine").ok()?).ok()?;
        let live: Vec<Value> = v
            .as_array()?
            .iter()
            .filter(|h| h["restored"] != true && (h["id"] == invalid || h["id"] == held_by_noc))
            .cloned()
            .collect();
        (live.len() == 2).then_some(live)
    })
    .expect("both routes held again");
    let rules = |id: &str| held.iter().find(|h| h["id"] == id).unwrap()["rules"].clone();
    // The RPKI reason holds again. (The 2014 RIB restored with standing can add a
    // sub-prefix conflict when the router's table is judged as news after the restart:
    // noticed, see the closing note of issue 16.)
    let invalid_rules = rules(invalid);
    assert!(
        invalid_rules
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "rpki.invalid"),
        "{invalid_rules}"
    );
    assert_eq!(rules(held_by_noc), serde_json::json!(["operator.hold"]));
    // Trust took up from its counts: the same stream's evidence once more.
    let trust_after =
        wait_for(Duration::from_secs(5), || peer_entry(&d, "0.0.0.0")).expect("the router's peer");
    let n = |v: &Value| v["counts"]["rpki_invalid"].as_u64().unwrap();
    assert_eq!(n(&trust_after), 2 * n(&trust_before), "{trust_after}");
    let now: Vec<Value> =
        serde_json::from_str(&http_get(d.api, &format!("/v1/decisions?since={last_seq}")).unwrap())
            .unwrap();
    assert!(!now.is_empty());
    assert_eq!(
        now[0]["seq"].as_u64(),
        Some(last_seq + 1),
        "numbering goes on"
    );
    let (code, _, log) = d.terminate();
    assert_eq!(code, Some(0), "{log}");
    drop(router);

    // After SIGTERM the routes are still held (listed as restored until re-sent).
    let d = Daemon::start_in(&dir, &args);
    let q = quarantine_ids(&d);
    for id in [invalid, held_by_noc] {
        assert!(
            q.contains(&(id.to_string(), true)),
            "{id} after SIGTERM: {q:?}"
        );
    }
}

/// SIGHUP reloads the policy (what it holds is re-judged at once, decisions with cause
/// `policy`) and the API token; a policy that does not load leaves the running one.
#[test]
fn sighup_reloads_the_policy_and_token_and_keeps_them_when_broken() {
    let dir = lab::scratch("reload");
    let policy = dir.join("policy.toml");
    let lab_policy = std::fs::read_to_string(repo_file("tests/lab/policy.toml")).unwrap();
    std::fs::write(&policy, &lab_policy).unwrap();
    let (old, new) = ("old-token-of-sixteen-chars", "new-token-of-sixteen-chars");
    std::fs::write(dir.join("token"), old).unwrap();
    let d = Daemon::start(&[
        "--no-replay",
        "--no-state",
        "--vrps",
        repo_file("fixtures/bmp/lab/vrps.json").to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
        "--view",
        "loc-rib",
        "--api-token-file",
        dir.join("token").to_str().unwrap(),
    ]);
    let invalid = "203.0.113.0-24-AS65002";
    let router = gobgp_stream(&d);
    wait_until_held(&d, invalid);
    let hash = status_of(&d).unwrap()["policy_hash"].clone();
    let hup = |d: &Daemon| {
        let pid = d.pid().to_string();
        assert!(std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success());
    };

    // RPKI-invalid routes now propagate; the token is replaced.
    std::fs::write(
        &policy,
        lab_policy.clone() + "\n[rpki]\ninvalid = \"propagate\"\n",
    )
    .unwrap();
    std::fs::write(dir.join("token"), new).unwrap();
    hup(&d);
    let released = decision_for(&d, 10, "203.0.113.0/24", "cause", "policy")
        .unwrap_or_else(|| panic!("no policy decision:\n{}", d.log()));
    assert_eq!(released["outcome"], "propagate");
    // The status snapshot follows within its refresh.
    let s = wait_for(Duration::from_secs(5), || {
        status_of(&d).filter(|s| s["policy_hash"] != hash)
    })
    .expect("the new policy's hash in the status");
    assert_eq!(released["policy"], s["policy_hash"]);
    assert!(quarantine_ids(&d).iter().all(|(id, _)| id != invalid));
    let path = "/v1/quarantine/198.51.100.0-24-AS65002/hold";
    assert_eq!(http_post(d.api, path, Some(old), "").0, 401);
    assert_eq!(http_post(d.api, path, Some(new), "").0, 200);

    // A broken policy: refused, the running one stays, the daemon carries on.
    std::fs::write(&policy, "[rpki]\ninvalid = \"maybe\"\n").unwrap();
    hup(&d);
    wait_for(Duration::from_secs(10), || {
        d.log()
            .contains("the running configuration stays")
            .then_some(())
    })
    .unwrap_or_else(|| panic!("no refusal logged:\n{}", d.log()));
    assert_eq!(status_of(&d).unwrap()["policy_hash"], s["policy_hash"]);
    assert_eq!(http_post(d.api, path, Some(new), "").0, 200);
    drop(router);
}

/// A daemon without state judging the Loc-RIB view under `policy`, once the 2014 RIB
/// slice has been replayed into it (it establishes who originates what).
fn rib_and_loc_rib_daemon(policy: &Path) -> Daemon {
    let d = Daemon::start(&[
        "--no-state",
        "--replay",
        repo_file("fixtures/mrt/routeviews2_rib.20140523.0600_slice.mrt.gz")
            .to_str()
            .unwrap(),
        "--vrps",
        repo_file("fixtures/bmp/lab/vrps.json").to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
        "--view",
        "loc-rib",
    ]);
    wait_for(Duration::from_secs(30), || {
        d.log().contains("replayed 1 MRT files").then_some(())
    })
    .expect("the RIB replayed");
    d
}

/// Conflicting claims from a real router: after the 2014 RIB has established who
/// originates what, GoBGP originates a MOAS for one of its prefixes and a more-specific
/// of another with a foreign origin. Both are held as conflicts (one router is one
/// witness: it cannot confirm its own claim), with the established claim as evidence;
/// withdrawing the MOAS at the router ends its hold.
#[test]
fn gobgp_conflicting_claims_are_held_against_what_is_established() {
    let Some(gobgp) = lab::GoBgp::require() else {
        return;
    };
    let d = rib_and_loc_rib_daemon(&repo_file("tests/lab/policy.toml"));
    let g = gobgp.start(d.bmp);
    g.add("1.8.8.0/24", &[65001, 666]);
    g.add("1.51.7.0/24", &[65001, 666]);
    let decision = |prefix: &str, outcome: &str| {
        decision_for(&d, 30, prefix, "outcome", outcome)
            .unwrap_or_else(|| panic!("no {outcome} for {prefix}:\n{}", d.log()))
    };
    let moas = decision("1.8.8.0/24", "quarantine");
    assert_eq!(moas["origin"], 666);
    assert_eq!(moas["reasons"][0]["rule"], "conflicts.moas", "{moas}");
    assert_eq!(moas["reasons"][0]["against"][0]["origin"], 38345, "{moas}");
    // One router is one witness of the two needed.
    assert_eq!(moas["reasons"][0]["witnesses"]["effective"], 1.0, "{moas}");
    assert_eq!(moas["reasons"][0]["witnesses"]["needed"], 2.0, "{moas}");
    let sub = decision("1.51.7.0/24", "quarantine");
    assert_eq!(sub["reasons"][0]["rule"], "conflicts.sub_prefix", "{sub}");
    assert_eq!(
        sub["reasons"][0]["against"][0]["prefix"], "1.51.0.0/16",
        "{sub}"
    );
    // Both claims on 1.8.8.0/24 are visible, and only the RIB's is established.
    let v: Value =
        serde_json::from_str(&http_get(d.api, "/v1/routes?prefix=1.8.8.0/24").unwrap()).unwrap();
    let claims = v["claims"].as_array().unwrap();
    let of = |o: u64| claims.iter().find(|c| c["origin"] == o).unwrap();
    assert!(of(38345)["established"].is_string(), "{v}");
    assert!(of(666)["established"].is_null(), "{v}");
    g.del("1.8.8.0/24");
    decision("1.8.8.0/24", "withdrawn");
}

/// StayRTR serving the lab's VRPs, and that JSON (`None` when StayRTR is missing
/// outside CI; under `CI=true` that fails the test).
fn lab_cache() -> Option<(String, lab::StayRtr)> {
    if !lab::StayRtr::require() {
        return None;
    }
    let json = std::fs::read_to_string(repo_file("fixtures/bmp/lab/vrps.json")).unwrap();
    let cache = lab::StayRtr::start(&json, &[]);
    Some((json, cache))
}

/// The daemon on the lab policy and view, its RPKI from these RTR caches (no state, no
/// replay), with `extra` options.
fn rtr_daemon(caches: &[&lab::StayRtr], extra: &[&str]) -> Daemon {
    let addrs: Vec<String> = caches.iter().map(|c| c.addr.to_string()).collect();
    let policy = repo_file("tests/lab/policy.toml");
    let mut args = vec!["--no-replay", "--no-state", "--view", "loc-rib", "--policy"];
    args.push(policy.to_str().unwrap());
    for a in &addrs {
        args.extend(["--rtr", a.as_str()]);
    }
    args.extend_from_slice(extra);
    Daemon::start(&args)
}

/// The status once its `rpki` line satisfies `ok` (within `secs`).
fn wait_rpki(d: &Daemon, secs: u64, ok: impl Fn(&str) -> bool) -> Value {
    wait_for(Duration::from_secs(secs), || {
        status_of(d).filter(|s| s["rpki"].as_str().is_some_and(&ok))
    })
    .unwrap_or_else(|| panic!("the RPKI data did not arrive:\n{}", d.log()))
}

/// RPKI from a real RTR cache (StayRTR): the daemon judges with what the cache serves,
/// and when the cache's data changes (a ROA now authorising the route's origin), the
/// held route is re-judged at once: released with cause `rpki` and the new serial.
#[test]
fn an_rtr_cache_feeds_the_judge_and_its_changes_are_judged_live() {
    let Some((json, cache)) = lab_cache() else {
        return;
    };
    let d = rtr_daemon(&[&cache], &[]);
    assert!(
        d.log().contains("waiting for the RPKI sources"),
        "{}",
        d.log()
    );
    let s = wait_rpki(&d, 20, |r| r.starts_with("6 VRPs, 2 ASPAs from RTR cache"));
    assert_eq!(s["rtr"][0]["version"], 2, "{s}");
    let first_serial = s["rpki_serial"].clone();
    let router = gobgp_stream(&d);
    let invalid = "203.0.113.0-24-AS65002";
    wait_until_held(&d, invalid);

    // The cache now has 203.0.113.0/24 for AS65002.
    cache.serve(&json.replace(
        r#""prefix": "203.0.113.0/24",    "maxLength": 24, "asn": 65099"#,
        r#""prefix": "203.0.113.0/24",    "maxLength": 24, "asn": 65002"#,
    ));
    let released = decision_for(&d, 20, "203.0.113.0/24", "cause", "rpki")
        .unwrap_or_else(|| panic!("no rpki decision:\n{}", d.log()));
    assert_eq!(released["outcome"], "propagate");
    assert_ne!(released["rpki_serial"], first_serial);
    assert_eq!(claim_rpki(&d, "203.0.113.0/24").as_deref(), Some("valid"));
    assert!(quarantine_ids(&d).iter().all(|(id, _)| id != invalid));
    drop(router);
}

/// SLURM on top of an RTR cache's data: an assertion makes the lab's RPKI-invalid route
/// valid, a filter takes the VRP of a valid one away (not found); the status says what
/// SLURM did.
#[test]
fn slurm_applies_on_top_of_the_rtr_cache() {
    let Some((_, cache)) = lab_cache() else {
        return;
    };
    let dir = lab::scratch("slurm");
    let slurm = dir.join("local.slurm.json");
    std::fs::write(
        &slurm,
        r#"{"slurmVersion": 1,
            "validationOutputFilters": {"prefixFilters": [{"prefix": "198.51.100.0/24", "comment": "not ours"}],
                                        "bgpsecFilters": []},
            "locallyAddedAssertions": {"prefixAssertions": [{"asn": 65002, "prefix": "203.0.113.0/24"}],
                                       "bgpsecAssertions": []}}"#,
    )
    .unwrap();
    let d = rtr_daemon(&[&cache], &["--slurm", slurm.to_str().unwrap()]);
    let s = wait_rpki(&d, 20, |r| r.contains("from RTR cache"));
    let rpki = s["rpki"].as_str().unwrap();
    assert!(rpki.starts_with("6 VRPs"), "{rpki}");
    assert!(rpki.contains("1 VRPs filtered, 1 added"), "{rpki}");
    let _router = gobgp_stream(&d);
    let states = wait_for(Duration::from_secs(10), || {
        Some((
            claim_rpki(&d, "203.0.113.0/24")?,
            claim_rpki(&d, "198.51.100.0/24")?,
        ))
    });
    assert_eq!(
        states,
        Some(("valid".to_string(), "not-found".to_string())),
        "{}",
        d.log()
    );
}

/// Three RTR caches, one lying (it drops the lab's ROA for 198.51.100.0/24 and forges
/// one for 198.18.0.0/24): the merged set takes what two carry, so the routes are judged
/// as the honest caches say, and the liar is reported with what it lacks and adds. Then
/// the honest caches lose most of their VRPs at once: the previous set stays in force
/// (frozen) and the status says so.
#[test]
fn three_rtr_caches_in_quorum_outvote_a_liar_and_a_sudden_loss_freezes() {
    if !lab::StayRtr::require() {
        return;
    }
    let (json, lie) = lab::lab_vrps_and_a_lie();
    let a = lab::StayRtr::start(&json, &[]);
    let b = lab::StayRtr::start(&json, &[]);
    let liar = lab::StayRtr::start(&lie, &[]);
    let (sa, sl) = (a.addr.to_string(), liar.addr.to_string());
    let d = rtr_daemon(&[&a, &b, &liar], &[]);
    let s = wait_rpki(&d, 30, |r| {
        r.contains("carried by at least 2 of 3 sources (3 with data")
    });
    assert!(s["rpki"].as_str().unwrap().starts_with("6 VRPs"), "{s}");
    let reports = s["rpki_sources"].as_array().unwrap();
    let of = |addr: &str| {
        reports
            .iter()
            .find(|r| r["source"] == format!("rtr:{addr}"))
            .unwrap()
            .clone()
    };
    assert_eq!(
        (of(&sa)["missing"].clone(), of(&sa)["extra"].clone()),
        (0.into(), 0.into())
    );
    let l = of(&sl);
    assert_eq!(
        (l["missing"].clone(), l["extra"].clone()),
        (1.into(), 1.into()),
        "{l}"
    );
    assert_eq!(l["missing_examples"][0], "198.51.100.0/24-24 AS65002");
    assert_eq!(l["extra_examples"][0], "198.18.0.0/24-24 AS65002");
    assert!(
        d.log().contains("disagrees with the merged set"),
        "{}",
        d.log()
    );
    let _router = gobgp_stream(&d);
    let states = wait_for(Duration::from_secs(10), || {
        Some((
            claim_rpki(&d, "198.51.100.0/24")?,
            claim_rpki(&d, "198.18.0.0/24")?,
        ))
    });
    assert_eq!(states, Some(("valid".to_string(), "not-found".to_string())));

    // The two honest caches keep one VRP of six: an 83% loss, held off.
    let one = r#"{ "metadata": { "buildtime": "2026-11-25T13:15:41Z", "vrps": 1 },
        "roas": [ { "prefix": "100.64.1.0/24", "maxLength": 24, "asn": 65001, "ta": "lab" } ] }"#;
    a.serve(one);
    b.serve(one);
    let frozen = wait_for(Duration::from_secs(20), || {
        status_of(&d).and_then(|s| (!s["rpki_frozen"].is_null()).then_some(s))
    })
    .unwrap_or_else(|| panic!("no freeze:\n{}", d.log()));
    assert_eq!(frozen["rpki_frozen"]["had"], 6, "{frozen}");
    assert!(
        frozen["rpki"].as_str().unwrap().starts_with("6 VRPs"),
        "{frozen}"
    );
    assert!(d.log().contains("keeping the previous set"), "{}", d.log());
    assert_eq!(claim_rpki(&d, "198.51.100.0/24").as_deref(), Some("valid"));
}

/// The freeze ends: a sudden loss is held off for `rpki.freeze` (1 s here, from the
/// configuration file), then the new set is taken.
#[test]
fn a_frozen_rpki_set_is_taken_when_the_freeze_ends() {
    let Some((_, cache)) = lab_cache() else {
        return;
    };
    let dir = lab::scratch("freeze");
    let conf = write_config(
        &dir,
        "",
        &format!(
            "[rpki]\nrtr = [\"{}\"]\nfreeze = \"1s\"\n[state]\npath = \"\"",
            cache.addr
        ),
    );
    let d = Daemon::start_in(&dir, &["--config", conf.to_str().unwrap()]);
    let rpki = |d: &Daemon| status_of(d).and_then(|s| s["rpki"].as_str().map(str::to_string));
    wait_for(Duration::from_secs(20), || {
        rpki(&d).filter(|r| r.starts_with("6 VRPs"))
    })
    .unwrap_or_else(|| panic!("no RTR data:\n{}", d.log()));
    cache.serve(
        r#"{ "metadata": { "buildtime": "2026-11-25T13:15:41Z", "vrps": 1 },
        "roas": [ { "prefix": "100.64.1.0/24", "maxLength": 24, "asn": 65001, "ta": "lab" } ] }"#,
    );
    wait_for(Duration::from_secs(20), || {
        status_of(&d).and_then(|s| (!s["rpki_frozen"].is_null()).then_some(()))
    })
    .unwrap_or_else(|| panic!("no freeze:\n{}", d.log()));
    let taken = wait_for(Duration::from_secs(30), || {
        rpki(&d).filter(|r| r.starts_with("1 VRPs"))
    })
    .unwrap_or_else(|| panic!("the set was not taken after the freeze:\n{}", d.log()));
    assert!(taken.contains("RTR cache"), "{taken}");
    assert!(status_of(&d).unwrap()["rpki_frozen"].is_null());
}

/// The daemon takes its RPKI data from a signed repository copy (made now by the `rpki`
/// crate's builders, pinned by its TAL): the GoBGP stream's routes are judged against the
/// ROAs that validate, and a ROA added to the copy re-judges the route it covers.
#[test]
fn a_signed_repository_is_an_rpki_source_read_again_when_it_changes() {
    use std::net::Ipv4Addr;
    let dir = std::env::temp_dir().join(format!("rw-daemon-repo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut repo = rpki_repo::Repo::new(
        &dir,
        &[
            (Ipv4Addr::new(198, 51, 100, 0), 24),
            (Ipv4Addr::new(203, 0, 113, 0), 24),
        ],
        (65000, 65535),
    );
    repo.roa(
        "ok.roa",
        65002,
        &[(Ipv4Addr::new(198, 51, 100, 0), 24, None)],
    );
    repo.roa(
        "other-origin.roa",
        65099,
        &[(Ipv4Addr::new(203, 0, 113, 0), 24, None)],
    );
    repo.aspa("customer.asa", 65002, &[65001, 65003]);
    let conf = write_config(
        &dir,
        "view = \"loc-rib\"\n",
        &format!(
            "policy = {:?}\n[rpki]\ndirectories = [{:?}]\ntals = [{:?}]\npoll = \"200ms\"",
            repo_file("tests/lab/policy.toml"),
            repo.dir,
            repo.tal,
        ),
    );
    let d = Daemon::start_raw(&["--config", conf.to_str().unwrap()]);
    let s = wait_for(Duration::from_secs(10), || {
        let s = status_of(&d)?;
        s["rpki"]
            .as_str()?
            .starts_with("2 VRPs, 1 ASPAs")
            .then_some(s)
    })
    .unwrap_or_else(|| panic!("the repository's payloads:\n{}", d.log()));
    assert!(
        s["rpki"].as_str().unwrap().contains("signed objects"),
        "{s}"
    );
    let _router = gobgp_stream(&d);
    assert!(
        wait_for(Duration::from_secs(10), || {
            (claim_rpki(&d, "198.51.100.0/24")? == "valid"
                && claim_rpki(&d, "203.0.113.0/24")? == "invalid")
                .then_some(())
        })
        .is_some(),
        "{}",
        d.log()
    );
    // The route's own origin gets a ROA: read again, re-judged.
    repo.roa(
        "fixed.roa",
        65002,
        &[(Ipv4Addr::new(203, 0, 113, 0), 24, None)],
    );
    assert!(
        wait_for(Duration::from_secs(10), || {
            (claim_rpki(&d, "203.0.113.0/24")? == "valid").then_some(())
        })
        .is_some(),
        "{}",
        d.log()
    );
    let log = d.log();
    assert!(log.contains("3 of 3 ROAs and ASPAs valid"), "{log}");
    assert!(log.contains("4 of 4 ROAs and ASPAs valid"), "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// An operator's release and `/v1/status` while a router streams a real update dump as
/// fast as the daemon takes it (the PCH fixture re-encoded as BMP, a new session each
/// round, judged against the bundled 723k VRPs: a third of it produces decisions). Returns
/// the five release and status times (ms, sorted) and the announcements judged.
fn release_under_load(state: bool) -> (Vec<f64>, Vec<f64>, u64) {
    let dir = lab::scratch(if state {
        "release-state"
    } else {
        "release-no-state"
    });
    let stream = dir.join("pch.bmp");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_routewitness"))
        .args(["mrt2bmp", "-o"])
        .arg(&stream)
        .arg(repo_file("fixtures/mrt/pch_updates.et-header.20151023.gz"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&stream).unwrap();
    let token = "release-under-load-token";
    std::fs::write(dir.join("token"), token).unwrap();
    let tf = dir.join("token");
    let mut args = vec![
        "--bmp",
        "127.0.0.1:0",
        "--api",
        "127.0.0.1:0",
        "--no-replay",
        "--api-token-file",
        tf.to_str().unwrap(),
    ];
    if !state {
        args.push("--no-state");
    }
    let d = Daemon::start_in(&dir, &args);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let router = {
        let (stop, addr) = (stop.clone(), d.bmp);
        std::thread::spawn(move || {
            let stopped = || stop.load(std::sync::atomic::Ordering::Relaxed);
            while !stopped() {
                // A new session each round: its peer's table is dropped and judged again.
                let Ok(mut s) = TcpStream::connect(addr) else {
                    break;
                };
                for chunk in bytes.chunks(1 << 16) {
                    if stopped() || s.write_all(chunk).is_err() {
                        break;
                    }
                }
            }
        })
    };
    // A held claim to release, taken from the quarantine while the stream runs.
    let id = wait_for(Duration::from_secs(30), || {
        let v: Value = serde_json::from_str(&http_get(d.api, "/v1/quarantine").ok()?).ok()?;
        v.as_array()?.first()?["id"].as_str().map(str::to_string)
    })
    .unwrap_or_else(|| panic!("nothing held:\n{}", d.log()));
    let (mut release_ms, mut status_ms) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let t = std::time::Instant::now();
        let (code, body) = http_post(
            d.api,
            &format!("/v1/quarantine/{id}/release"),
            Some(token),
            r#"{"note":"under load"}"#,
        );
        release_ms.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(code, 200, "{body}");
        let t = std::time::Instant::now();
        assert!(status_of(&d).is_some());
        status_ms.push(t.elapsed().as_secs_f64() * 1e3);
        std::thread::sleep(Duration::from_millis(200));
    }
    let judged = status_of(&d).unwrap()["announcements"]
        .as_u64()
        .unwrap_or(0);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    router.join().unwrap();
    release_ms.sort_by(f64::total_cmp);
    status_ms.sort_by(f64::total_cmp);
    println!(
        "under a full-speed BMP stream, state {state} ({judged} announcements judged): \
         release answered in {release_ms:.1?} ms, /v1/status in {status_ms:.1?} ms"
    );
    assert!(judged > 100_000, "the stream was being judged: {judged}");
    (release_ms, status_ms, judged)
}

/// Control before data: the pipeline takes an operator's request before the route events
/// waiting (it used to wait behind up to 64 batches, and answer 503 after 5 s), and the
/// status is a snapshot, never queued. With the SQLite state the answer also waits for
/// the override's commit, behind the decisions the state thread has not written yet (it
/// waited ~0.2 s more while the override's checkpoint also rewrote every established
/// claim; the claims now wait for the periodic checkpoint). The medians: one sample on a
/// loaded 2-core machine may wait for the scheduler.
#[test]
fn an_operator_release_is_not_queued_behind_a_full_speed_bmp_stream() {
    let (release, status, _) = release_under_load(false);
    eprintln!("without state: release {release:?} ms, status {status:?} ms");
    assert!(release[2] < 100.0, "release: {release:?} ms");
    assert!(status[2] < 100.0, "status: {status:?} ms");
    let (release, status, _) = release_under_load(true);
    eprintln!("with state: release {release:?} ms, status {status:?} ms");
    assert!(release[2] < 100.0, "release with state: {release:?} ms");
    assert!(status[2] < 100.0, "status with state: {status:?} ms");
}

/// The routes `/v1/quarantine` lists: claim id, peer, peer AS, path id, restored or not.
fn held_routes(d: &Daemon) -> Vec<(String, String, u64, u64, bool)> {
    let v: Value = serde_json::from_str(&http_get(d.api, "/v1/quarantine").unwrap()).unwrap();
    let mut out: Vec<_> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["id"].as_str().unwrap().to_string(),
                h["peer"].as_str().unwrap().to_string(),
                h["peer_asn"].as_u64().unwrap(),
                h["path_id"].as_u64().unwrap_or(0),
                h["restored"] == true,
            )
        })
        .collect();
    out.sort();
    out
}

/// Issue 18, point 7: after the bundled demo feed (a day of 2008 route-views2 updates:
/// routes replaced with new origins, withdrawn, re-announced), kill -9 and a restart list
/// exactly the routes held before, as restored: the quarantine the state keeps is the
/// live one. (Issue 18 measured 8 of 7,148 claims differing on an earlier build; this
/// test also passes at 253cea2, before the state's schema 3, so it guards the fix rather
/// than showing it.)
#[test]
fn the_restored_quarantine_is_the_live_one_after_kill_9() {
    let dir = lab::scratch("restored-equals-live");
    let args = ["--bmp", "127.0.0.1:0", "--api", "127.0.0.1:0"];
    let mut d = Daemon::start_in(&dir, &args);
    // Replayed, and every decision written (the API lists the log once it is committed).
    let settled = wait_for(Duration::from_secs(120), || {
        let s: Value = serde_json::from_str(&http_get(d.api, "/v1/status").ok()?).ok()?;
        let made = s["judge"]["decisions"].as_u64()?;
        let files = s["feeds"].as_array()?.len().saturating_sub(1);
        if s["replayed_files"].as_u64()? < files as u64 || made == 0 {
            return None;
        }
        let path = format!("/v1/decisions?since={}", made - 1);
        let last: Vec<Value> = serde_json::from_str(&http_get(d.api, &path).ok()?).ok()?;
        (last.len() == 1).then_some(made)
    });
    let made = settled.unwrap_or_else(|| panic!("the demo feed did not settle:\n{}", d.log()));
    let before = held_routes(&d);
    assert!(
        before.len() > 1000,
        "the demo feed holds routes: {}",
        before.len()
    );
    assert!(before.iter().all(|h| !h.4), "live holds, none restored");
    d.kill();

    let d = Daemon::start_in(&dir, &args);
    wait_for(Duration::from_secs(60), || {
        d.log().contains("not replaying").then_some(())
    })
    .unwrap_or_else(|| panic!("no restart:\n{}", d.log()));
    let after = held_routes(&d);
    assert!(after.iter().all(|h| h.4), "all listed as restored");
    let strip = |v: &[(String, String, u64, u64, bool)]| -> Vec<(String, String, u64, u64)> {
        v.iter()
            .map(|(a, b, c, e, _)| (a.clone(), b.clone(), *c, *e))
            .collect()
    };
    let (b, a) = (strip(&before), strip(&after));
    let only_before: Vec<_> = b.iter().filter(|x| !a.contains(x)).take(5).collect();
    let only_after: Vec<_> = a.iter().filter(|x| !b.contains(x)).take(5).collect();
    assert_eq!(
        b.len(),
        a.len(),
        "{made} decisions; held before and not after: {only_before:?}; after, not before: \
         {only_after:?}"
    );
    assert!(
        only_before.is_empty() && only_after.is_empty(),
        "{only_before:?} {only_after:?}"
    );
}

/// A daemon configured by file in a scratch directory `name`: one BMP feed whose keys
/// beyond `type` and `listen` are `bmp_keys` (TOML lines), the lab's VRPs, no state.
fn bmp_feed_daemon(name: &str, bmp_keys: &str) -> Daemon {
    bmp_feed_daemon_with(name, bmp_keys, "")
}

/// [`bmp_feed_daemon`] with more configuration (`conf`, at the end of its file).
fn bmp_feed_daemon_with(name: &str, bmp_keys: &str, conf_more: &str) -> Daemon {
    let (dir, conf) = bmp_feed_conf(
        name,
        bmp_keys,
        &format!("[state]\npath = \"\"\n{conf_more}"),
    );
    Daemon::start_in(&dir, &["--config", conf.to_str().unwrap()])
}

/// In a scratch directory: a BMP feed file (`bmp_keys` added), the lab's VRPs and a
/// configuration taking them, the API on a free port, and `tail`; (directory, file).
fn bmp_feed_conf(
    name: &str,
    bmp_keys: &str,
    tail: &str,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = lab::scratch(name);
    std::fs::create_dir_all(dir.join("feeds")).unwrap();
    std::fs::write(
        dir.join("feeds/bmp.toml"),
        format!("type = \"bmp\"\nlisten = \"127.0.0.1:0\"\n{bmp_keys}"),
    )
    .unwrap();
    std::fs::copy(
        repo_file("fixtures/bmp/lab/vrps.json"),
        dir.join("vrps.json"),
    )
    .unwrap();
    let conf = dir.join("routewitness.toml");
    std::fs::write(
        &conf,
        format!(
            "feeds = [\"feeds/bmp.toml\"]\n[rpki]\nvrps = \"vrps.json\"\n[api]\n\
             listen = \"127.0.0.1:0\"\n{tail}"
        ),
    )
    .unwrap();
    (dir, conf)
}

/// Issue 18, point 3: connections that never speak BMP cannot hold the session slots.
/// With room for two sessions, two idle connections are dropped after the Initiation
/// deadline (counted), and then a router's real stream is taken and judged. (Before, 64
/// idle connections held every slot for good and an honest router was refused.)
#[test]
fn idle_connections_are_dropped_at_the_initiation_deadline() {
    let d = bmp_feed_daemon(
        "initiation",
        "view = \"loc-rib\"\nmax_sessions = 2\ninitiation_timeout = \"1s\"\n",
    );
    let idle: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(d.bmp).unwrap()).collect();
    let dropped = wait_for(Duration::from_secs(10), || {
        let m = http_get(d.api, "/metrics").ok()?;
        m.lines()
            .any(|l| l.contains("kind=\"initiation_timeout\"") && l.ends_with(" 2"))
            .then_some(())
    });
    assert!(dropped.is_some(), "idle sessions not dropped:\n{}", d.log());
    assert!(
        d.log().contains("no BMP message for 1s: dropped"),
        "{}",
        d.log()
    );
    let _router = gobgp_stream(&d);
    let judged = wait_for(Duration::from_secs(10), || {
        let s = status_of(&d)?;
        (s["announcements"].as_u64()? > 0).then_some(())
    });
    assert!(judged.is_some(), "the router was not taken:\n{}", d.log());
    drop(idle);
}

/// Issue 18, point 3: the API's token is checked before the body is read. A client
/// without it that announces a 2 MB body and sends none is answered 401 at once (before,
/// the daemon waited for the body, and held every byte of it that came, before checking).
#[test]
fn a_post_without_the_token_is_refused_before_its_body_is_read() {
    let dir = lab::scratch("token-first");
    std::fs::write(dir.join("token"), "s3cret-token-for-the-body-test").unwrap();
    let tf = dir.join("token");
    let d = Daemon::start(&[
        "--no-replay",
        "--vrps",
        repo_file("fixtures/bmp/lab/vrps.json").to_str().unwrap(),
        "--api-token-file",
        tf.to_str().unwrap(),
    ]);
    let mut s = TcpStream::connect(d.api).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    write!(
        s,
        "POST /v1/quarantine/192.0.2.0-24-AS65002/release HTTP/1.1\r\nHost: x\r\n\
         Content-Type: application/json\r\nContent-Length: 2000000\r\n\r\n"
    )
    .unwrap();
    let mut answer = [0u8; 64];
    let n = std::io::Read::read(&mut s, &mut answer).expect("answered without the body");
    let head = String::from_utf8_lossy(&answer[..n]);
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
}

/// Issue 18, point 3: a request whose headers never end does not hold its connection:
/// the API closes it after its header timeout (10 s). (axum's own server, before, kept
/// a hundred of them open for a minute and more.)
#[test]
fn a_half_open_request_is_closed_at_the_header_timeout() {
    let d = Daemon::start(&[
        "--no-replay",
        "--vrps",
        repo_file("fixtures/bmp/lab/vrps.json").to_str().unwrap(),
    ]);
    let mut s = TcpStream::connect(d.api).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(s, "GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Slow: ").unwrap();
    let t = std::time::Instant::now();
    let mut rest = Vec::new();
    let read = std::io::Read::read_to_end(&mut s, &mut rest);
    assert!(read.is_ok(), "still open after {:?}: {read:?}", t.elapsed());
    assert!(
        t.elapsed() >= Duration::from_secs(9) && t.elapsed() < Duration::from_secs(15),
        "closed after {:?}",
        t.elapsed()
    );
    // The API still answers.
    assert!(status_of(&d).is_some());
}

/// Issue 18, point 2 (part): a BMP feed's `allow` list refuses sessions from elsewhere,
/// counted (`kind="not_allowed"`), before a byte is read.
#[test]
fn a_bmp_session_from_outside_the_allow_list_is_refused() {
    let d = bmp_feed_daemon(
        "bmp-allow",
        "allow = [\"127.0.0.2/32\", \"2001:db8::/32\"]\n",
    );
    let mut s = TcpStream::connect(d.bmp).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 16];
    let closed = std::io::Read::read(&mut s, &mut buf);
    assert!(
        matches!(closed, Ok(0))
            || closed
                .as_ref()
                .is_err_and(|e| e.kind() != std::io::ErrorKind::WouldBlock),
        "the session was not closed: {closed:?}"
    );
    let counted = wait_for(Duration::from_secs(5), || {
        let m = http_get(d.api, "/metrics").ok()?;
        m.lines()
            .any(|l| l.contains("kind=\"not_allowed\"") && l.ends_with(" 1"))
            .then_some(())
    });
    assert!(counted.is_some(), "not counted:\n{}", d.log());
    let s = status_of(&d).unwrap();
    assert_eq!(s["announcements"], 0, "{s}");
}

/// The year of an RFC 3339 time the API gave.
fn year_of(t: &Value) -> i64 {
    t.as_str()
        .and_then(|t| t.get(..4))
        .and_then(|y| y.parse().ok())
        .unwrap_or(0)
}

/// Issue 18, point 1: one router whose clock says 2100 does not move the judge's time.
/// Two routers (127.0.0.2 honest, 127.0.0.3 stamping its route 2100-01-01): by default
/// the liar's message is judged at its arrival, counted (`kind="clock_skew"`, and
/// `clock_skewed` on its router) and the judge's time stays this year's. With the check
/// off (`max_clock_skew = "0s"`, what the daemon did before), the judge's time is 2100:
/// the test would fail there.
#[test]
fn a_router_clock_far_ahead_does_not_move_the_judge_time() {
    use lab::bmp::{initiation, now_secs, route_monitoring, Peer};
    use std::net::Ipv4Addr;
    let this_year = 1970 + i64::from(now_secs()) / 31_556_952;
    for (keys, moved) in [("", false), ("max_clock_skew = \"0s\"\n", true)] {
        let d = bmp_feed_daemon("clock-skew", keys);
        let honest = Peer {
            addr: Ipv4Addr::new(192, 0, 2, 1),
            asn: 64500,
            loc_rib: false,
        };
        let liar = Peer {
            addr: Ipv4Addr::new(192, 0, 2, 9),
            asn: 64509,
            loc_rib: false,
        };
        let mut a = lab::connect_from(Ipv4Addr::new(127, 0, 0, 2), d.bmp);
        a.write_all(&initiation("honest")).unwrap();
        a.write_all(&route_monitoring(
            honest,
            now_secs(),
            Some(&[64500, 64501]),
            &[(Ipv4Addr::new(198, 51, 100, 0), 24)],
        ))
        .unwrap();
        let mut b = lab::connect_from(Ipv4Addr::new(127, 0, 0, 3), d.bmp);
        b.write_all(&initiation("liar")).unwrap();
        b.write_all(&route_monitoring(
            liar,
            4_102_444_800, // 2100-01-01
            Some(&[64509, 64510]),
            &[(Ipv4Addr::new(203, 0, 113, 0), 24)],
        ))
        .unwrap();
        let s = wait_for(Duration::from_secs(10), || {
            status_of(&d).filter(|s| s["announcements"] == 2)
        })
        .unwrap_or_else(|| panic!("the routes were not judged:\n{}", d.log()));
        let year = year_of(&s["judge_time"]);
        let skewed: u64 = s["routers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["clock_skewed"].as_u64().unwrap_or(0))
            .sum();
        if moved {
            assert_eq!(year, 2100, "{s}");
            assert_eq!(skewed, 0, "{s}");
        } else {
            assert!(year <= this_year + 1, "the judge's time moved: {s}");
            assert_eq!(skewed, 1, "{s}");
            let m = http_get(d.api, "/metrics").unwrap();
            assert!(
                m.lines()
                    .any(|l| l.contains("kind=\"clock_skew\"") && l.ends_with(" 1")),
                "not counted:\n{m}"
            );
            assert_eq!(
                d.log().matches("judged at its arrival").count(),
                1,
                "{}",
                d.log()
            );
        }
    }
}

/// Issue 18, point 2: one monitored router is one witness domain. The 2014 RIB slice
/// establishes 1.8.8.0/24 AS38345; a real GoBGP (an honest router) carries it too. A
/// lying BMP session (from 127.0.0.3) presents two made-up peers, AS7018 and AS3257,
/// each with a path through the holder and its own neighbour of AS666: a related change
/// that gains standing only with k = 2 independent witnesses. By default the router is
/// one vote (effective 1.0, not established); with `confirm.one_vote_per_router = false`
/// (the judge before) its two made-up peers confirm it: the test fails there.
#[test]
fn one_router_presenting_made_up_peers_is_one_witness() {
    use lab::bmp::{initiation, now_secs, route_monitoring, Peer};
    use std::net::Ipv4Addr;
    let Some(gobgp) = lab::GoBgp::require() else {
        return;
    };
    for one_vote in [true, false] {
        let dir = lab::scratch("witness-domain");
        let policy = dir.join("policy.toml");
        std::fs::write(
            &policy,
            format!(
                "{}\n[confirm]\none_vote_per_router = {one_vote}\n",
                std::fs::read_to_string(repo_file("tests/lab/policy.toml")).unwrap()
            ),
        )
        .unwrap();
        let d = rib_and_loc_rib_daemon(&policy);
        let g = gobgp.start(d.bmp);
        g.add("1.8.8.0/24", &[38345]);
        let mut liar = lab::connect_from(Ipv4Addr::new(127, 0, 0, 3), d.bmp);
        liar.write_all(&initiation("liar")).unwrap();
        for (i, (asn, neighbour)) in [(7018, 64511), (3257, 64512)].into_iter().enumerate() {
            let peer = Peer {
                addr: Ipv4Addr::new(192, 0, 2, 7 + i as u8),
                asn,
                loc_rib: true,
            };
            liar.write_all(&route_monitoring(
                peer,
                now_secs(),
                Some(&[asn, 38345, neighbour, 666]),
                &[(Ipv4Addr::new(1, 8, 8, 0), 24)],
            ))
            .unwrap();
        }
        let claim = |established: bool, secs: u64| {
            wait_for(Duration::from_secs(secs), || {
                let v: Value = serde_json::from_str(
                    &http_get(d.api, "/v1/routes?prefix=1.8.8.0/24&origin=666").ok()?,
                )
                .ok()?;
                let c = v["claims"].as_array()?.first()?.clone();
                (c["witnesses"]["witnesses"].as_array()?.len() == 2
                    && c["established"].is_string() == established)
                    .then_some(c)
            })
        };
        if one_vote {
            let c = claim(false, 10).unwrap_or_else(|| panic!("no claim of AS666:\n{}", d.log()));
            assert_eq!(c["witnesses"]["effective"], 1.0, "{c}");
            // And it stays so (nothing else is coming that could confirm it).
            std::thread::sleep(Duration::from_secs(1));
            assert!(claim(true, 1).is_none(), "established by one router");
        } else {
            let c = claim(true, 10).unwrap_or_else(|| panic!("not confirmed:\n{}", d.log()));
            assert_eq!(c["witnesses"]["effective"], 2.0, "{c}");
        }
        // The honest router's route is judged beside it.
        let v: Value = serde_json::from_str(
            &http_get(d.api, "/v1/routes?prefix=1.8.8.0/24&origin=38345").unwrap(),
        )
        .unwrap();
        assert!(v["claims"][0]["established"].is_string(), "{v}");
        drop(g);
    }
}

/// Issue 18, point 4: max-prefix per BMP peer and per monitored router. Limits of 100
/// routes per peer and 150 per router, warning at 80%: peer A announces 120 /32s (100
/// taken, 20 refused), peer B of the same router 60 (50 taken, then the router's limit
/// refuses 10). Each crossing is logged once and alerted (`peer.max_prefix`), the refused
/// routes counted (`routewitness_routes_refused_total`), `/v1/status` lists both; A's
/// routes stay judged (a new origin for one of them is taken), and once A withdraws 20
/// its new routes are taken again. (Before, nothing bounded a peer: 3,000,000 /32s took
/// 449 MiB.)
#[test]
fn max_prefix_warns_then_refuses_new_routes_of_a_peer_and_of_its_router() {
    use lab::bmp::{initiation, now_secs, route_monitoring, Peer};
    use std::net::Ipv4Addr;
    let r = lab::Receiver::start(lab::Mode::Ok);
    let d = bmp_feed_daemon_with(
        "max-prefix",
        "max_prefixes_per_peer = 100\nmax_prefixes_per_router = 150\nmax_prefixes_warn = 0.8\n",
        &format!(
            "[alerts]\n[[alerts.webhook]]\nname = \"noc\"\nurl = \"http://{}/hook\"\n\
             types = [\"peer.max_prefix\"]\n",
            r.addr
        ),
    );
    let peer = |n: u8| Peer {
        addr: Ipv4Addr::new(192, 0, 2, n),
        asn: 64500 + u32::from(n),
        loc_rib: false,
    };
    let (a, b) = (peer(1), peer(2));
    let mut s = lab::connect_from(Ipv4Addr::new(127, 0, 0, 2), d.bmp);
    s.write_all(&initiation("r")).unwrap();
    // Ten /32s per message: 10.<third>.<n>.0/32.
    let send = |s: &mut TcpStream, p: Peer, third: u8, messages: u8, origin: u32| {
        for m in 0..messages {
            let prefixes: Vec<_> = (0..10)
                .map(|i| (Ipv4Addr::new(10, third, m, i), 32))
                .collect();
            s.write_all(&route_monitoring(
                p,
                now_secs(),
                Some(&[p.asn, origin]),
                &prefixes,
            ))
            .unwrap();
        }
    };
    let stored = |n: u64| {
        wait_for(Duration::from_secs(10), || {
            status_of(&d).filter(|s| s["routes_stored"] == n)
        })
        .unwrap_or_else(|| panic!("not {n} routes stored: {:?}\n{}", status_of(&d), d.log()))
    };
    send(&mut s, a, 1, 12, 64999);
    stored(100);
    send(&mut s, b, 2, 6, 64999);
    let st = stored(150);
    let limits = st["max_prefix"].as_array().unwrap();
    let of = |scope: &str| {
        limits
            .iter()
            .find(|l| l["scope"] == scope)
            .unwrap_or_else(|| panic!("no {scope} in {st}"))
    };
    assert_eq!(of("peer")["refused"], 20, "{st}");
    assert_eq!(of("peer")["at_limit"], true, "{st}");
    assert_eq!(of("router")["refused"], 10, "{st}");
    assert_eq!(of("router")["at_limit"], true, "{st}");
    let m = http_get(d.api, "/metrics").unwrap();
    for want in [
        "routewitness_routes_refused_total{limit=\"peer\"} 20",
        "routewitness_routes_refused_total{limit=\"router\"} 10",
    ] {
        assert!(m.lines().any(|l| l == want), "no {want}:\n{m}");
    }
    let log = d.log();
    assert_eq!(
        log.matches("reached its limit of 100 routes").count(),
        1,
        "{log}"
    );
    assert_eq!(
        log.matches("reached its limit of 150 routes").count(),
        1,
        "{log}"
    );
    assert_eq!(log.matches("80% of its limit").count(), 2, "{log}");
    // A route A has already: a new origin is taken and judged.
    s.write_all(&route_monitoring(
        a,
        now_secs(),
        Some(&[a.asn, 64998]),
        &[(Ipv4Addr::new(10, 1, 0, 0), 32)],
    ))
    .unwrap();
    let judged = wait_for(Duration::from_secs(10), || {
        let v: Value = serde_json::from_str(
            &http_get(d.api, "/v1/routes?prefix=10.1.0.0/32&origin=64998").ok()?,
        )
        .ok()?;
        v["claims"].as_array().filter(|c| !c.is_empty()).map(|_| ())
    });
    assert!(judged.is_some(), "a replacement was refused:\n{}", d.log());
    // A withdraws 20: under both limits again, and its next new route is taken.
    for m in 0..2 {
        let prefixes: Vec<_> = (0..10).map(|i| (Ipv4Addr::new(10, 1, m, i), 32)).collect();
        s.write_all(&route_monitoring(a, now_secs(), None, &prefixes))
            .unwrap();
    }
    stored(130);
    s.write_all(&route_monitoring(
        a,
        now_secs(),
        Some(&[a.asn, 64999]),
        &[(Ipv4Addr::new(10, 3, 0, 0), 32)],
    ))
    .unwrap();
    stored(131);
    assert!(
        d.log().contains("back under its limit of 100"),
        "{}",
        d.log()
    );
    // The alerts: the peer's and the router's warning and limit, then both back under.
    let got = wait_for(Duration::from_secs(15), || {
        let got = r.got();
        (got.len() >= 6).then_some(got)
    })
    .unwrap_or_else(|| panic!("alerts: {:?}\n{}", r.got().len(), d.log()));
    let crossings: Vec<(String, String)> = got
        .iter()
        .map(|g| {
            let a: Value = serde_json::from_slice(&g.body).unwrap();
            assert_eq!(a["type"], "peer.max_prefix", "{a}");
            (
                a["data"]["limit"]["scope"].as_str().unwrap().to_string(),
                a["data"]["limit"]["crossing"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for want in [
        ("peer", "warning"),
        ("peer", "reached"),
        ("router", "warning"),
        ("router", "reached"),
        ("peer", "below"),
        ("router", "below"),
    ] {
        assert!(
            crossings.contains(&(want.0.to_string(), want.1.to_string())),
            "{want:?} not in {crossings:?}"
        );
    }
}

/// `routewitness ARGS` in `dir`, expected to exit by itself within 20 s: (exit code,
/// stdout and stderr).
fn run_to_exit(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_routewitness"))
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let done = wait_for(Duration::from_secs(20), || child.try_wait().ok().flatten());
    if done.is_none() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Issue 18, point 6: the state file's integrity. A 0-byte file is not a new state: the
/// daemon refuses to start on it with the reason and the ways out (before, it started
/// fresh without a word: every claim, trust score and hold gone); `--new-state` starts
/// afresh and keeps the old file aside. A file with a damaged page is refused too;
/// `state check` says why (exit 1; a whole file: exit 0), `state repair` keeps what
/// reads, and the daemon then starts on it and serves its decisions as valid JSON.
#[test]
fn an_empty_or_damaged_state_file_refuses_to_start_until_repaired_or_new() {
    let (dir, conf) = bmp_feed_conf(
        "state-integrity",
        "max_clock_skew = \"0s\"\n",
        "[state]\npath = \"state.sqlite\"\n",
    );
    let conf = conf.to_str().unwrap();
    let state = dir.join("state.sqlite");
    let state_s = state.to_str().unwrap();
    // 0 bytes: refused.
    std::fs::write(&state, b"").unwrap();
    let (code, out) = run_to_exit(&dir, &["run", "--config", conf]);
    assert_ne!(code, Some(0), "{out}");
    assert!(
        out.contains("0 bytes") && out.contains("state repair"),
        "{out}"
    );
    assert_eq!(
        std::fs::metadata(&state).unwrap().len(),
        0,
        "the file was touched"
    );
    // --new-state: started afresh, the old file kept aside.
    let mut d = Daemon::start_in(&dir, &["--config", conf, "--new-state"]);
    let _s = gobgp_stream(&d);
    let decided = wait_for(Duration::from_secs(10), || {
        let v: Value = serde_json::from_str(&http_get(d.api, "/v1/decisions").ok()?).ok()?;
        (v.as_array()?.len() >= 2).then_some(())
    });
    assert!(decided.is_some(), "{}", d.log());
    let (code, _, log) = d.terminate();
    assert_eq!(code, Some(0), "{log}");
    let aside = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("state.sqlite.old-")
        });
    assert!(aside, "the 0-byte file was not kept aside");
    let (code, out) = run_to_exit(&dir, &["state", "check", state_s]);
    assert_eq!(code, Some(0), "{out}");
    // A damaged page (the header of page 2, a b-tree page): refused, checked, repaired.
    let mut bytes = std::fs::read(&state).unwrap();
    let page = u16::from_be_bytes([bytes[16], bytes[17]]) as usize;
    let page = if page == 1 { 65536 } else { page };
    assert!(bytes.len() > 2 * page, "a state of one page");
    bytes[page..page + 8].fill(0xff);
    std::fs::write(&state, &bytes).unwrap();
    let (code, out) = run_to_exit(&dir, &["run", "--config", conf]);
    assert_ne!(code, Some(0), "{out}");
    assert!(
        out.contains("damaged") && out.contains("state repair"),
        "{out}"
    );
    let (code, out) = run_to_exit(&dir, &["state", "check", state_s]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("damaged"), "{out}");
    let (code, out) = run_to_exit(&dir, &["state", "repair", state_s]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("rows kept"), "{out}");
    let (code, out) = run_to_exit(&dir, &["state", "check", state_s]);
    assert_eq!(code, Some(0), "{out}");
    let d = Daemon::start_in(&dir, &["--config", conf]);
    let body = http_get(d.api, "/v1/decisions").unwrap();
    let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert!(v.is_array(), "{v}");
}

/// Issue 18, point 5: durable before acknowledged. The state file lives on a 16 MiB tmpfs
/// in a mount namespace the test creates; the daemon judges 30 routes, then the disk is
/// filled. The next 30 decisions cannot be written: `/v1/status` says the state is
/// degraded and why, `routewitness_state_degraded` is 1, a `state.degraded` alert
/// reaches the NOC (sent at once: the outbox is in the same file), and an operator's
/// release is refused with 503 and the reason (before: 200, and gone after a restart).
/// Once the disk is freed the kept decisions are written, a release is taken, and after a
/// kill -9 the restarted daemon has every decision and the release (before: decisions
/// 10,257-36,425 were never written).
#[test]
fn a_full_disk_degrades_the_state_and_loses_nothing_acknowledged() {
    use lab::bmp::{initiation, now_secs, route_monitoring, Peer};
    use std::net::Ipv4Addr;
    let r = lab::Receiver::start(lab::Mode::Ok);
    let (dir, conf) = bmp_feed_conf(
        "full-disk",
        "",
        &format!(
            "token_file = \"token\"\n[state]\npath = \"state/state.sqlite\"\ncheckpoint = \"1h\"\n[alerts]\n\
             [[alerts.webhook]]\nname = \"noc\"\nurl = \"http://{}/hook\"\n\
             types = [\"state.degraded\"]\n",
            r.addr
        ),
    );
    const TOKEN: &str = "full-disk-test-token-0123456789";
    std::fs::write(dir.join("token"), TOKEN).unwrap();
    let disk = lab::SmallDisk::new(&dir.join("state"), "16m");
    let wrapper = disk.wrapper();
    let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
    let conf = conf.to_str().unwrap();
    let mut d = Daemon::start_wrapped(&dir, &wrapper, &["--config", conf]);
    let peer = Peer {
        addr: Ipv4Addr::new(192, 0, 2, 1),
        asn: 64501,
        loc_rib: false,
    };
    let mut s = lab::connect_from(Ipv4Addr::new(127, 0, 0, 2), d.bmp);
    s.write_all(&initiation("r")).unwrap();
    // Thirty /32s (each held as too long: a decision each) of 10.<third>.0.0/24.
    let announce = |s: &mut TcpStream, third: u8| {
        for m in 0..3 {
            let prefixes: Vec<_> = (0..10)
                .map(|i| (Ipv4Addr::new(10, third, m, i), 32))
                .collect();
            s.write_all(&route_monitoring(
                peer,
                now_secs(),
                Some(&[peer.asn, 64999]),
                &prefixes,
            ))
            .unwrap();
        }
    };
    let logged = |d: &Daemon, n: usize| {
        wait_for(Duration::from_secs(15), || {
            let v: Value =
                serde_json::from_str(&http_get(d.api, "/v1/decisions?limit=100000").ok()?).ok()?;
            (v.as_array()?.len() >= n).then_some(v.as_array()?.len())
        })
        .unwrap_or_else(|| panic!("not {n} decisions logged: {}", d.log()))
    };
    announce(&mut s, 1);
    assert_eq!(logged(&d, 30), 30);
    disk.fill();
    announce(&mut s, 2);
    let st = wait_for(Duration::from_secs(15), || {
        status_of(&d).filter(|s| s["state_degraded"]["unwritten_decisions"] == 30)
    })
    .unwrap_or_else(|| panic!("not degraded: {:?}\n{}", status_of(&d), d.log()));
    let why = st["state_degraded"]["error"].as_str().unwrap().to_string();
    assert!(why.contains("full"), "{why}");
    let m = http_get(d.api, "/metrics").unwrap();
    assert!(
        m.lines().any(|l| l == "routewitness_state_degraded 1"),
        "{m}"
    );
    let id = quarantine_ids(&d)[0].0.clone();
    let release = |d: &Daemon| {
        http_post(
            d.api,
            &format!("/v1/quarantine/{id}/release"),
            Some(TOKEN),
            "{\"note\":\"full disk test\"}",
        )
    };
    let (code, body) = release(&d);
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("cannot be written"), "{body}");
    let alert = |degraded: bool| {
        wait_for(Duration::from_secs(15), || {
            r.got().into_iter().find_map(|g| {
                let a: Value = serde_json::from_slice(&g.body).ok()?;
                (a["type"] == "state.degraded" && a["data"]["degraded"] == degraded).then_some(a)
            })
        })
        .unwrap_or_else(|| panic!("no state.degraded {degraded} alert: {}", d.log()))
    };
    alert(true);
    // Space again: what was kept is written, and a release is taken.
    disk.free();
    wait_for(Duration::from_secs(15), || {
        status_of(&d).filter(|s| s.get("state_degraded").is_none())
    })
    .unwrap_or_else(|| panic!("still degraded: {}", d.log()));
    assert_eq!(logged(&d, 60), 60);
    let (code, body) = release(&d);
    assert_eq!(code, 200, "{body}");
    alert(false);
    let m = http_get(d.api, "/metrics").unwrap();
    assert!(
        m.lines().any(|l| l == "routewitness_state_degraded 0"),
        "{m}"
    );
    let made = status_of(&d).unwrap()["judge"]["decisions"]
        .as_u64()
        .unwrap();
    // kill -9: every decision made and the release are there after the restart.
    d.kill();
    let d = Daemon::start_wrapped(&dir, &wrapper, &["--config", conf]);
    assert_eq!(logged(&d, made as usize), made as usize, "{}", d.log());
    assert!(
        decision_by_operator(&d, &id.replace("-32-AS64999", "/32")).is_some(),
        "{}",
        d.log()
    );
}
