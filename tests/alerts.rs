//! Alerts over signed webhooks from the running daemon to real HTTP receivers on
//! 127.0.0.1 (threads of this test): a receiver that is busy (503 with Retry-After), one
//! that is gone (410), and kill -9 of the daemon with alerts pending. Every request's
//! signature is checked by the independent implementation of tests/webhook_check.py.

mod lab;

use lab::{http_get, repo_file, scratch, wait_for, Daemon, GoBgp, Got, Mode, Receiver};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The standardwebhooks wheel (see tests/webhook.rs).
fn wheel() -> Option<PathBuf> {
    let w = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/python/standardwebhooks-1.1.0-py3-none-any.whl");
    if w.is_file() {
        return Some(w);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{} is missing (scripts/test fetches it)", w.display());
    }
    eprintln!(
        "SKIPPED: {} is missing (scripts/test fetches it)",
        w.display()
    );
    None
}

/// Checks `g`'s signature with the independent implementation and `key` (whpk_).
fn verified(wheel: &Path, key: &str, g: &Got) -> bool {
    let f = std::env::temp_dir().join(format!(
        "rw-alert-{}-{}.json",
        std::process::id(),
        g.body.len()
    ));
    std::fs::write(&f, &g.body).unwrap();
    let h = |k: &str| g.headers.get(k).cloned().unwrap_or_default();
    let out = std::process::Command::new("python3")
        .arg(repo_file("tests/webhook_check.py"))
        .arg(wheel)
        .args([
            "verify",
            key,
            &h("webhook-id"),
            &h("webhook-timestamp"),
            &h("webhook-signature"),
        ])
        .arg(&f)
        .output()
        .unwrap();
    out.status.success()
}

/// The daemon's configuration in `dir`: the RIB replayed (it establishes who originates
/// what), GoBGP's Loc-RIB over BMP, the lab policy, state in `dir`, hijack alerts to
/// `busy` and to `gone`, signed with a fresh key; returns (config, public key).
fn conf(dir: &Path, busy: SocketAddr, gone: SocketAddr, slow: SocketAddr) -> (PathBuf, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_routewitness"))
        .arg("keygen")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let key = |p: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(p))
            .unwrap()
            .trim()
            .to_string()
    };
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("signing.key"), key("secret_key:")).unwrap();
    let head = lab::rib_and_gobgp_feeds(dir);
    let conf = dir.join("routewitness.toml");
    std::fs::write(
        &conf,
        format!(
            r#"{head}[rpki]
vrps = "vrps.json"
[api]
listen = "127.0.0.1:0"
[state]
path = "state.sqlite"
[alerts]
signing_keys = ["signing.key"]
[[alerts.webhook]]
name = "noc"
url = "http://{busy}/hook"
types = ["hijack.suspected"]
timeout = "2s"
[[alerts.webhook]]
name = "old"
url = "http://{gone}/hook"
format = "slack"
types = ["hijack.suspected"]
[[alerts.webhook]]
name = "slow"
url = "http://{slow}/hook"
types = ["hijack.suspected"]
prefixes = ["1.51.7.0/24"]
timeout = "2s"
"#
        ),
    )
    .unwrap();
    (conf, key("public_key:"))
}

fn alerts_of(d: &Daemon) -> Value {
    serde_json::from_str(&http_get(d.api, "/v1/alerts").unwrap()).unwrap()
}

