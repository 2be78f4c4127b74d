//! `cargo bench --bench replay`: prints throughput, latency and memory figures for replay
//! with ROV, side by side with the reference tools on the same files, in one run.
//!
//! Rows:
//! 1. an uncompressed update dump (the PCH BGP4MP_ET fixture decompressed and concatenated
//!    8 times: 108 MB, 4.6 M route events): `bgpdump -m FILE > /dev/null` (Debian's
//!    bgpdump), bgpkit-parser's own element iteration, and `replay` with ROV against the
//!    723k-VRP snapshot;
//! 2. the same on the bundled RIB slice (uncompressed) and on bzip2 update dumps;
//!    Each dump also runs with the full judge (default policy): the judge's cost over
//!    replay + ROV, and memory per stored route with and without it;
//! 3. the covering-VRP index: lookups/s on one core, routes in RIB order and shuffled,
//!    against prefix-trie's `cover()` on the same queries.
//!
//! Each timing is the best of `RW_BENCH_RUNS` runs (default 3). Nothing here asserts a
//! speed: these are figures to read, not tests.

use bgpkit_parser::BgpkitParser;
use ipnet::IpNet;
use routewitness::cli::{fixtures_dir, BUNDLED_VRPS};
use routewitness::ingest::{mrt, IngestEvent, PeerRegistry};
use routewitness::judge::Policy;
use routewitness::model::{Asn, RouteAction};
use routewitness::replay::{self, ReplayConfig};
use routewitness::rpki::{validate, vrps, AspaSet, LoadOptions, VrpIndex};
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

