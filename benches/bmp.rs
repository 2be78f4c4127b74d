//! `cargo bench --bench bmp`: the daemon (`routewitness run`) judging BMP at full speed
//! over loopback, beside `routewitness replay` judging the same routes from MRT.
//!
//! The BMP stream is built from real routes: the PCH 2015 BGP4MP_ET update fixture,
//! concatenated 8 times (4.6 M route events, as in the replay bench), re-encoded by
//! `mrt2bmp` as Route Monitoring messages (each UPDATE PDU byte for byte; 717,432
//! messages). One TCP connection writes it as fast as the daemon reads; the daemon's
//! status is polled until every announcement is judged. Printed: Route Monitoring
//! messages/s and routes/s, the time until the first copy's full table (577,737
//! announcements) is judged, and the daemon's peak RSS. The status snapshot the bench
//! polls refreshes at most every 10 ms when the daemon is idle (200 ms while busy), so
//! times carry up to 0.2 s of slack. Nothing here asserts a speed.

use routewitness::cli::fixtures_dir;
use routewitness::ingest::mrt2bmp;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn status(api: SocketAddr) -> Option<serde_json::Value> {
    let mut s = TcpStream::connect(api).ok()?;
    write!(
        s,
        "GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    serde_json::from_str(raw.split_once("\r\n\r\n")?.1).ok()
}

fn main() {
    let fx = fixtures_dir();
    let copies = 8;
    let mut mrt = Vec::new();
    routewitness::input::InputReader::open(&fx.join("mrt/pch_updates.et-header.20151023.gz"))
        .and_then(|mut r| r.read_to_end(&mut mrt))
        .expect("PCH fixture");
    let mut one = Vec::new();
    let st = mrt2bmp::convert(&mrt, &mut one);
    let stream = one.repeat(copies);
    let messages = st.route_monitoring * copies as u64;
    let mrt_file = std::env::temp_dir().join(format!("rw-bench-bmp-{}.mrt", std::process::id()));
    std::fs::write(&mrt_file, mrt.repeat(copies)).expect("bench MRT");

    println!("routewitness BMP benchmark (2-core machine: compare ratios)");
    println!(
        "stream: PCH 2015 updates x{copies} as BMP: {} MB, {messages} Route Monitoring messages",
        stream.len() / 1_000_000
    );

    let stream = std::sync::Arc::new(stream);
    // As in production: decisions logged to a fresh SQLite state file. Then without
    // state (decisions in memory only), to show what the log costs.
    let state = std::env::temp_dir().join(format!("rw-bench-bmp-{}.sqlite", std::process::id()));
    let state_arg = state.to_str().expect("temp path").to_string();
    daemon_run(
        "routewitness run (BMP, SQLite state)",
        &["--state", &state_arg],
        &stream,
        messages,
    );
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", state.display()));
    }
    daemon_run(
        "routewitness run (BMP, --no-state)",
        &["--no-state"],
        &stream,
        messages,
    );
    // The same routes through `replay`, writing decisions as the daemon keeps them.
    let out = Command::new(env!("CARGO_BIN_EXE_routewitness"))
        .args([
            "replay",
            "--format",
            "json",
            "--top",
            "0",
            "--no-progress",
            "--decisions",
            "/dev/null",
        ])
        .arg(&mrt_file)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("replay");
    let _ = std::fs::remove_file(&mrt_file);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    if let Some(r) = report["performance"]["elapsed_s"].as_f64() {
        println!(
            "  routewitness replay (same routes, MRT, decisions to /dev/null) {r:>6.2} s  {:>8.0} routes/s",
            4_621_896.0 / r
        );
    }
}

/// One daemon run over the whole stream; prints its figures.
fn daemon_run(label: &str, extra: &[&str], stream: &std::sync::Arc<Vec<u8>>, messages: u64) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_routewitness"))
        .args([
            "run",
            "--no-replay",
            "--bmp",
            "127.0.0.1:0",
            "--api",
            "127.0.0.1:0",
            // A recording of 2015: judged at its own times, as the replay beside it.
            "--max-clock-skew",
            "0s",
        ])
        .args(extra)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("routewitness run");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let (mut bmp, mut api) = (None, None);
    let after = |l: &str, m: &str| -> Option<SocketAddr> {
        l[l.find(m)? + m.len()..]
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()?
            .parse()
            .ok()
    };
    for l in lines.by_ref() {
        let l = l.unwrap_or_default();
        bmp = bmp.or_else(|| after(&l, "BMP listener on "));
        api = api.or_else(|| after(&l, "HTTP API on http://"));
        if bmp.is_some() && api.is_some() {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    let (bmp, api) = (bmp.expect("BMP address"), api.expect("API address"));
    while status(api).is_none() {
        std::thread::sleep(Duration::from_millis(20));
    }
    let cpu_before = {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", child.id())).unwrap_or_default();
        stat.rsplit_once(')').and_then(|(_, r)| {
            let f: Vec<&str> = r.split_whitespace().collect();
            Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / 100.0)
        })
    };
    let total: u64 = 4_621_896;
    let table: u64 = 577_737;
    let t = Instant::now();
    let stream = stream.clone();
    let sender = std::thread::spawn(move || {
        let mut s = TcpStream::connect(bmp).expect("connect");
        s.write_all(&stream).expect("stream");
        s
    });
    let mut first_table = None;
    let elapsed = loop {
        let s = status(api).unwrap_or_default();
        let n = s["announcements"].as_u64().unwrap_or(0);
        if first_table.is_none() && n >= table {
            first_table = Some(t.elapsed().as_secs_f64());
        }
        if n >= total {
            break t.elapsed().as_secs_f64();
        }
        if t.elapsed() > Duration::from_secs(600) {
            panic!("not done after 10 min: {s}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    // CPU the daemon used, all threads (utime + stime, clock ticks of 1/100 s).
    let cpu = |pid: u32| -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let f: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / 100.0)
    };
    let cpu_used = cpu(child.id()).map(|end| end - cpu_before.unwrap_or(0.0));
    let peak = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        });
    let _conn = sender.join();
    // SIGTERM: the daemon drains its queues, writes its last decisions and checkpoint,
    // and exits; the run counts as done then.
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let durable = t.elapsed().as_secs_f64();

    println!(
        "  {label}   {elapsed:>6.2} s  {:>8.0} RM msgs/s  {:>8.0} routes/s  (drained and stopped after {durable:.2} s)",
        messages as f64 / elapsed,
        total as f64 / elapsed
    );
    if let Some(c) = cpu_used {
        println!(
            "  daemon CPU {c:.2} s over {elapsed:.2} s ({:.2} cores busy): {:.0} RM msgs per CPU-second",
            c / elapsed,
            messages as f64 / c
        );
    }
    println!(
        "  first full table ({table} routes) judged after {:.2} s",
        first_table.unwrap_or(f64::NAN)
    );
    if let Some(kb) = peak {
        println!(
            "  daemon peak RSS {:.0} MiB (VRP index included)",
            kb as f64 / 1024.0
        );
    }
}