#[test]
fn alerts_are_signed_retried_disabled_on_410_and_survive_kill_9() {
    let Some(wheel) = wheel() else {
        return;
    };
    let Some(gobgp) = GoBgp::require() else {
        return;
    };
    let busy = Receiver::start(Mode::Busy);
    let gone = Receiver::start(Mode::Gone);
    let slow = Receiver::start(Mode::Hang);
    let dir = scratch("alerts");
    let (conf, public) = conf(&dir, busy.addr, gone.addr, slow.addr);
    let mut d = Daemon::start_in(&dir, &["--config", conf.to_str().unwrap()]);
    wait_for(Duration::from_secs(30), || {
        d.log().contains("replayed 1 MRT files").then_some(())
    })
    .expect("the RIB replayed");
    let g = gobgp.start(d.bmp);
    // A hijack (a more-specific of 1.51.0.0/16 by AS666): one alert to each destination.
    g.add("1.51.7.0/24", &[65010, 666]);

    // The busy receiver is asked again after its Retry-After, and then accepts.
    wait_for(Duration::from_secs(20), || {
        (busy.got().len() >= 2).then_some(())
    })
    .expect("the busy receiver asked twice");
    let tries = busy.got();
    assert!(
        tries[1].at.duration_since(tries[0].at) >= Duration::from_millis(900),
        "Retry-After: 1 was not honoured"
    );
    busy.set(Mode::Ok);
    let a = wait_for(Duration::from_secs(20), || {
        let a = alerts_of(&d);
        (a["destinations"][0]["delivered"] == 1).then_some(a)
    })
    .expect("delivered once the receiver accepts");
    assert!(
        a["destinations"][0]["failed_attempts"].as_u64().unwrap() >= 2,
        "{a}"
    );
    // The same id each time (idempotency key), the payload as specified, signed.
    let got = busy.got();
    let ids: Vec<&String> = got.iter().map(|g| &g.headers["webhook-id"]).collect();
    assert!(ids.iter().all(|i| *i == ids[0]), "{ids:?}");
    let payload: Value = serde_json::from_slice(&got.last().unwrap().body).unwrap();
    assert_eq!(payload["type"], "hijack.suspected");
    assert_eq!(payload["data"]["prefix"], "1.51.7.0/24");
    assert_eq!(payload["data"]["origin"], 666);
    assert_eq!(
        payload["data"]["reasons"][0]["rule"],
        "conflicts.sub_prefix"
    );
    assert!(payload["data"]["summary"]
        .as_str()
        .unwrap()
        .contains("1.51.7.0/24"));
    for g in &got {
        assert!(verified(&wheel, &public, g), "signature of {:?}", g.headers);
    }
    // The gone receiver was asked once, and its destination is disabled.
    assert_eq!(gone.got().len(), 1);
    let slack: Value = serde_json::from_slice(&gone.got()[0].body).unwrap();
    assert!(
        slack["text"].as_str().unwrap().contains("hijack.suspected"),
        "{slack}"
    );
    let a = alerts_of(&d);
    assert_eq!(a["destinations"][1]["disabled"], true, "{a}");
    // The slow receiver: the 2 s timeout is an error and a retry; then 429 with
    // Retry-After, honoured; then delivered.
    let a = wait_for(Duration::from_secs(20), || {
        let a = alerts_of(&d);
        a["destinations"][2]["last_error"]
            .as_str()
            .is_some_and(|e| e.to_ascii_lowercase().contains("time"))
            .then_some(a)
    })
    .expect("the timeout reported");
    assert_eq!(a["destinations"][2]["delivered"], 0, "{a}");
    slow.set(Mode::TooMany);
    let n = slow.got().len();
    wait_for(Duration::from_secs(20), || {
        (slow.got().len() >= n + 2).then_some(())
    })
    .expect("asked again after the 429");
    slow.set(Mode::Ok);
    let s = slow.got();
    assert!(
        s[n + 1].at.duration_since(s[n].at) >= Duration::from_millis(900),
        "Retry-After: 1 after 429 was not honoured"
    );
    wait_for(Duration::from_secs(20), || {
        (alerts_of(&d)["destinations"][2]["delivered"] == 1).then_some(())
    })
    .expect("delivered to the slow receiver in the end");

    // kill -9 with an alert pending: the receiver drops every request meanwhile.
    busy.set(Mode::Drop);
    let before = busy.got().len();
    g.add("1.51.8.0/24", &[65010, 666]);
    wait_for(Duration::from_secs(20), || {
        (busy.got().len() > before).then_some(())
    })
    .expect("the second alert attempted");
    d.kill();
    drop(g);
    busy.set(Mode::Ok);
    let d = Daemon::start_in(&dir, &["--config", conf.to_str().unwrap()]);
    let a = wait_for(Duration::from_secs(30), || {
        let a = alerts_of(&d);
        (a["destinations"][0]["delivered"] == 2).then_some(a)
    })
    .unwrap_or_else(|| {
        panic!(
            "the pending alert was not delivered after the restart:\n{}",
            d.log()
        )
    });
    assert_eq!(a["destinations"][0]["pending"], 0, "{a}");
    let delivered: Vec<Got> = busy.got();
    let last: Value = serde_json::from_slice(&delivered.last().unwrap().body).unwrap();
    assert_eq!(last["data"]["prefix"], "1.51.8.0/24", "{last}");
    assert!(verified(&wheel, &public, delivered.last().unwrap()));
    let mut ids: Vec<String> = delivered
        .iter()
        .map(|g| g.headers["webhook-id"].clone())
        .collect();
    ids.dedup();
    assert_eq!(ids.len(), 2, "two alerts, each with its own id: {ids:?}");
}

