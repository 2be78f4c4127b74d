//! `cargo bench --bench rtr`: how long the RTR client takes, from TCP connect, to have the
//! bundled 723,521-VRP snapshot as a usable set (received to End of Data, then indexed),
//! from the real StayRTR (Debian's 0.5.1) on loopback; and, against the same StayRTR in
//! the same run, BIRD 2's own RTR client (Debian's bird2), timed from its start until
//! `birdc show protocols all` reports every VRP imported (polled every 10 ms: that is the
//! resolution of BIRD's figure). Then the other way round (issue 6): BIRD taking the same
//! set from routewitness's own RTR server (`act::rtr_server`, in this process) and from
//! StayRTR, timed the same way. Three rounds each, interleaved; medians and all rounds
//! printed. Needs `stayrtr`, `bird` and `birdc` on PATH. Nothing here asserts a speed.

use routewitness::act::rtr_server::{entries_of, serve, Feed, ServeConfig};
use routewitness::cli::fixtures_dir;
use routewitness::rpki::rtr::{RtrClient, RtrConfig, RtrEvent};
use routewitness::rpki::vrps::{load, to_rpki_client_json, LoadOptions};
use routewitness::rpki::VrpIndex;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < timeout, "{what}: not within {timeout:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// routewitness: connect to End of Data, then the index built.
fn ours(port: u16, version: u8) -> (f64, f64, usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let mut cfg = RtrConfig::new(&format!("127.0.0.1:{port}"));
    cfg.version = version;
    let mut client = RtrClient::new(cfg);
    let t = Instant::now();
    let mut got = None;
    rt.block_on(client.run(
        |e| {
            if let RtrEvent::Data(d) = e {
                if got.is_none() {
                    got = Some((t.elapsed().as_secs_f64(), d));
                    let _ = stop_tx.send(true);
                }
            }
        },
        |_| {},
        stop,
    ));
    let (received, data) = got.expect("data from StayRTR");
    let vrps = data.vrps();
    let index = VrpIndex::from_vrps(vrps);
    let usable = t.elapsed().as_secs_f64();
    (received, usable, index.vrps.len())
}

/// BIRD: its start until every VRP is imported into its ROA tables.
fn bird(port: u16, dir: &Path, total: usize) -> f64 {
    let conf = dir.join("bird.conf");
    std::fs::write(
        &conf,
        format!(
            "router id 127.0.0.1;\nroa4 table r4;\nroa6 table r6;\n\
             protocol rpki stayrtr {{\n  roa4 {{ table r4; }};\n  roa6 {{ table r6; }};\n  \
             remote 127.0.0.1 port {port};\n  retry keep 5; refresh keep 3600; expire keep 7200;\n}}\n"
        ),
    )
    .unwrap();
    let sock = dir.join("bird.ctl");
    let _ = std::fs::remove_file(&sock);
    let t = Instant::now();
    let _bird = Killed(
        Command::new("bird")
            .args(["-f", "-c"])
            .arg(&conf)
            .arg("-s")
            .arg(&sock)
            .arg("-P")
            .arg(dir.join("bird.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("bird"),
    );
    let imported = || -> usize {
        let out = Command::new("birdc")
            .arg("-s")
            .arg(&sock)
            .args(["show", "protocols", "all", "stayrtr"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        out.lines()
            .filter_map(|l| l.trim().strip_prefix("Routes:"))
            .filter_map(|r| r.split_whitespace().next()?.parse::<usize>().ok())
            .sum()
    };
    wait("BIRD's import", Duration::from_secs(120), || {
        imported() >= total
    });
    t.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let dir: PathBuf = std::env::temp_dir().join(format!("rw-bench-rtr-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let set = load(
        &fixtures_dir().join("vrp/rpki-client_20250720T093135Z.json.bz2"),
        LoadOptions::default(),
    )
    .expect("bundled VRPs");
    let total = set.vrps.len();
    // StayRTR drops VRPs whose `expires` has passed (all of these, July 2025): serve
    // them without it.
    let json = dir.join("vrps.json");
    std::fs::write(
        &json,
        to_rpki_client_json(&set, "2025-07-20T09:31:35Z", false),
    )
    .unwrap();
    let port = free_port();
    let log = dir.join("stayrtr.log");
    let _stayrtr = Killed(
        Command::new("stayrtr")
            .args(["-bind", &format!("127.0.0.1:{port}")])
            .args(["-metrics.addr", &format!("127.0.0.1:{}", free_port())])
            .arg("-cache")
            .arg(&json)
            .args(["-checktime=false", "-refresh", "3600"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("stayrtr"),
    );
    wait("StayRTR loading", Duration::from_secs(120), || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("Server started"))
    });
    println!("RTR benchmark: {total} VRPs from StayRTR 0.5.1 on loopback (2-core machine)");
    // Rounds interleaved, so drift on the machine affects all three alike.
    let mut ours_v = [(Vec::new(), Vec::new()), (Vec::new(), Vec::new())];
    let mut birds = Vec::new();
    for _ in 0..3 {
        for (i, version) in [1u8, 2].into_iter().enumerate() {
            let (r, u, n) = ours(port, version);
            assert_eq!(n, total, "routewitness got every VRP");
            ours_v[i].0.push(r);
            ours_v[i].1.push(u);
        }
        birds.push(bird(port, &dir, total));
    }
    let fmt = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.2}"))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    for (i, (rx, usable)) in ours_v.iter().enumerate() {
        println!(
            "  routewitness (RTR v{}): End of Data after {:.2} s, usable (indexed) after {:.2} s   [{} | {}]",
            i + 1,
            median(rx.clone()),
            median(usable.clone()),
            fmt(rx),
            fmt(usable)
        );
    }
    println!(
        "  BIRD 2.0.12 (RTR v1):  all {total} imported after {:.2} s   [{}]",
        median(birds.clone()),
        fmt(&birds)
    );
    println!(
        "  BIRD / routewitness, same version (v1, usable): {:.2}x",
        median(birds) / median(ours_v[0].1.clone())
    );

    // routewitness's server, in this process on its own runtime, serving the same set.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let feed = std::sync::Arc::new(Feed::new("bench", 1, Default::default()));
    let (v, a) = entries_of(&set.vrps, &set.aspas, None);
    feed.replace(v, a);
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let ours_port = listener.local_addr().unwrap().port();
    let (_stop, stop) = tokio::sync::watch::channel(false);
    let cfg = ServeConfig {
        max_clients: 8,
        notify_interval: Duration::from_secs(60),
        write_timeout: Duration::from_secs(30),
    };
    rt.spawn(serve(listener, feed, cfg, None, stop));
    let (mut from_ours, mut from_stayrtr) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        from_ours.push(bird(ours_port, &dir, total));
        from_stayrtr.push(bird(port, &dir, total));
    }
    println!("BIRD 2.0.12 taking the {total} VRPs (RTR v1), start to all imported:");
    println!(
        "  from routewitness's RTR server: {:.2} s   [{}]",
        median(from_ours.clone()),
        fmt(&from_ours)
    );
    println!(
        "  from StayRTR 0.5.1:             {:.2} s   [{}]",
        median(from_stayrtr.clone()),
        fmt(&from_stayrtr)
    );
    println!(
        "  StayRTR / routewitness: {:.2}x",
        median(from_stayrtr) / median(from_ours)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
