//! `cargo bench --bench alerts`: alerts delivered to a local receiver (issue 7).
//!
//! 1. Sustained: the bundled demo feed (Route Views 2014 RIB slice and the 2008 update
//!    dumps, the default policy, 723k VRPs) raises one alert per held claim; every one
//!    goes to a receiver on 127.0.0.1 answering 200, signed (ed25519). Printed: alerts
//!    delivered per second (first to last arrival at the receiver).
//! 2. Delay: the lab (RIB replayed, GoBGP's Loc-RIB over BMP) with 100 hijacks announced
//!    one at a time (1.51.X.0/24 by AS666, more-specifics of the RIB's 1.51.0.0/16).
//!    Printed, p50 / p99 / max: from the alert entering the outbox (the decision's batch,
//!    the daemon's clock) to the receiver's 200 (`created_ms` to `delivered_ms` of
//!    `/v1/alerts`), and from GoBGP's announcement to the receiver having it.
//!
//! Needs gobgpd for part 2. Nothing here asserts a speed.

#[path = "../tests/lab/mod.rs"]
mod lab;

use lab::{http_get, repo_file, scratch, wait_for, Daemon, Mode, Receiver};
use routewitness::act::verify::quantile;
use std::path::Path;
use std::time::{Duration, Instant};

fn summary(name: &str, mut v: Vec<f64>) {
    let n = v.len();
    let p50 = quantile(&mut v, 0.5).unwrap_or(f64::NAN);
    let p99 = quantile(&mut v, 0.99).unwrap_or(f64::NAN);
    let max = quantile(&mut v, 1.0).unwrap_or(f64::NAN);
    println!("  {name:<48} p50 {p50:7.1} ms   p99 {p99:7.1} ms   max {max:7.1} ms   (n = {n})");
}

/// A signing key file in `dir`; the `[alerts]` section sending everything to `url`.
fn alerts_section(dir: &Path, url: &str) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_routewitness"))
        .arg("keygen")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let sk = text
        .lines()
        .find_map(|l| l.strip_prefix("secret_key:"))
        .unwrap();
    std::fs::write(dir.join("signing.key"), sk.trim()).unwrap();
    format!(
        "[alerts]\nsigning_keys = [\"signing.key\"]\n[[alerts.webhook]]\nname = \"bench\"\n\
         url = \"http://{url}/hook\"\n"
    )
}

fn alerts(d: &Daemon) -> serde_json::Value {
    serde_json::from_str(&http_get(d.api, "/v1/alerts").unwrap_or_default()).unwrap_or_default()
}

fn main() {
    println!("alerts over signed webhooks to a receiver on 127.0.0.1 (2-core machine)");
    // 1. Sustained, on the demo feed.
    let r = Receiver::start(Mode::Ok);
    let dir = scratch("bench-alerts");
    // The repository's demo feed, read from where it is.
    let demo = repo_file("feeds/demo-mrt.toml");
    let conf = dir.join("routewitness.toml");
    std::fs::write(
        &conf,
        format!(
            "feeds = [\"feeds/bmp.toml\", \"{}\"]\n[api]\nlisten = \"127.0.0.1:0\"\n\
             [state]\npath = \"state.sqlite\"\n{}",
            demo.display(),
            alerts_section(&dir, &r.addr.to_string())
        ),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("feeds")).unwrap();
    std::fs::write(
        dir.join("feeds/bmp.toml"),
        "type = \"bmp\"\nlisten = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let t = Instant::now();
    let d = Daemon::start_in(&dir, &["--config", conf.to_str().unwrap()]);
    let done = wait_for(Duration::from_secs(300), || {
        let a = alerts(&d);
        let s = &a["destinations"][0];
        (d.log().contains("judging BMP now")
            && s["pending"] == 0
            && s["delivered"].as_u64().unwrap_or(0) > 0)
            .then(|| s["delivered"].as_u64().unwrap_or(0))
    });
    let got = r.got();
    match (done, got.first(), got.last()) {
        (Some(n), Some(first), Some(last)) => {
            let span = last.at.duration_since(first.at).as_secs_f64();
            println!(
                "  demo feed: {n} alerts delivered (signed, one request each) in {span:.2} s: \
                 {:.0} alerts/s; all delivered {:.1} s after the daemon started",
                n as f64 / span.max(1e-9),
                t.elapsed().as_secs_f64()
            );
        }
        _ => println!("  demo feed: not all delivered within 300 s"),
    }
    drop(d);

    // 2. Delay, one hijack at a time.
    let Some(gobgp) = lab::GoBgp::require() else {
        return;
    };
    let r = Receiver::start(Mode::Ok);
    let dir = scratch("bench-alerts-lab");
    let head = lab::rib_and_gobgp_feeds(&dir);
    let conf = dir.join("routewitness.toml");
    std::fs::write(
        &conf,
        format!(
            "{head}[rpki]\nvrps = \"vrps.json\"\n[api]\nlisten = \"127.0.0.1:0\"\n\
             [state]\npath = \"state.sqlite\"\n{}types = [\"hijack.suspected\"]\n",
            alerts_section(&dir, &r.addr.to_string())
        ),
    )
    .unwrap();
    let d = Daemon::start_in(&dir, &["--config", conf.to_str().unwrap()]);
    wait_for(Duration::from_secs(60), || {
        d.log().contains("replayed 1 MRT files").then_some(())
    })
    .expect("the RIB replayed");
    let g = gobgp.start(d.bmp);
    let mut end_to_end = Vec::new();
    for x in 1..=100u32 {
        let before = r.got().len();
        let t = Instant::now();
        g.add(&format!("1.51.{x}.0/24"), &[65010, 666]);
        let ok = wait_for(Duration::from_secs(10), || {
            (r.got().len() > before).then_some(())
        });
        if ok.is_some() {
            end_to_end.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    let a = alerts(&d);
    let delays: Vec<f64> = a["alerts"]
        .as_array()
        .map(|v| {
            v.iter()
                .filter_map(|x| {
                    Some((x["delivered_ms"].as_i64()? - x["created_ms"].as_i64()?) as f64)
                })
                .collect()
        })
        .unwrap_or_default();
    summary("alert in the outbox -> receiver's 200", delays);
    summary("GoBGP announces -> the receiver has the alert", end_to_end);
}