/// An RPKI source that disagrees with the others (a quorum of three StayRTRs, one lying)
/// is an alert, with its differences.
#[test]
fn a_lying_rpki_source_raises_an_alert() {
    if !lab::StayRtr::require() {
        return;
    }
    let (json, lie) = lab::lab_vrps_and_a_lie();
    let caches = [
        lab::StayRtr::start(&json, &[]),
        lab::StayRtr::start(&json, &[]),
        lab::StayRtr::start(&lie, &[]),
    ];
    let r = Receiver::start(Mode::Ok);
    let dir = scratch("alerts-rpki");
    std::fs::create_dir_all(dir.join("feeds")).unwrap();
    std::fs::write(
        dir.join("feeds/bmp.toml"),
        "type = \"bmp\"\nlisten = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let rtr: Vec<String> = caches.iter().map(|c| format!("\"{}\"", c.addr)).collect();
    let conf = dir.join("routewitness.toml");
    std::fs::write(
        &conf,
        format!(
            "feeds = [\"feeds/bmp.toml\"]\n[rpki]\nrtr = [{}]\n[api]\nlisten = \"127.0.0.1:0\"\n\
             [state]\npath = \"\"\n[alerts]\n[[alerts.webhook]]\nname = \"noc\"\n\
             url = \"http://{}/hook\"\ntypes = [\"rpki.source_disagrees\", \"rpki.sudden_loss\"]\n",
            rtr.join(", "),
            r.addr
        ),
    )
    .unwrap();
    let d = Daemon::start_raw(&["--config", conf.to_str().unwrap()]);
    let got = wait_for(Duration::from_secs(40), || r.got().into_iter().next())
        .unwrap_or_else(|| panic!("no alert:\n{}", d.log()));
    let a: Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(a["type"], "rpki.source_disagrees", "{a}");
    assert_eq!(
        a["data"]["report"]["source"],
        format!("rtr:{}", caches[2].addr),
        "{a}"
    );
    assert_eq!(a["data"]["report"]["extra"], 1, "{a}");
    assert_eq!(a["data"]["report"]["missing"], 1, "{a}");
    // Unsigned (no signing key configured), and said so.
    assert!(!got.headers.contains_key("webhook-signature"));
    assert!(d.log().contains("alerts go out unsigned"), "{}", d.log());
    // Every cache loses 5 of its 6 VRPs at once (a trust anchor breaking): frozen, and
    // an alert.
    for c in &caches {
        c.serve(
            r#"{ "metadata": { "buildtime": "2026-11-25T13:15:41Z", "vrps": 1 },
            "roas": [ { "prefix": "100.64.1.0/24", "maxLength": 24, "asn": 65001, "ta": "lab" } ] }"#,
        );
    }
    let loss = wait_for(Duration::from_secs(30), || {
        r.got().into_iter().find_map(|g| {
            let a: Value = serde_json::from_slice(&g.body).ok()?;
            (a["type"] == "rpki.sudden_loss").then_some(a)
        })
    })
    .unwrap_or_else(|| panic!("no sudden-loss alert:\n{}", d.log()));
    // (The caches change one after another: the first set merged without one of them
    // already loses more than 10%.)
    assert_eq!(loss["data"]["had"], 6, "{loss}");
    assert!(loss["data"]["lost"].as_u64().unwrap() >= 1, "{loss}");
    assert!(loss["data"]["summary"]
        .as_str()
        .unwrap()
        .contains("kept for up to 1h"));
}