fn runs() -> usize {
    std::env::var("RW_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}

fn best<T>(mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::MAX;
    let mut last = None;
    for _ in 0..runs() {
        let t = Instant::now();
        let v = f();
        best = best.min(t.elapsed().as_secs_f64());
        last = Some(v);
    }
    (best, last.expect("at least one run"))
}

fn decompress(src: &Path) -> Vec<u8> {
    let mut r = routewitness::input::InputReader::open(src).expect("open fixture");
    let mut v = Vec::new();
    r.read_to_end(&mut v).expect("read fixture");
    v
}

fn bench_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    std::fs::create_dir_all(&d).expect("target/bench");
    d
}

/// Builds FILE = decompressed `src` repeated `times` times, once.
fn prepare(name: &str, src: &Path, times: usize) -> PathBuf {
    let out = bench_dir().join(name);
    if !out.exists() {
        let bytes = decompress(src);
        let mut f = File::create(&out).expect("create bench file");
        for _ in 0..times {
            f.write_all(&bytes).expect("write bench file");
        }
    }
    out
}

fn bgpdump(file: &Path) -> Option<(f64, u64)> {
    if Command::new("bgpdump").arg("-T").output().is_err() {
        println!("  bgpdump -m               not installed (apt-get install bgpdump): row skipped");
        return None;
    }
    // Timed exactly as the reference is stated: `bgpdump -m FILE > /dev/null`. Its lines
    // are counted in one more, untimed run (a pipe would slow bgpdump by ~15%).
    let (t, _) = best(|| {
        Command::new("bgpdump")
            .arg("-m")
            .arg(file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("bgpdump")
    });
    let mut child = Command::new("bgpdump")
        .arg("-m")
        .arg(file)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("bgpdump");
    let mut out = child.stdout.take().expect("stdout");
    let mut buf = vec![0u8; 1 << 20];
    let mut lines = 0u64;
    loop {
        let n = out.read(&mut buf).expect("read bgpdump");
        if n == 0 {
            break;
        }
        lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
    }
    child.wait().expect("bgpdump exit");
    Some((t, lines))
}

/// bgpkit-parser as its users run it: one thread, decompressing inline when needed.
fn bgpkit_elems(file: &Path) -> (f64, u64) {
    best(|| {
        let f = BufReader::with_capacity(1 << 18, File::open(file).expect("open"));
        let reader: Box<dyn Read + Send> = match file.extension().and_then(|e| e.to_str()) {
            Some("bz2") => Box::new(bzip2::read::MultiBzDecoder::new(f)),
            Some("gz") => Box::new(flate2::read::MultiGzDecoder::new(f)),
            _ => Box::new(f),
        };
        BgpkitParser::from_reader(reader).into_elem_iter().count() as u64
    })
}

/// Memory of a real `routewitness replay` process (in this process earlier runs' freed
/// memory would hide the peak).
fn replay_memory(file: &Path, judge: bool) -> Option<serde_json::Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_routewitness"))
        .args(["replay", "--format", "json", "--top", "0", "--no-progress"])
        .args(if judge { &[][..] } else { &["--no-judge"][..] })
        .arg(file)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    Some(report)
}

/// `replay` with ROV alone (`aspa: None`), or with the full judge under the default
/// policy.
///
/// `built`: the judge's decisions go to a sink that drops them, so each is built (with its
/// reasons, as the daemon and `--decisions` need); otherwise they are only counted, as a
/// replay whose report is all that is read does.
fn routewitness_replay(
    file: &Path,
    index: &VrpIndex,
    aspa: Option<&AspaSet>,
    built: bool,
) -> (f64, replay::ReplayReport) {
    best(|| {
        let mut drop_it = |d: routewitness::judge::Decision| drop(d);
        let judging = aspa.map(|aspa| replay::Judging {
            policies: vec![Policy::builtin_default()],
            aspa,
            rpki_serial: None,
            decisions: None,
            sink: built.then_some(&mut drop_it as &mut dyn FnMut(_)),
            observer: None,
        });
        replay::run(
            ReplayConfig {
                files: vec![file.to_path_buf()],
                honour_expires: true,
                top: 0,
                progress: None,
                inject: Vec::new(),
            },
            index,
            None,
            judging,
        )
        .expect("replay")
    })
}

fn row(name: &str, secs: f64, elems: u64, reference: Option<f64>) {
    let rate = elems as f64 / secs;
    let ratio = reference
        .map(|r| format!("{:>6.2}x", rate / r))
        .unwrap_or_default();
    println!(
        "  {name:<34} {secs:>8.3} s {elems:>10} elems {:>8.3} M/s {ratio}",
        rate / 1e6
    );
}

fn compare_dump(title: &str, file: &Path, index: &VrpIndex, aspa: &AspaSet, whole: bool) {
    let size = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    println!(
        "\n{title}: {} ({:.1} MB)",
        file.display(),
        size as f64 / 1e6
    );
    let dump = bgpdump(file);
    if whole {
        whole_command(file, dump.map(|(t, _)| t));
    }
    let (kt, kelems) = bgpkit_elems(file);
    let (rt, report) = routewitness_replay(file, index, None, false);
    let (jt, judged) = routewitness_replay(file, index, Some(aspa), false);
    let (bt, _) = routewitness_replay(file, index, Some(aspa), true);
    let events = report.route_events;
    let dump_rate = dump.map(|(t, l)| l as f64 / t);
    if let Some((t, lines)) = dump {
        row("bgpdump -m > /dev/null", t, lines, dump_rate);
    }
    row("bgpkit-parser elem iteration", kt, kelems, dump_rate);
    row("routewitness replay + ROV", rt, events, dump_rate);
    row(
        "routewitness replay + ROV + judge",
        jt,
        judged.route_events,
        dump_rate,
    );
    row(
        "  the same, decisions built",
        bt,
        judged.route_events,
        dump_rate,
    );
    println!(
        "  replay/bgpkit = {:.2}x; replay/bgpdump = {}; the judge costs {:+.0}% over replay + ROV \
         ({} decisions under the default policy; {:+.0}% with each decision built)",
        (events as f64 / rt) / (kelems as f64 / kt),
        dump_rate
            .map(|d| format!("{:.2}x", (events as f64 / rt) / d))
            .unwrap_or_else(|| "n/a".into()),
        (jt / rt - 1.0) * 100.0,
        judged.judges.first().map_or(0, |j| j.stats.decisions),
        (bt / rt - 1.0) * 100.0,
    );
    for (judge, what) in [(false, "replay + ROV"), (true, "replay + ROV + judge")] {
        if let Some(r) = replay_memory(file, judge) {
            let p = &r["performance"];
            let mib = |v: &serde_json::Value| v.as_f64().unwrap_or(0.0) / 1048576.0;
            println!(
                "  memory, {what} (separate process): peak RSS {:.1} MiB over a baseline of \
                 {:.1} MiB (VRP index loaded); {} routes stored at peak, {} distinct paths; \
                 {:.0} B per stored route (all state included)",
                mib(&p["rss_peak_bytes"]),
                mib(&p["rss_baseline_bytes"]),
                r["adj_rib_in"]["peak_routes"],
                r["adj_rib_in"]["distinct_paths"],
                p["bytes_per_stored_route"].as_f64().unwrap_or(f64::NAN)
            );
        }
    }
}

/// `routewitness replay --no-judge FILE` timed as a user runs it (the process from start
/// to exit: the 723k bundled VRPs loaded, the report printed), without the parsed VRP
/// copy (`ROUTEWITNESS_CACHE_DIR=off`, a first run) and with it (a run after the first
/// against the same VRP file), beside `bgpdump -m` on the same file.
fn whole_command(file: &Path, bgpdump_s: Option<f64>) {
    let cache = std::env::temp_dir().join(format!("rw-bench-cache-{}", std::process::id()));
    let run = |cache_dir: &Path| {
        best(|| {
            let ok = Command::new(env!("CARGO_BIN_EXE_routewitness"))
                .args(["replay", "--no-judge", "--top", "0", "--no-progress"])
                .arg(file)
                .env("ROUTEWITNESS_CACHE_DIR", cache_dir)
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("routewitness replay");
            assert!(ok.success(), "replay failed");
        })
        .0
    };
    let cold = run(Path::new("off"));
    run(&cache); // the first run writes the copy
    let warm = run(&cache);
    let _ = std::fs::remove_dir_all(&cache);
    let vs = |t: f64| {
        bgpdump_s
            .map(|b| format!("{:.2}x bgpdump -m", b / t))
            .unwrap_or_default()
    };
    println!(
        "  whole `routewitness replay --no-judge FILE` (process start to exit, VRPs loaded): \
         first run {cold:.3} s ({}), with the parsed VRP copy {warm:.3} s ({})",
        vs(cold),
        vs(warm)
    );
}

/// Prefixes of every route of a dump, in file order.
fn route_prefixes(file: &Path) -> Vec<(IpNet, Option<Asn>)> {
    let mut reg = PeerRegistry::default();
    let mut out = Vec::new();
    mrt::read_file(file, &mut reg, None, |ev| {
        if let IngestEvent::Route(r) = ev {
            if let RouteAction::Announce(p) = &r.action {
                out.push((r.prefix, p.origin(Asn(0))));
            }
        }
    })
    .expect("read dump");
    out
}

fn lookups(title: &str, queries: &[(IpNet, Option<Asn>)], index: &VrpIndex, trie: &Trie) {
    let reps = (4_000_000 / queries.len().max(1)).max(1);
    let total = (queries.len() * reps) as f64;
    let (t, hits) = best(|| {
        let mut valid = 0u64;
        for _ in 0..reps {
            for (p, o) in queries {
                if validate(index, p, *o, None) == routewitness::rpki::RovState::Valid {
                    valid += 1;
                }
            }
        }
        valid
    });
    let (tt, found) = best(|| {
        let mut n = 0u64;
        for _ in 0..reps {
            for (p, _) in queries {
                n += trie.cover(p) as u64;
            }
        }
        n
    });
    let mut covering = 0u64;
    for (p, _) in queries {
        index.for_each_covering(p, |_, _| covering += 1);
    }
    let trie_covering: u64 = queries.iter().map(|(p, _)| trie.cover(p) as u64).sum();
    assert_eq!(covering, trie_covering, "index and prefix-trie disagree");
    println!(
        "  {title:<22} routewitness ROV {:>7.2} M lookups/s | prefix-trie cover() {:>6.2} M/s | {:.1}x  ({} valid, {} covering hits)",
        total / t / 1e6,
        total / tt / 1e6,
        (total / t) / (total / tt),
        hits / reps as u64,
        found / reps as u64
    );
}

struct Trie {
    v4: prefix_trie::PrefixMap<ipnet::Ipv4Net, Vec<(u32, u8)>>,
    v6: prefix_trie::PrefixMap<ipnet::Ipv6Net, Vec<(u32, u8)>>,
}

impl Trie {
    fn cover(&self, p: &IpNet) -> usize {
        match p {
            IpNet::V4(n) => self.v4.cover(n).map(|(_, v)| v.len()).sum(),
            IpNet::V6(n) => self.v6.cover(n).map(|(_, v)| v.len()).sum(),
        }
    }
}

fn main() {
    // `cargo bench -- --list` (how tools enumerate benchmarks) must not run them all.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let fx = fixtures_dir();
    println!(
        "routewitness benchmark (best of {} runs; 2-core machine: compare ratios)",
        runs()
    );
    let t = Instant::now();
    let set = vrps::load(&fx.join(BUNDLED_VRPS), LoadOptions::default()).expect("VRPs");
    let load = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let index = VrpIndex::new(&set);
    println!(
        "VRPs: {} loaded in {:.2} s (bzip2 + JSON), index built in {:.3} s, {:.1} MiB of index",
        index.len(),
        load,
        t.elapsed().as_secs_f64(),
        index.heap_bytes() as f64 / 1048576.0
    );

    let updates = prepare(
        "updates8.mrt",
        &fx.join("mrt/pch_updates.et-header.20151023.gz"),
        8,
    );
    let aspa = AspaSet::new(&set.aspas);
    compare_dump("Updates, uncompressed", &updates, &index, &aspa, true);
    let rib = prepare(
        "rib.mrt",
        &fx.join("mrt/routeviews2_rib.20140523.0600_slice.mrt.gz"),
        1,
    );
    compare_dump("RIB, uncompressed", &rib, &index, &aspa, false);

    // bzip2: decompression runs on its own thread; compare with bgpdump on the same file.
    let bz = fx.join("mrt/routeviews2_updates.20080224.1854.bz2");
    compare_dump("Updates, bzip2", &bz, &index, &aspa, false);

    println!("\nCovering-VRP index (one core, validate() per route incl. the RFC 6811 decision)");
    let mut trie = Trie {
        v4: Default::default(),
        v6: Default::default(),
    };
    for v in &set.vrps {
        match v.prefix {
            IpNet::V4(n) => trie.v4.entry(n).or_default().push((v.asn.0, v.max_length)),
            IpNet::V6(n) => trie.v6.entry(n).or_default().push((v.asn.0, v.max_length)),
        };
    }
    let mut rib4 = route_prefixes(&rib);
    lookups("IPv4 RIB order", &rib4, &index, &trie);
    // A deterministic shuffle (xorshift), so runs are comparable.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for i in (1..rib4.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        rib4.swap(i, (x % (i as u64 + 1)) as usize);
    }
    lookups("IPv4 random order", &rib4, &index, &trie);
    let rib6 = route_prefixes(&fx.join("damaged/pyasn__rib6.20151101.0600_firstMB.bz2"));
    lookups("IPv6 RIB order", &rib6, &index, &trie);
}
