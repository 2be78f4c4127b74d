//! Acting on real routers: BIRD 2 takes its RPKI data and routewitness's quarantine over
//! RTR from the daemon, on the configuration `routewitness act config bird` prints, while
//! GoBGP announces routes to BIRD and streams its Loc-RIB to the daemon over BMP.

mod lab;

use lab::{http_get, http_post, repo_file, scratch, wait_for, Bird, Daemon, GoBgp};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const TOKEN: &str = "act-test-token-0123456789";

fn routewitness(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_routewitness"))
        .args(args)
        .output()
        .unwrap()
}

/// What `act config bird` prints for these addresses.
fn bird_snippet(rpki: &str, quarantine: &str) -> String {
    let out = routewitness(&[
        "act",
        "config",
        "bird",
        "--rtr-listen",
        rpki,
        "--quarantine-listen",
        quarantine,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_bird_configuration_is_the_golden_one_and_the_readme_shows_it() {
    let text = bird_snippet("127.0.0.1:3323", "127.0.0.1:3324");
    let golden = std::fs::read_to_string(repo_file("tests/golden/bird-act.conf")).unwrap();
    assert_eq!(
        text, golden,
        "tests/golden/bird-act.conf differs from `act config bird`"
    );
    // The README shows the quarantine part as it is generated.
    let readme = std::fs::read_to_string(repo_file("README.md")).unwrap();
    let quarantine = &text[text.find("# routewitness's quarantine").unwrap()..];
    assert!(readme.contains(quarantine), "README lacks:\n{quarantine}");
    // Without a feed there is nothing to print.
    let out = routewitness(&["act", "config", "bird"]);
    assert_eq!(out.status.code(), Some(64));
    // FRR's, with the RPKI feed, likewise.
    let out = routewitness(&["act", "config", "frr", "--rtr-listen", "127.0.0.1:3323"]);
    let text = String::from_utf8(out.stdout).unwrap();
    let golden = std::fs::read_to_string(repo_file("tests/golden/frr-act.conf")).unwrap();
    assert_eq!(
        text, golden,
        "tests/golden/frr-act.conf differs from `act config frr`"
    );
    assert!(readme.contains(&text), "README lacks:\n{text}");
}

/// BIRD's configuration around routewitness's part: the import filter calls
/// `rw_quarantined()` first, then rejects what routewitness's RPKI data says is invalid.
fn bird_conf(rw: &str, bird_port: u16, gobgp_port: u16) -> String {
    bird_conf_with(rw, bird_port, gobgp_port, "import table on;")
}

/// [`bird_conf`] with `table` (`import table on;` or nothing) on the BGP channel.
fn bird_conf_with(rw: &str, bird_port: u16, gobgp_port: u16, table: &str) -> String {
    format!(
        r#"log "@DIR@/bird.log" all;
router id 127.65.0.1;
{rw}
protocol device {{ scan time 60; }}
filter rw_in {{
  if rw_quarantined() then {{ print "QUARANTINED ", net, " AS", bgp_path.last; reject; }}
  if net.type = NET_IP4 && roa_check(rw_roa4, net, bgp_path.last) = ROA_INVALID then {{
    print "RPKI INVALID ", net, " AS", bgp_path.last; reject;
  }}
  accept;
}}
protocol bgp gobgp {{
  local 127.65.0.1 port {bird_port} as 65001;
  neighbor 127.65.0.2 port {gobgp_port} as 65002;
  strict bind on; multihop; hold time 30; connect retry time 1;
  ipv4 {{ {table} import keep filtered on; import filter rw_in; export none; }};
}}
"#
    )
}

/// The daemon's configuration in `dir`: the 2014 RIB replayed first (it establishes who
/// originates what), GoBGP's Loc-RIB over BMP, the lab's VRPs from `vrps.json` in `dir`
/// (re-read every 100 ms), both RTR feeds on kernel-chosen ports, the quarantine for
/// 127.0.0.1 only, and `act` (the routers acted on) at the end of its [act] section.
fn daemon_conf(dir: &Path, act: &str) -> std::path::PathBuf {
    let head = lab::rib_and_gobgp_feeds(dir);
    std::fs::write(dir.join("token"), TOKEN).unwrap();
    let conf = dir.join("routewitness.toml");
    std::fs::write(
        &conf,
        format!(
            r#"{head}[rpki]
vrps = "vrps.json"
poll = "100ms"
[api]
listen = "127.0.0.1:0"
token_file = "token"
[state]
path = ""
[act]
rtr_listen = "127.0.0.1:0"
quarantine_listen = "127.0.0.1:0"
quarantine_routers = ["127.0.0.1"]
notify_interval = "0s"
{act}
"#
        ),
    )
    .unwrap();
    conf
}

/// BIRD's `show protocols` once every named protocol is up (within 30 s).
fn wait_protocols_up(bird: &Bird, names: &[&str]) {
    let up = wait_for(Duration::from_secs(30), || {
        let out = bird.birdc("show protocols");
        names
            .iter()
            .all(|n| {
                out.lines()
                    .any(|l| l.starts_with(n) && l.contains(" up ") && l.contains("Established"))
            })
            .then_some(())
    });
    assert!(
        up.is_some(),
        "not all of {names:?} up:\n{}\n{}",
        bird.birdc("show protocols"),
        bird.log()
    );
}

/// Whether `prefix` is in BIRD's `show route filtered`, and whether it is in its
/// accepted routes.
fn bird_has(bird: &Bird, prefix: &str) -> (bool, bool) {
    // (`show route filtered for P` shows nothing in BIRD 2.0.12: the whole list is read.)
    let filtered = bird.birdc("show route filtered");
    let accepted = bird.birdc("show route");
    // Lines of the route itself (not ROAs for it, "PREFIX-LEN ASn").
    let exact = |s: &str| {
        s.lines().any(|l| {
            l.strip_prefix(prefix)
                .is_some_and(|r| r.starts_with(char::is_whitespace))
        })
    };
    (exact(&filtered), exact(&accepted))
}

fn wait_bird(bird: &Bird, prefix: &str, want: (bool, bool), what: &str) {
    let ok = wait_for(Duration::from_secs(20), || {
        (bird_has(bird, prefix) == want).then_some(())
    });
    assert!(
        ok.is_some(),
        "{what}: {prefix} is (filtered, accepted) = {:?}, not {want:?}\n{}\n{}\n{}\n{}",
        bird_has(bird, prefix),
        bird.birdc("show route all"),
        bird.birdc("show route all filtered"),
        bird.birdc("show protocols all rw_quarantine"),
        bird.log()
    );
}

/// The first row of the audit log with this target, action and result (within 30 s).
fn action(d: &Daemon, target: &str, action: &str, result: &str) -> Value {
    wait_for(Duration::from_secs(30), || {
        let v: Value = serde_json::from_str(&http_get(d.api, "/v1/actions").ok()?).ok()?;
        v.as_array()?
            .iter()
            .find(|x| x["target"] == target && x["action"] == action && x["result"] == result)
            .cloned()
    })
    .unwrap_or_else(|| {
        panic!(
            "no {target} {action} {result} in /v1/actions: {}\n{}",
            http_get(d.api, "/v1/actions").unwrap_or_default(),
            d.log()
        )
    })
}

/// The daemon on `conf`, once it has replayed the RIB.
fn start_daemon(conf: &Path) -> Daemon {
    let d = Daemon::start_raw(&["--config", conf.to_str().unwrap()]);
    wait_for(Duration::from_secs(30), || {
        d.log().contains("replayed 1 MRT files").then_some(())
    })
    .expect("the RIB replayed");
    d
}

/// A ROA for 1.51.7.0/24 of another AS in the daemon's VRP file (`dir/vrps.json`): the
/// hijack's route becomes RPKI invalid.
fn roa_against_the_hijack(dir: &Path) {
    let json = std::fs::read_to_string(dir.join("vrps.json"))
        .unwrap()
        .replace(
            r#"{ "prefix": "198.51.100.0/24","#,
            r#"{ "prefix": "1.51.7.0/24", "maxLength": 24, "asn": 64999, "ta": "lab" },
    { "prefix": "198.51.100.0/24","#,
        );
    std::fs::write(dir.join("vrps.json"), json).unwrap();
}

fn decision(d: &Daemon, prefix: &str, outcome: &str) -> Value {
    wait_for(Duration::from_secs(30), || {
        let v: Value = serde_json::from_str(&http_get(d.api, "/v1/decisions").ok()?).ok()?;
        v.as_array()?
            .iter()
            .rev()
            .find(|x| x["prefix"] == prefix && x["outcome"] == outcome)
            .cloned()
    })
    .unwrap_or_else(|| panic!("no {outcome} decision for {prefix}:\n{}", d.log()))
}

#[test]
fn bird_filters_what_routewitness_quarantines_and_takes_it_back_on_release() {
    let Some(gobgp) = GoBgp::require() else {
        return;
    };
    if !Bird::require() {
        return;
    }
    let dir = scratch("act-bird");
    let bird_dir = scratch("bird");
    let conf = daemon_conf(
        &dir,
        &format!(
            "[[act.bird]]\nname = \"lab\"\nsocket = \"{}\"\nverify_timeout = \"3s\"",
            bird_dir.join("bird.ctl").display()
        ),
    );
    let d = start_daemon(&conf);
    let rpki = d.listening("RTR server for routers' RPKI on ");
    let quarantine = d.listening("quarantine feed over RTR on ");

    let bird_port = lab::free_port_on("127.65.0.1");
    let gobgp_port = lab::free_port_on("127.65.0.2");
    let rw = bird_snippet(&rpki.to_string(), &quarantine.to_string());
    let bird = Bird::start_in(bird_dir, &bird_conf(&rw, bird_port, gobgp_port));
    let g = lab::gobgp_peer(gobgp_port, ("127.65.0.1", 65001, bird_port), Some(d.bmp));
    let _ = gobgp;
    wait_protocols_up(&bird, &["rw_rpki", "rw_quarantine", "gobgp"]);

    // The VRPs arrive, as the daemon has them.
    let roas = bird.birdc("show route table rw_roa4");
    assert!(roas.contains("198.51.100.0/24-24 AS65002"), "{roas}");
    let status: Value = serde_json::from_str(&http_get(d.api, "/v1/status").unwrap()).unwrap();
    let feeds = status["act"]["feeds"].as_array().unwrap();
    assert_eq!(feeds[0]["name"], "rpki");
    assert_eq!(feeds[0]["vrps"], 6, "{status}");
    assert_eq!(
        feeds[0]["clients"][0]["version"], 1,
        "BIRD 2.0.12 speaks RTR v1: {status}"
    );

    // A hijack: a more-specific of the RIB's 1.51.0.0/16 with another origin. The
    // daemon holds it; BIRD filters it. A route of the established origin is left alone.
    g.add("1.51.7.0/24", &[65010, 666]);
    g.add("1.8.8.0/24", &[65010, 38345]);
    let held = decision(&d, "1.51.7.0/24", "quarantine");
    assert_eq!(held["reasons"][0]["rule"], "conflicts.sub_prefix", "{held}");
    wait_bird(&bird, "1.51.7.0/24", (true, false), "quarantined");
    wait_bird(&bird, "1.8.8.0/24", (false, true), "established origin");
    assert!(
        bird.log().contains("QUARANTINED 1.51.7.0/24 AS666"),
        "{}",
        bird.log()
    );
    let q = bird.birdc("show route table rw_quarantine4");
    assert!(q.contains("1.51.7.0/24-24 AS666"), "{q}");
    // The audit log: served in the feed, and verified at BIRD over its control socket.
    let served = action(&d, "rtr:quarantine", "quarantine", "served");
    assert_eq!(served["origin"], 666, "{served}");
    let verified = action(&d, "bird:lab", "quarantine", "verified");
    assert_eq!(verified["serial"], served["serial"], "{verified}");
    let ms = verified["latency_ms"].as_f64().unwrap();
    assert!(ms > 0.0 && ms < 3000.0, "{verified}");

    // Released through the API: the entry is withdrawn and BIRD takes the route.
    let (code, body) = http_post(
        d.api,
        "/v1/quarantine/1.51.7.0-24-AS666/release",
        Some(TOKEN),
        "{\"note\":\"checked with the origin\"}",
    );
    assert_eq!(code, 200, "{body}");
    wait_bird(&bird, "1.51.7.0/24", (false, true), "released");
    action(&d, "bird:lab", "release", "verified");
    // The daemon's own control-socket client, on the same BIRD: the route by `for`,
    // and `configure`.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use routewitness::act::bird::{route_prefixes, Bird as Ctl};
        let mut c = Ctl::connect(&bird.ctl, Duration::from_secs(2))
            .await
            .unwrap();
        assert!(c.banner.starts_with("BIRD 2."), "{}", c.banner);
        let r = c.command("show route for 1.51.7.0/24").await.unwrap();
        assert_eq!(route_prefixes(&r), vec!["1.51.7.0/24".parse().unwrap()]);
        let r = c.configure().await.unwrap();
        assert!(r.texts(3).any(|t| t.contains("Reconfigured")), "{r:?}");
        assert!(c.command("show nonsense").await.is_err());
    });
    // Verifications at BIRD are counted by the daemon's verifier, which polls BIRD on its
    // own schedule: read the status until the release's is counted (10 s at most).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status: Value = loop {
        let status: Value = serde_json::from_str(&http_get(d.api, "/v1/status").unwrap()).unwrap();
        let verified = status["act"]["birds"][0]["verified"].as_u64().unwrap_or(0);
        if verified >= 2 || std::time::Instant::now() > deadline {
            break status;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let b = &status["act"]["birds"][0];
    assert_eq!(b["connected"], true, "{status}");
    assert!(b["verified"].as_u64().unwrap() >= 2, "{status}");
    assert!(b["latency_p99_ms"].as_f64().is_some(), "{status}");

    // A VRP change re-filters: a ROA for 1.51.7.0/24 of another AS makes the route
    // invalid in the RPKI data BIRD takes from the daemon.
    roa_against_the_hijack(&dir);
    wait_bird(&bird, "1.51.7.0/24", (true, false), "RPKI invalid");
    let roas = bird.birdc("show route table rw_roa4");
    assert!(roas.contains("1.51.7.0/24-24 AS64999"), "{roas}");
    assert!(
        bird.log().contains("RPKI INVALID 1.51.7.0/24 AS666"),
        "{}",
        bird.log()
    );
    drop(g);
}

/// FRR's inbound route-map around routewitness's: RPKI invalid (from the daemon's RPKI
/// feed) denied, then `call RW-QUARANTINE`.
const FRR_POLICY: &str = "route-map RW-IN deny 10\n match rpki invalid\nexit\n\
                          route-map RW-IN permit 20\n call RW-QUARANTINE\nexit\n";

/// The origins of FRR's paths for `prefix`.
fn frr_origins(frr: &lab::FrrLab, prefix: &str) -> Vec<u32> {
    let out = frr.vtysh(&format!("show bgp ipv4 unicast {prefix} json"));
    routewitness::act::frr::origins(&out).unwrap_or_default()
}

fn wait_frr(frr: &lab::FrrLab, prefix: &str, origin: u32, present: bool, what: &str) {
    let ok = wait_for(Duration::from_secs(20), || {
        (frr_origins(frr, prefix).contains(&origin) == present).then_some(())
    });
    assert!(
        ok.is_some(),
        "{what}: {prefix} AS{origin} present = {}, wanted {present}\n{}\n{}",
        !present,
        frr.vtysh("show bgp ipv4 unicast"),
        frr.vtysh("show running-config")
    );
}

#[test]
fn frr_applies_the_quarantine_through_vtysh_and_takes_its_rpki_from_routewitness() {
    if GoBgp::require().is_none() || !lab::require_frr() || !lab::require_frr_rpki() {
        return;
    }
    let dir = scratch("act-frr");
    let frr_dir = scratch("frr");
    let vty = frr_dir.join("vty");
    let conf = daemon_conf(
        &dir,
        &format!(
            "[[act.frr]]\nname = \"lab\"\nvty_socket = \"{}\"\nverify_timeout = \"3s\"",
            vty.display()
        ),
    );
    let d = start_daemon(&conf);
    let rpki = d.listening("RTR server for routers' RPKI on ");
    let out = routewitness(&["act", "config", "frr", "--rtr-listen", &rpki.to_string()]);
    let rw = String::from_utf8(out.stdout).unwrap();
    let frr = lab::FrrLab::start_with(
        frr_dir,
        lab::FrrOptions {
            gobgp_bmp: Some(d.bmp),
            global: format!("{rw}{FRR_POLICY}"),
            ipv4: "  neighbor 127.65.0.2 route-map RW-IN in".into(),
            ..Default::default()
        },
    );
    // FRR's RTR client takes the daemon's VRPs.
    let ok = wait_for(Duration::from_secs(30), || {
        frr.vtysh("show rpki prefix-table")
            .contains("198.51.100.0")
            .then_some(())
    });
    assert!(
        ok.is_some(),
        "{}\n{}",
        frr.vtysh("show rpki cache-connection"),
        frr.frr.log()
    );
    // routewitness has written its route-map.
    wait_for(Duration::from_secs(20), || {
        let s: Value = serde_json::from_str(&http_get(d.api, "/v1/status").ok()?).ok()?;
        (s["act"]["frrs"][0]["reachable"] == true).then_some(())
    })
    .expect("FRR reachable through vtysh");

    let g = &frr.gobgp;
    g.add("1.51.7.0/24", &[65010, 666]);
    g.add("1.8.8.0/24", &[65010, 38345]);
    let held = decision(&d, "1.51.7.0/24", "quarantine");
    assert_eq!(held["reasons"][0]["rule"], "conflicts.sub_prefix", "{held}");
    let verified = action(&d, "frr:lab", "quarantine", "verified");
    assert_eq!(verified["prefix"], "1.51.7.0/24", "{verified}");
    wait_frr(&frr, "1.51.7.0/24", 666, false, "quarantined");
    wait_frr(&frr, "1.8.8.0/24", 38345, true, "established origin");
    let running = frr.vtysh("show running-config");
    assert!(
        running.contains("route-map RW-QUARANTINE deny 1"),
        "{running}"
    );
    assert!(running.contains("permit _666$"), "{running}");

    let (code, body) = http_post(
        d.api,
        "/v1/quarantine/1.51.7.0-24-AS666/release",
        Some(TOKEN),
        "",
    );
    assert_eq!(code, 200, "{body}");
    action(&d, "frr:lab", "release", "verified");
    wait_frr(&frr, "1.51.7.0/24", 666, true, "released");
    assert!(!frr
        .vtysh("show running-config")
        .contains("route-map RW-QUARANTINE deny 1"));

    // A VRP change re-filters, through FRR's own RPKI from the daemon.
    roa_against_the_hijack(&dir);
    wait_frr(&frr, "1.51.7.0/24", 666, false, "RPKI invalid");
}

#[test]
fn act_dry_run_prints_what_would_be_pushed_from_the_state() {
    let dir = scratch("act-dry-run");
    let state = dir.join("state.sqlite");
    let conf = dir.join("routewitness.toml");
    std::fs::write(
        &conf,
        format!(
            "[state]\npath = \"{}\"\n[[act.frr]]\nname = \"edge\"\nvty_socket = \"/nonexistent\"\n",
            state.display()
        ),
    )
    .unwrap();
    // The bundled demo feed, judged under the default policy: routes held.
    let mut d = Daemon::start(&["--state", state.to_str().unwrap()]);
    wait_for(Duration::from_secs(60), || {
        d.log().contains("judging BMP now").then_some(())
    })
    .expect("the demo feed replayed");
    let held: Value = serde_json::from_str(&http_get(d.api, "/v1/quarantine").unwrap()).unwrap();
    let mut claims: Vec<(String, u64)> = held
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["origin"].is_u64())
        .map(|h| {
            (
                h["prefix"].as_str().unwrap().to_string(),
                h["origin"].as_u64().unwrap(),
            )
        })
        .collect();
    claims.sort();
    claims.dedup();
    assert!(claims.len() > 10, "{held}");
    d.terminate();
    let out = routewitness(&["act", "--dry-run", "--config", conf.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("Quarantine feed (RTR): {} VRPs", claims.len())),
        "{} claims held:\n{}",
        claims.len(),
        &text[..text.len().min(400)]
    );
    let (p, o) = &claims[0];
    let len = p.split('/').nth(1).unwrap();
    assert!(
        text.contains(&format!("  {p}-{len} AS{o}   (")),
        "{p} AS{o}"
    );
    assert!(text.contains("FRR edge (vtysh --vty_socket /nonexistent)"));
    assert!(text.contains("bgp as-path access-list RWQ-1 seq 5 permit _"));
    // Nothing was touched: the state file still holds the same (without a
    // configuration, there is no FRR to print).
    let again = routewitness(&["act", "--dry-run", "--state", state.to_str().unwrap()]);
    let feed = &text[..text.find("\nFRR edge").unwrap()];
    assert_eq!(
        String::from_utf8_lossy(&again.stdout).trim_end(),
        feed.trim_end()
    );
}

/// A BGP channel without `import table`: BIRD 2.0.12 does not re-filter it when a ROA
/// table changes, so the daemon runs `reload in` after each change (`reload_in`). An
/// operator's hold on a route BIRD has accepted already is then filtered and verified.
#[test]
fn bird_without_an_import_table_is_reloaded_after_each_change() {
    let Some(_gobgp) = GoBgp::require() else {
        return;
    };
    if !Bird::require() {
        return;
    }
    let dir = scratch("act-bird-reload");
    let bird_dir = scratch("bird");
    let conf = daemon_conf(
        &dir,
        &format!(
            "[[act.bird]]\nname = \"lab\"\nsocket = \"{}\"\nreload_in = [\"gobgp\"]\n\
             verify_timeout = \"3s\"",
            bird_dir.join("bird.ctl").display()
        ),
    );
    let d = start_daemon(&conf);
    let rpki = d.listening("RTR server for routers' RPKI on ");
    let quarantine = d.listening("quarantine feed over RTR on ");
    let (bird_port, gobgp_port) = (
        lab::free_port_on("127.65.0.1"),
        lab::free_port_on("127.65.0.2"),
    );
    let rw = bird_snippet(&rpki.to_string(), &quarantine.to_string());
    let bird = Bird::start_in(bird_dir, &bird_conf_with(&rw, bird_port, gobgp_port, ""));
    let g = lab::gobgp_peer(gobgp_port, ("127.65.0.1", 65001, bird_port), Some(d.bmp));
    wait_protocols_up(&bird, &["rw_rpki", "rw_quarantine", "gobgp"]);
    g.add("1.8.8.0/24", &[65010, 38345]);
    wait_bird(&bird, "1.8.8.0/24", (false, true), "accepted first");
    // Once the daemon has the route (404 until then), an operator holds it.
    let held = wait_for(Duration::from_secs(20), || {
        let (code, _) = http_post(
            d.api,
            "/v1/quarantine/1.8.8.0-24-AS38345/hold",
            Some(TOKEN),
            "{\"note\":\"test\"}",
        );
        (code == 200).then_some(())
    });
    assert!(held.is_some(), "the hold was refused:\n{}", d.log());
    wait_bird(&bird, "1.8.8.0/24", (true, false), "held by an operator");
    let reload = action(&d, "bird:lab", "reload-in", "done");
    assert!(
        reload["detail"].as_str().unwrap().starts_with("gobgp ("),
        "{reload}"
    );
    action(&d, "bird:lab", "quarantine", "verified");
}

/// The caps stop acting: with at most one claim a minute, a second hijack is held by
/// the judge but not served, the status says why, and a resume serves it.
#[test]
fn a_cap_stops_acting_until_an_operator_resumes() {
    let Some(gobgp) = GoBgp::require() else {
        return;
    };
    let dir = scratch("act-caps");
    let conf = daemon_conf(&dir, "max_quarantined_per_minute = 1");
    let d = start_daemon(&conf);
    let g = gobgp.start(d.bmp);
    g.add("1.51.7.0/24", &[65010, 666]);
    decision(&d, "1.51.7.0/24", "quarantine");
    let status = |d: &Daemon| -> Value {
        serde_json::from_str(&http_get(d.api, "/v1/status").unwrap()).unwrap()
    };
    wait_for(Duration::from_secs(10), || {
        (status(&d)["act"]["served_claims"] == 1).then_some(())
    })
    .expect("the first claim served");
    g.add("1.51.8.0/24", &[65010, 666]);
    decision(&d, "1.51.8.0/24", "quarantine");
    let s = wait_for(Duration::from_secs(10), || {
        let s = status(&d);
        s["act"]["stopped"].is_object().then_some(s)
    })
    .expect("acting stopped");
    assert_eq!(s["act"]["served_claims"], 1, "{s}");
    assert_eq!(s["act"]["quarantined_claims"], 2, "{s}");
    assert_eq!(s["act"]["stopped"]["waiting"], 1, "{s}");
    assert!(d.log().contains("acting STOPPED"), "{}", d.log());
    // Resuming needs the token; then the waiting claim is served.
    assert_eq!(http_post(d.api, "/v1/act/resume", None, "").0, 401);
    let (code, body) = http_post(d.api, "/v1/act/resume", Some(TOKEN), "");
    assert_eq!(code, 200, "{body}");
    wait_for(Duration::from_secs(10), || {
        let s = status(&d);
        (s["act"]["served_claims"] == 2 && s["act"]["stopped"].is_null()).then_some(())
    })
    .expect("both served after the resume");
}

/// Issue 18, point 3: with `act.rtr_routers` set, the RPKI feed serves only those
/// routers: a client from another address gets an Error Report and the close, not data.
#[test]
fn the_rpki_feed_serves_only_the_routers_listed() {
    use routewitness::rpki::rtr::{decode, encode_query, Pdu};
    use std::io::{Read, Write};
    let dir = scratch("rtr-allow");
    let conf = daemon_conf(&dir, "rtr_routers = [\"127.0.0.2\"]");
    let d = Daemon::start_in(&dir, &["--config", conf.to_str().unwrap()]);
    let rpki = d.listening("RTR server for routers' RPKI on ");
    let mut s = std::net::TcpStream::connect(rpki).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(&encode_query(1, None));
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    match decode(&got) {
        Ok(Some((Pdu::ErrorReport { text, .. }, _))) => {
            assert!(text.contains("not enabled"), "{text}")
        }
        other => panic!("not refused: {other:?} ({} bytes)", got.len()),
    }
}