/// A router action that cannot be verified (BIRD's control socket is not there) and a
/// BMP session that ends are alerts too.
#[test]
fn a_failed_action_and_a_lost_bmp_session_raise_alerts() {
    let Some(gobgp) = GoBgp::require() else {
        return;
    };
    let r = Receiver::start(Mode::Ok);
    let dir = scratch("alerts-act");
    let head = lab::rib_and_gobgp_feeds(&dir);
    let conf = dir.join("routewitness.toml");
    std::fs::write(
        &conf,
        format!(
            "{head}[rpki]\nvrps = \"vrps.json\"\n[api]\nlisten = \"127.0.0.1:0\"\n[state]\n\
             path = \"\"\n[act]\nquarantine_listen = \"127.0.0.1:0\"\n\
             quarantine_routers = [\"127.0.0.1\"]\n[[act.bird]]\nname = \"edge\"\n\
             socket = \"{}\"\n[alerts]\n[[alerts.webhook]]\nname = \"noc\"\n\
             url = \"http://{}/hook\"\ntypes = [\"action.failed\", \"bmp.session_lost\"]\n",
            dir.join("no-such-bird.ctl").display(),
            r.addr
        ),
    )
    .unwrap();
    let d = Daemon::start_raw(&["--config", conf.to_str().unwrap()]);
    wait_for(Duration::from_secs(30), || {
        d.log().contains("replayed 1 MRT files").then_some(())
    })
    .expect("the RIB replayed");
    let g = gobgp.start(d.bmp);
    g.add("1.51.7.0/24", &[65010, 666]);
    let of = |kind: &str| {
        wait_for(Duration::from_secs(30), || {
            r.got().into_iter().find_map(|g| {
                let a: Value = serde_json::from_slice(&g.body).ok()?;
                (a["type"] == kind).then_some(a)
            })
        })
        .unwrap_or_else(|| panic!("no {kind} alert:\n{}", d.log()))
    };
    let failed = of("action.failed");
    assert_eq!(failed["data"]["action"]["target"], "bird:edge", "{failed}");
    assert_eq!(
        failed["data"]["action"]["prefix"], "1.51.7.0/24",
        "{failed}"
    );
    drop(g);
    let lost = of("bmp.session_lost");
    assert!(
        lost["data"]["summary"]
            .as_str()
            .unwrap()
            .contains("BMP session from 127.0.0.1"),
        "{lost}"
    );
}

/// An RTR cache that stops answering: once its data is older than its expire interval
/// (2 s here), the data is no longer used, and that is an alert.
#[test]
fn expired_rtr_data_raises_an_alert() {
    if !lab::StayRtr::require() {
        return;
    }
    let (json, _) = lab::lab_vrps_and_a_lie();
    let cache = lab::StayRtr::start(
        &json,
        &["-rtr.expire", "2", "-rtr.retry", "1", "-rtr.refresh", "1"],
    );
    let r = Receiver::start(Mode::Ok);
    let dir = scratch("alerts-expired");
    std::fs::create_dir_all(dir.join("feeds")).unwrap();
    std::fs::write(
        dir.join("feeds/bmp.toml"),
        "type = \"bmp\"\nlisten = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let conf = dir.join("routewitness.toml");
    std::fs::write(
        &conf,
        format!(
            "feeds = [\"feeds/bmp.toml\"]\n[rpki]\nrtr = [\"{}\"]\n[api]\nlisten = \"127.0.0.1:0\"\n\
             [state]\npath = \"\"\n[alerts]\n[[alerts.webhook]]\nname = \"noc\"\n\
             url = \"http://{}/hook\"\ntypes = [\"rpki.expired\"]\n",
            cache.addr, r.addr
        ),
    )
    .unwrap();
    let d = Daemon::start_raw(&["--config", conf.to_str().unwrap()]);
    wait_for(Duration::from_secs(30), || {
        d.log()
            .contains("6 VRPs, 2 ASPAs from RTR cache")
            .then_some(())
    })
    .unwrap_or_else(|| panic!("no RTR data:\n{}", d.log()));
    assert!(r.got().is_empty(), "no alert while the cache answers");
    drop(cache);
    let got = wait_for(Duration::from_secs(30), || r.got().into_iter().next())
        .unwrap_or_else(|| panic!("no alert:\n{}", d.log()));
    let a: Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(a["type"], "rpki.expired", "{a}");
    assert!(
        a["data"]["summary"]
            .as_str()
            .unwrap()
            .contains("no longer used"),
        "{a}"
    );
}

/// A daemon replaying the lab's GoBGP update dump under a policy whose prior weighs
/// one event and that does not warm up (its BIRD and ExaBGP peers fall below the trust
/// floor), with `webhooks` (TOML `[[alerts.webhook]]` tables) as its destinations.
fn trust_alert_daemon(name: &str, webhooks: &str) -> Daemon {
    let dir = scratch(name);
    lab::lab_feeds(
        &dir,
        "pre-policy",
        "fixtures/lab/gobgp-3.10_bgp4mp-updates.mrt",
    );
    std::fs::write(
        dir.join("policy.toml"),
        "name = \"lab-quick-trust\"\nwarmup = \"0s\"\n[anomalies]\nbogon = \"propagate\"\n\
         reserved_asn = \"propagate\"\n[trust]\nprior_weight = 1.0\n",
    )
    .unwrap();
    let conf = dir.join("routewitness.toml");
    std::fs::write(
        &conf,
        format!(
            "feeds = [\"feeds/bmp.toml\", \"feeds/rib.toml\"]\npolicy = \"policy.toml\"\n\
             [rpki]\nvrps = \"vrps.json\"\n[api]\nlisten = \"127.0.0.1:0\"\n[state]\npath = \"\"\n\
             [alerts]\n{webhooks}"
        ),
    )
    .unwrap();
    Daemon::start_raw(&["--config", conf.to_str().unwrap()])
}

/// A peer whose trust falls below the floor is an alert: the lab's GoBGP update dump
/// (its BIRD and ExaBGP peers each announce an RPKI-invalid route) under a policy whose
/// prior weighs one event and that does not warm up (a warming judge takes no trust).
#[test]
fn a_peer_falling_below_the_trust_floor_raises_an_alert() {
    let r = Receiver::start(Mode::Ok);
    let d = trust_alert_daemon(
        "alerts-trust",
        &format!(
            "[[alerts.webhook]]\nname = \"noc\"\nurl = \"http://{}/hook\"\n\
             types = [\"peer.trust_low\"]\n",
            r.addr
        ),
    );
    let got =
        wait_for(Duration::from_secs(15), || r.got().into_iter().next()).unwrap_or_else(|| {
            panic!(
                "no alert: {}",
                http_get(d.api, "/v1/peers").unwrap_or_default()
            )
        });
    let a: Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(a["type"], "peer.trust_low", "{a}");
    assert_eq!(a["data"]["peer"]["below_floor"], true, "{a}");
    assert!(
        a["data"]["peer"]["counts"]["rpki_invalid"]
            .as_u64()
            .unwrap()
            >= 1,
        "{a}"
    );
    // Once per peer while it stays below: once the demo feed is judged and the outbox
    // has delivered everything it holds, the receiver has one alert per peer below.
    let settled = wait_for(Duration::from_secs(15), || {
        let st: Value = serde_json::from_str(&http_get(d.api, "/v1/status").ok()?).ok()?;
        let al: Value = serde_json::from_str(&http_get(d.api, "/v1/alerts").ok()?).ok()?;
        let dest = &al["destinations"][0];
        (st["replayed_files"] == 1
            && dest["pending"] == 0
            && dest["delivered"].as_u64() == Some(r.got().len() as u64))
        .then_some(())
    });
    assert!(settled.is_some(), "the outbox did not settle: {}", d.log());
    let peers: Value = serde_json::from_str(&http_get(d.api, "/v1/peers").unwrap()).unwrap();
    let low = peers
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["below_floor"] == true)
        .count();
    assert_eq!(r.got().len(), low, "{peers}");
}

/// Issue 18, point 8: a destination answering 302 is a failed attempt (logged with its
/// Location), never followed with the signed alert; and a destination that hangs delays
/// only itself: each destination has its own worker. Three destinations get the same
/// `peer.trust_low` alerts (the lab's update dump, as above): one hangs 3 s per request,
/// one redirects to the healthy receiver, one is healthy.
#[test]
fn a_redirect_is_not_followed_and_a_hanging_destination_delays_only_itself() {
    let ok = Receiver::start(Mode::Ok);
    let hang = Receiver::start(Mode::Hang);
    let moved = Receiver::start(Mode::Redirect(ok.addr));
    let hook = |name: &str, addr: std::net::SocketAddr| {
        format!(
            "[[alerts.webhook]]\nname = \"{name}\"\nurl = \"http://{addr}/hook\"\n\
             types = [\"peer.trust_low\"]\ntimeout = \"10s\"\n"
        )
    };
    let d = trust_alert_daemon(
        "alerts-workers",
        &format!(
            "{}{}{}",
            hook("hang", hang.addr),
            hook("moved", moved.addr),
            hook("ok", ok.addr)
        ),
    );
    let first_ok = wait_for(Duration::from_secs(15), || ok.got().into_iter().next())
        .unwrap_or_else(|| panic!("nothing reached the healthy receiver:\n{}", d.log()));
    let first_hang = hang
        .got()
        .into_iter()
        .next()
        .expect("the hanging one was asked");
    // Before, one thread went through the rows in order: the healthy receiver waited the
    // 3 s the hanging one took for each of its alerts.
    assert!(
        first_ok.at < first_hang.at + Duration::from_secs(1),
        "the healthy receiver waited {:?} behind the hanging one",
        first_ok.at.duration_since(first_hang.at)
    );
    let a = wait_for(Duration::from_secs(15), || {
        let a: Value = serde_json::from_str(&http_get(d.api, "/v1/alerts").ok()?).ok()?;
        let m = &a["destinations"][1];
        (m["failed_attempts"].as_u64()? >= 1).then_some(a)
    })
    .unwrap_or_else(|| {
        panic!(
            "no failed attempt at the redirecting receiver:\n{}",
            d.log()
        )
    });
    let m = &a["destinations"][1];
    assert_eq!(m["delivered"], 0, "{a}");
    let why = m["last_error"].as_str().unwrap_or("");
    assert!(
        why.contains("302") && why.contains("/stolen") && why.contains("not followed"),
        "{why}"
    );
    assert!(
        ok.got().iter().all(|g| g.path == "/hook"),
        "the redirect was followed: {:?}",
        ok.got().iter().map(|g| &g.path).collect::<Vec<_>>()
    );
    assert!(!moved.got().is_empty());
}
