//! The project's own lab harness (a fresh clone has no ../shared/lab): the daemon as a
//! process, a tiny HTTP client, and real routers from Debian's packages on loopback.
//! A router binary that is missing fails the test under `CI=true`, and is reported as
//! SKIPPED (loudly) elsewhere.
#![allow(dead_code)]

use std::io::{BufRead, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// GET over HTTP/1.1; the body of a 2xx answer, else an error with the status line.
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.lines().next().unwrap_or("");
    if !status.contains(" 2") {
        return Err(std::io::Error::other(format!("{status}: {body}")));
    }
    // Chunked bodies (axum streams some): join the chunks.
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = String::new();
        let mut rest = body;
        while let Some((size, tail)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            out.push_str(&tail[..n.min(tail.len())]);
            rest = tail.get(n + 2..).unwrap_or("");
        }
        return Ok(out);
    }
    Ok(body.to_string())
}

/// POST with an optional bearer token and JSON body: (status code, body).
pub fn http_post(addr: SocketAddr, path: &str, token: Option<&str>, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, rest.to_string())
}

/// Polls `f` every 50 ms until it answers or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A fresh scratch directory, unique to this process and call.
pub fn scratch(name: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "routewitness-test-{name}-{}-{n}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The address in `text` right after `marker`.
fn addr_after(text: &str, marker: &str) -> Option<SocketAddr> {
    let rest = &text[text.find(marker)? + marker.len()..];
    rest.split(|c: char| c.is_whitespace() || c == '/')
        .next()?
        .parse()
        .ok()
}

/// A file of the repository, by its path from the crate root (`fixtures/...`,
/// `tests/lab/...`, `policies/...`). `common::fixture` names a file under `fixtures/`.
pub fn repo_file(rel: &str) -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// In `dir`, for a daemon configuration: `feeds/bmp.toml` (a BMP listener on a free
/// port judging the Loc-RIB view, as GoBGP streams it), `feeds/rib.toml` (the 2014 RIB
/// slice, replayed first: it establishes who originates what) and the lab's `vrps.json`;
/// returns the configuration's first lines (those feeds, the lab policy).
pub fn rib_and_gobgp_feeds(dir: &std::path::Path) -> String {
    lab_feeds(
        dir,
        "loc-rib",
        "fixtures/mrt/routeviews2_rib.20140523.0600_slice.mrt.gz",
    );
    format!(
        "feeds = [\"feeds/bmp.toml\", \"feeds/rib.toml\"]\npolicy = \"{}\"\n",
        repo_file("tests/lab/policy.toml").display()
    )
}

/// In `dir`: `feeds/bmp.toml` (a BMP listener on a free port judging `view`),
/// `feeds/rib.toml` (the MRT fixture `mrt`, replayed first) and the lab's `vrps.json`.
pub fn lab_feeds(dir: &std::path::Path, view: &str, mrt: &str) {
    std::fs::create_dir_all(dir.join("feeds")).unwrap();
    std::fs::write(
        dir.join("feeds/bmp.toml"),
        format!("type = \"bmp\"\nlisten = \"127.0.0.1:0\"\nview = \"{view}\"\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("feeds/rib.toml"),
        format!(
            "type = \"mrt\"\nfiles = [\"{}\"]\n",
            repo_file(mrt).display()
        ),
    )
    .unwrap();
    std::fs::copy(
        repo_file("fixtures/bmp/lab/vrps.json"),
        dir.join("vrps.json"),
    )
    .unwrap();
}

/// The lab's VRP JSON, and a lie about it: one VRP (198.51.100.0/24 AS65002) swapped
/// for a forged one (198.18.0.0/24 AS65002).
pub fn lab_vrps_and_a_lie() -> (String, String) {
    let json = std::fs::read_to_string(repo_file("fixtures/bmp/lab/vrps.json")).unwrap();
    let lie = json.replace(
        r#"{ "prefix": "198.51.100.0/24",   "maxLength": 24, "asn": "AS65002", "ta": "lab" },"#,
        r#"{ "prefix": "198.18.0.0/24",   "maxLength": 24, "asn": "AS65002", "ta": "lab" },"#,
    );
    assert_ne!(lie, json);
    (json, lie)
}

/// `routewitness run` on loopback ports of its own.
pub struct Daemon {
    child: Option<Child>,
    pub bmp: SocketAddr,
    pub api: SocketAddr,
    log: PathBuf,
}

impl Daemon {
    /// Starts the daemon on ports the kernel picks (port 0), read back from its first log
    /// lines: ports chosen here and released would race with other tests.
    pub fn start(args: &[&str]) -> Daemon {
        let mut all = vec!["--bmp", "127.0.0.1:0", "--api", "127.0.0.1:0"];
        all.extend_from_slice(args);
        Self::start_raw(&all)
    }

    /// `routewitness run ARGS` as given: the listening addresses must be port 0 (from the
    /// arguments or a configuration file), as they are read back from the log.
    pub fn start_raw(args: &[&str]) -> Daemon {
        Self::start_in(&scratch("daemon"), args)
    }

    /// [`Self::start_raw`] with `dir` as the working directory (where the default state
    /// file lives: a second daemon in the same directory takes up from the first).
    pub fn start_in(dir: &std::path::Path, args: &[&str]) -> Daemon {
        Self::start_wrapped(dir, &[], args)
    }

    /// [`Self::start_in`] through `wrapper` (a command that execs the rest, such as
    /// `nsenter -t PID -m --`): the process killed is the daemon itself.
    pub fn start_wrapped(dir: &std::path::Path, wrapper: &[&str], args: &[&str]) -> Daemon {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = dir.join(format!("stderr-{n}.log"));
        let bin = env!("CARGO_BIN_EXE_routewitness");
        let mut cmd = match wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        let child = cmd
            .arg("run")
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let unset: SocketAddr = "0.0.0.0:0".parse().unwrap();
        let mut d = Daemon {
            child: Some(child),
            bmp: unset,
            api: unset,
            log,
        };
        let found = wait_for(Duration::from_secs(30), || {
            let text = d.log();
            Some((
                addr_after(&text, "BMP listener on ")?,
                addr_after(&text, "HTTP API on http://")?,
            ))
        });
        let Some((bmp, api)) = found else {
            let log = d.log();
            d.kill();
            panic!("the daemon did not say where it listens:\n{log}");
        };
        (d.bmp, d.api) = (bmp, api);
        if wait_for(Duration::from_secs(30), || http_get(api, "/v1/status").ok()).is_none() {
            let log = d.log();
            d.kill();
            panic!("the daemon did not answer on {api}:\n{log}");
        }
        d
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The address its log gives after `marker` (e.g. "RTR server for routers' RPKI on ").
    pub fn listening(&self, marker: &str) -> SocketAddr {
        addr_after(&self.log(), marker)
            .unwrap_or_else(|| panic!("no '{marker}' in the log:\n{}", self.log()))
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGTERM; waits up to 20 s. (exit code, time taken, stderr).
    pub fn terminate(&mut self) -> (Option<i32>, Duration, String) {
        let mut child = self.child.take().expect("running");
        let t = Instant::now();
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let code = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st.code();
            }
            if t.elapsed() > Duration::from_secs(20) {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        (code, t.elapsed(), self.log())
    }

    /// SIGKILL (kill -9), and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether `bin` is on PATH. Missing under `CI=true`: the test fails.
/// `bin` on the PATH, or in /usr/sbin (BIRD's place, not on a user's PATH).
pub fn find_bin(bin: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(bin))
        .find(|f| f.is_file())
}

fn require(bin: &str, package: &str) -> bool {
    let found = find_bin(bin).is_some();
    if !found {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!(
                "{bin} is required under CI=true: apt-get install {package} (scripts/test does)"
            );
        }
        eprintln!("SKIPPED: {bin} is not installed (apt-get install {package}; scripts/test does)");
    }
    found
}

/// Debian's GoBGP 3.10 (`gobgpd`, `gobgp`), BGP listener off, API on loopback.
pub struct GoBgp;

impl GoBgp {
    pub fn require() -> Option<GoBgp> {
        (require("gobgpd", "gobgpd") && require("gobgp", "gobgpd")).then_some(GoBgp)
    }

    /// Starts gobgpd (AS65002) streaming its Loc-RIB over BMP to `bmp`.
    pub fn start(&self, bmp: SocketAddr) -> GoBgpRun {
        let dir = scratch("gobgp");
        let api = free_port_on("127.0.0.1");
        let conf = dir.join("gobgpd.toml");
        std::fs::write(
            &conf,
            format!(
                r#"[global.config]
  as = 65002
  router-id = "127.65.0.2"
  port = -1

[[bmp-servers]]
  [bmp-servers.config]
    address = "{}"
    port = {}
    route-monitoring-policy = "local-rib"
"#,
                bmp.ip(),
                bmp.port()
            ),
        )
        .unwrap();
        let run = GoBgpRun::spawn(&conf, api, dir);
        let up = wait_for(Duration::from_secs(20), || {
            run.cli(&["global"]).ok().filter(|o| o.contains("65002"))
        });
        assert!(up.is_some(), "gobgpd did not come up: {}", run.log());
        run
    }
}

pub struct GoBgpRun {
    child: Option<Child>,
    api: u16,
    dir: PathBuf,
}

impl GoBgpRun {
    /// gobgpd with config `conf`, its API on 127.0.0.1:`api`, its log in `dir`.
    pub fn spawn(conf: &std::path::Path, api: u16, dir: PathBuf) -> GoBgpRun {
        let log = dir.join("gobgpd.log");
        let child = Command::new("gobgpd")
            .arg("-f")
            .arg(conf)
            .args([
                "--api-hosts",
                &format!("127.0.0.1:{api}"),
                "--pprof-disable",
            ])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::from(
                std::fs::File::options().append(true).open(&log).unwrap(),
            ))
            .spawn()
            .expect("gobgpd");
        GoBgpRun {
            child: Some(child),
            api,
            dir,
        }
    }

    pub fn cli(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new("gobgp")
            .args(["-u", "127.0.0.1", "-p", &self.api.to_string()])
            .args(args)
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    fn family(prefix: &str) -> &'static str {
        if prefix.contains(':') {
            "ipv6"
        } else {
            "ipv4"
        }
    }

    /// Originates `prefix` (with `aspath` prepended when given).
    pub fn add(&self, prefix: &str, aspath: &[u32]) {
        let mut args = vec!["global", "rib", "add", "-a", Self::family(prefix), prefix];
        let path: String;
        if !aspath.is_empty() {
            path = aspath
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(",");
            args.extend(["aspath", &path]);
        }
        self.cli(&args)
            .unwrap_or_else(|e| panic!("gobgp {args:?}: {e}"));
    }

    pub fn del(&self, prefix: &str) {
        let args = ["global", "rib", "del", "-a", Self::family(prefix), prefix];
        self.cli(&args)
            .unwrap_or_else(|e| panic!("gobgp {args:?}: {e}"));
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("gobgpd.log")).unwrap_or_default()
    }
}

impl Drop for GoBgpRun {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            if wait_for(Duration::from_secs(5), || c.try_wait().ok().flatten()).is_none() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A port free on `addr` now, for a program that must be told its port before it
/// starts (BIRD's and GoBGP's BGP listeners and API, StayRTR): it is bound later, so
/// another process could take it meanwhile; Linux hands out such ports in turn through
/// its whole ephemeral range, so that takes another process cycling through the range
/// first, and the program then fails to start and the test says why. routewitness itself
/// always binds port 0 and the tests read its addresses back from its log.
pub fn free_port_on(addr: &str) -> u16 {
    TcpListener::bind((addr, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A process that is stopped (TERM, then KILL) when dropped, with a scratch directory.
pub struct Proc {
    child: Option<Child>,
    pub dir: PathBuf,
    pub log: PathBuf,
}

impl Proc {
    pub fn spawn(cmd: &mut Command, dir: PathBuf, log_name: &str) -> Proc {
        let log = dir.join(log_name);
        let child = cmd
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::from(
                std::fs::File::options().append(true).open(&log).unwrap(),
            ))
            .spawn()
            .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
        Proc {
            child: Some(child),
            dir,
            log,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            if wait_for(Duration::from_secs(5), || c.try_wait().ok().flatten()).is_none() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// gobgpd.toml for GoBGP (AS65002 on 127.65.0.2:`port`) peering with one router
/// (address, AS, port) on loopback, IPv4, its next hops rewritten to a placeholder (GoBGP
/// and FRR refuse 127/8 next hops: ../shared/lab/README.md §2); with `bmp`, its Loc-RIB
/// streamed there.
pub fn gobgp_peering(
    port: u16,
    (addr, asn, rport): (&str, u32, u16),
    bmp: Option<SocketAddr>,
) -> String {
    let bmp = bmp.map_or(String::new(), |b| {
        format!(
            "[[bmp-servers]]\n  [bmp-servers.config]\n    address = \"{}\"\n    port = {}\n    \
             route-monitoring-policy = \"local-rib\"\n",
            b.ip(),
            b.port()
        )
    });
    format!(
        r#"[global.config]
  as = 65002
  router-id = "127.65.0.2"
  port = {port}
  local-address-list = ["127.65.0.2"]
[global.apply-policy.config]
  export-policy-list = ["nexthop-rewrite"]
  default-export-policy = "accept-route"
[[defined-sets.prefix-sets]]
  prefix-set-name = "all-v4"
  [[defined-sets.prefix-sets.prefix-list]]
    ip-prefix = "0.0.0.0/0"
    masklength-range = "0..32"
[[policy-definitions]]
  name = "nexthop-rewrite"
  [[policy-definitions.statements]]
    name = "v4-nh"
    [policy-definitions.statements.conditions.match-prefix-set]
      prefix-set = "all-v4"
    [policy-definitions.statements.actions]
      route-disposition = "accept-route"
    [policy-definitions.statements.actions.bgp-actions]
      set-next-hop = "100.64.255.2"
[[neighbors]]
  [neighbors.config]
    neighbor-address = "{addr}"
    peer-as = {asn}
  [neighbors.transport.config]
    local-address = "127.65.0.2"
    remote-port = {rport}
  [neighbors.timers.config]
    connect-retry = 1
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
{bmp}"#
    )
}

/// GoBGP on [`gobgp_peering`]'s configuration, its API on a free port.
pub fn gobgp_peer(port: u16, neighbor: (&str, u32, u16), bmp: Option<SocketAddr>) -> GoBgpRun {
    let dir = scratch("gobgp-peer");
    let conf = dir.join("gobgpd.toml");
    std::fs::write(&conf, gobgp_peering(port, neighbor, bmp)).unwrap();
    GoBgpRun::spawn(&conf, free_port_on("127.0.0.1"), dir)
}

/// Debian's BIRD 2 (package bird2): `bird -f` with its own configuration and control
/// socket in a scratch directory.
pub struct Bird {
    proc: Proc,
    pub ctl: PathBuf,
}

impl Bird {
    pub fn require() -> bool {
        require("bird", "bird2") && require("birdc", "bird2")
    }

    /// BIRD on `conf` (its text; `@DIR@` is replaced by the scratch directory).
    pub fn start(conf: &str) -> Bird {
        Self::start_in(scratch("bird"), conf)
    }

    /// [`Self::start`] in `dir` (its control socket is `dir/bird.ctl`).
    pub fn start_in(dir: PathBuf, conf: &str) -> Bird {
        let file = dir.join("bird.conf");
        std::fs::write(&file, conf.replace("@DIR@", &dir.display().to_string())).unwrap();
        let ctl = dir.join("bird.ctl");
        let mut cmd = Command::new(find_bin("bird").expect("bird"));
        cmd.arg("-f")
            .arg("-c")
            .arg(&file)
            .arg("-s")
            .arg(&ctl)
            .arg("-P")
            .arg(dir.join("bird.pid"));
        let proc = Proc::spawn(&mut cmd, dir, "bird.out");
        let b = Bird { proc, ctl };
        let up = wait_for(Duration::from_secs(20), || {
            b.birdc("show status")
                .contains("Daemon is up")
                .then_some(())
        });
        assert!(
            up.is_some(),
            "BIRD did not come up: {}\n{}",
            b.proc.log(),
            b.log()
        );
        b
    }

    /// `birdc -s CTL CMD`: its output.
    pub fn birdc(&self, cmd: &str) -> String {
        let out = Command::new(find_bin("birdc").expect("birdc"))
            .arg("-s")
            .arg(&self.ctl)
            .args(cmd.split_whitespace())
            .output()
            .expect("birdc");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// bird.log (the configuration logs there) and BIRD's own output.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.proc.dir.join("bird.log")).unwrap_or_default()
            + &self.proc.log()
    }
}

/// Debian's FRR 8.4 bgpd (package frr, binary /usr/lib/frr/bgpd) with its BMP module.
pub const FRR_BGPD: &str = "/usr/lib/frr/bgpd";

pub fn require_frr() -> bool {
    let found = std::path::Path::new(FRR_BGPD).is_file()
        && std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join("vtysh").is_file()))
            .unwrap_or(false);
    if !found {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("FRR is required under CI=true: apt-get install frr (scripts/test does)");
        }
        eprintln!("SKIPPED: FRR is not installed (apt-get install frr; scripts/test does)");
    }
    found
}

/// FRR's RPKI module (package frr-rpki-rtrlib).
pub fn require_frr_rpki() -> bool {
    let found = [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib",
    ]
    .iter()
    .any(|d| {
        std::path::Path::new(d)
            .join("frr/modules/bgpd_rpki.so")
            .is_file()
    });
    if !found {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("FRR's RPKI module is required under CI=true: apt-get install frr-rpki-rtrlib (scripts/test does)");
        }
        eprintln!("SKIPPED: FRR's RPKI module is not installed (apt-get install frr-rpki-rtrlib; scripts/test does)");
    }
    found
}

/// What the FRR lab runs beside the basics.
#[derive(Default)]
pub struct FrrOptions {
    /// FRR streams pre-policy BMP there.
    pub frr_bmp: Option<SocketAddr>,
    /// GoBGP streams its Loc-RIB there.
    pub gobgp_bmp: Option<SocketAddr>,
    /// Top-level configuration (route-maps, rpki; `-M rpki` is loaded when it says rpki).
    pub global: String,
    /// Lines in `address-family ipv4 unicast` (e.g. the neighbor's inbound route-map).
    pub ipv4: String,
}

/// GoBGP (AS65002 on 127.65.0.2) peering with FRR (AS65003 on 127.65.0.3), FRR
/// streaming pre-policy BMP to `bmp`: the lab of ../shared/lab/README.md §2-3, with its
/// gotchas (multihop on loopback, placeholder next hops, soft-reconfiguration for
/// pre-policy BMP).
pub struct FrrLab {
    pub gobgp: GoBgpRun,
    pub frr: Proc,
    pub vty: PathBuf,
}

impl FrrLab {
    pub fn start(bmp: SocketAddr) -> FrrLab {
        Self::start_with(
            scratch("frr"),
            FrrOptions {
                frr_bmp: Some(bmp),
                ..FrrOptions::default()
            },
        )
    }

    /// The lab in `dir` (vtysh's socket directory is `dir/vty`), with `o`.
    pub fn start_with(dir: PathBuf, o: FrrOptions) -> FrrLab {
        let pg = free_port_on("127.65.0.2");
        let pf = free_port_on("127.65.0.3");
        let api = free_port_on("127.0.0.1");
        let conf = dir.join("gobgpd.toml");
        std::fs::write(
            &conf,
            gobgp_peering(pg, ("127.65.0.3", 65003, pf), o.gobgp_bmp),
        )
        .unwrap();
        let gobgp = GoBgpRun::spawn(&conf, api, dir.clone());
        let vty = dir.join("vty");
        std::fs::create_dir_all(&vty).unwrap();
        let fconf = dir.join("bgpd.conf");
        let bmp = o.frr_bmp.map_or(String::new(), |b| {
            format!(
                " bmp targets test\n  bmp connect {} port {} min-retry 100 max-retry 1000\n  \
                 bmp monitor ipv4 unicast pre-policy\n exit\n",
                b.ip(),
                b.port()
            )
        });
        std::fs::write(
            &fconf,
            format!(
                "frr defaults traditional\nhostname frr-test\n!\n{}\n!\nrouter bgp 65003\n \
                 bgp router-id 127.65.0.3\n no bgp ebgp-requires-policy\n \
                 no bgp network import-check\n neighbor 127.65.0.2 remote-as 65002\n \
                 neighbor 127.65.0.2 port {pg}\n neighbor 127.65.0.2 update-source 127.65.0.3\n \
                 neighbor 127.65.0.2 disable-connected-check\n neighbor 127.65.0.2 timers connect 1\n \
                 !\n address-family ipv4 unicast\n  neighbor 127.65.0.2 soft-reconfiguration inbound\n\
                 {}\n exit-address-family\n !\n{bmp}exit\n!\n",
                o.global, o.ipv4
            ),
        )
        .unwrap();
        let mut cmd = Command::new(FRR_BGPD);
        if o.global.contains("rpki") {
            cmd.args(["-M", "rpki"]);
        }
        cmd.args([
            "-Z",
            "-S",
            "-M",
            "bmp",
            "-l",
            "127.65.0.3",
            "-p",
            &pf.to_string(),
            "-P",
            "0",
        ])
        .arg("-f")
        .arg(&fconf)
        .arg("--vty_socket")
        .arg(&vty)
        .arg("-i")
        .arg(dir.join("bgpd.pid"));
        let frr = Proc::spawn(&mut cmd, dir.clone(), "bgpd.log");
        let lab = FrrLab { gobgp, frr, vty };
        let up = wait_for(Duration::from_secs(60), || {
            lab.gobgp
                .cli(&["neighbor"])
                .ok()
                .filter(|o| o.to_ascii_lowercase().contains("establ"))
        });
        assert!(
            up.is_some(),
            "GoBGP-FRR session not up: {:?}\n{}\n{}",
            lab.gobgp.cli(&["neighbor"]),
            lab.gobgp.log(),
            lab.frr.log()
        );
        lab
    }

    pub fn vtysh(&self, cmd: &str) -> String {
        let out = Command::new("vtysh")
            .arg("--vty_socket")
            .arg(&self.vty)
            .args(["-c", cmd])
            .output()
            .expect("vtysh");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// Debian's StayRTR (0.5.1) serving a VRP JSON file on loopback.
pub struct StayRtr {
    pub proc: Proc,
    pub addr: SocketAddr,
    pub file: PathBuf,
}

impl StayRtr {
    pub fn require() -> bool {
        require("stayrtr", "stayrtr")
    }

    /// StayRTR serving `json` (copied into its own directory as `vrps.json`) on a free
    /// loopback port. `-checktime=false`: the shared snapshots are older than the 24 h
    /// StayRTR otherwise insists on (../shared/lab/README.md §4). `extra`: more flags.
    pub fn start(json: &str, extra: &[&str]) -> StayRtr {
        let dir = scratch("stayrtr");
        let file = dir.join("vrps.json");
        std::fs::write(&file, json).unwrap();
        // A port found free can be taken before StayRTR binds it (by any connection's
        // local port): then another port, a few times.
        for _ in 0..4 {
            let port = free_port_on("127.0.0.1");
            match Self::try_start_on(dir.clone(), file.clone(), port, extra) {
                Ok(s) => return s,
                Err(log) if log.contains("address already in use") => continue,
                Err(log) => panic!("stayrtr did not listen on port {port}: {log}"),
            }
        }
        panic!("stayrtr found no free port in 4 tries");
    }

    fn start_on(dir: PathBuf, file: PathBuf, port: u16, extra: &[&str]) -> StayRtr {
        Self::try_start_on(dir, file, port, extra)
            .unwrap_or_else(|log| panic!("stayrtr did not listen on port {port}: {log}"))
    }

    /// StayRTR on `port`, or its log when it does not listen there.
    fn try_start_on(
        dir: PathBuf,
        file: PathBuf,
        port: u16,
        extra: &[&str],
    ) -> Result<StayRtr, String> {
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let metrics = format!("127.0.0.1:{}", free_port_on("127.0.0.1"));
        let mut cmd = Command::new("stayrtr");
        cmd.args([
            "-bind",
            &addr.to_string(),
            "-metrics.addr",
            &metrics,
            "-cache",
            file.to_str().unwrap(),
            "-checktime=false",
            "-refresh",
            "3600",
        ])
        .args(extra);
        let proc = Proc::spawn(&mut cmd, dir, &format!("stayrtr-{port}.log"));
        let up = wait_for(Duration::from_secs(20), || {
            if proc.log().contains("level=fatal") {
                return Some(false);
            }
            std::net::TcpStream::connect(addr).ok().map(|_| true)
        });
        if up != Some(true) {
            return Err(proc.log());
        }
        Ok(StayRtr { proc, addr, file })
    }

    /// Rewrites the file and makes StayRTR read it now (SIGHUP).
    pub fn serve(&self, json: &str) {
        std::fs::write(&self.file, json).unwrap();
        let pid = self.proc.child.as_ref().unwrap().id().to_string();
        assert!(Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success());
    }

    /// Stops it and starts a new one on the same port and file (a cache restart).
    pub fn restart(mut self, extra: &[&str]) -> StayRtr {
        let (dir, file, port) = (self.proc.dir.clone(), self.file.clone(), self.addr.port());
        if let Some(mut c) = self.proc.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        Self::start_on(dir, file, port, extra)
    }
}

/// How an HTTP [`Receiver`] (a webhook destination) answers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    Ok,
    /// 503 with `Retry-After: 1`.
    Busy,
    Gone,
    /// 429 with `Retry-After: 1`.
    TooMany,
    /// Answers 200 after 3 s (past a 2 s timeout).
    Hang,
    /// Closes the connection without an answer.
    Drop,
    /// 302 Found to `/stolen` on the address given (a receiver that moved, or lies).
    Redirect(SocketAddr),
}

/// One request as received.
#[derive(Clone, Debug)]
pub struct Got {
    pub at: Instant,
    /// The request line's path.
    pub path: String,
    pub headers: std::collections::HashMap<String, String>,
    pub body: Vec<u8>,
}

/// An HTTP receiver on 127.0.0.1 answering as its mode says, recording every request.
pub struct Receiver {
    pub addr: SocketAddr,
    mode: std::sync::Arc<std::sync::Mutex<Mode>>,
    got: std::sync::Arc<std::sync::Mutex<Vec<Got>>>,
}

impl Receiver {
    pub fn start(mode: Mode) -> Receiver {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let mode = std::sync::Arc::new(std::sync::Mutex::new(mode));
        let got: std::sync::Arc<std::sync::Mutex<Vec<Got>>> = Default::default();
        let (m, g) = (mode.clone(), got.clone());
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                let mut r = std::io::BufReader::new(s.try_clone().unwrap());
                let mut headers = std::collections::HashMap::new();
                let mut line = String::new();
                if r.read_line(&mut line).is_err() {
                    continue;
                }
                let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                loop {
                    line.clear();
                    if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some((k, v)) = line.trim_end().split_once(':') {
                        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                    }
                }
                let n: usize = headers
                    .get("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0; n];
                let _ = r.read_exact(&mut body);
                g.lock().unwrap().push(Got {
                    at: Instant::now(),
                    path,
                    headers,
                    body,
                });
                let mode = *m.lock().unwrap();
                let redirect;
                let answer = match mode {
                    Mode::Ok => "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    Mode::Busy => "HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    Mode::Gone => "HTTP/1.1 410 Gone\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    Mode::TooMany => "HTTP/1.1 429 Too Many Requests\r\nretry-after: 1\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    Mode::Hang => {
                        std::thread::sleep(Duration::from_secs(3));
                        "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    }
                    Mode::Drop => "",
                    Mode::Redirect(to) => {
                        redirect = format!(
                            "HTTP/1.1 302 Found\r\nlocation: http://{to}/stolen\r\n\
                             content-length: 0\r\nconnection: close\r\n\r\n"
                        );
                        redirect.as_str()
                    }
                };
                let _ = s.write_all(answer.as_bytes());
            }
        });
        Receiver { addr, mode, got }
    }

    pub fn set(&self, m: Mode) {
        *self.mode.lock().unwrap() = m;
    }

    pub fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }
}

/// BMP messages built by hand (RFC 7854), for sessions that say what a real router would
/// not: made-up peers, clocks far off, tables past any limit. Only Route Monitoring is
/// needed (a peer with no Peer Up is taken as up at its first route).
pub mod bmp {
    use std::net::Ipv4Addr;

    /// A peer as a monitored router presents it: address, AS, and whether its routes are
    /// the router's Loc-RIB (RFC 9069 peer type 3) or its pre-policy Adj-RIB-In (type 0).
    #[derive(Clone, Copy)]
    pub struct Peer {
        pub addr: Ipv4Addr,
        pub asn: u32,
        pub loc_rib: bool,
    }

    /// Seconds since the epoch now.
    pub fn now_secs() -> u32 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as u32)
            .unwrap_or(0)
    }

    fn framed(kind: u8, body: Vec<u8>) -> Vec<u8> {
        let mut m = vec![3];
        m.extend(((6 + body.len()) as u32).to_be_bytes());
        m.push(kind);
        m.extend(body);
        m
    }

    /// An Initiation message with a sysName.
    pub fn initiation(sys_name: &str) -> Vec<u8> {
        let mut b = 2u16.to_be_bytes().to_vec();
        b.extend((sys_name.len() as u16).to_be_bytes());
        b.extend(sys_name.as_bytes());
        framed(4, b)
    }

    /// A Route Monitoring message (IPv4 peer, 4-byte AS paths) from `peer` stamped
    /// `secs`: an UPDATE announcing `prefixes` (address, length) with `path`, or
    /// withdrawing them when `path` is `None`.
    pub fn route_monitoring(
        peer: Peer,
        secs: u32,
        path: Option<&[u32]>,
        prefixes: &[(Ipv4Addr, u8)],
    ) -> Vec<u8> {
        let mut nlri = Vec::new();
        for (a, len) in prefixes {
            nlri.push(*len);
            nlri.extend(&a.octets()[..usize::from(*len).div_ceil(8)]);
        }
        let mut body = Vec::new();
        match path {
            None => {
                body.extend((nlri.len() as u16).to_be_bytes());
                body.extend(&nlri);
                body.extend(0u16.to_be_bytes());
            }
            Some(path) => {
                let mut attrs = vec![0x40, 1, 1, 0]; // ORIGIN IGP
                attrs.extend([0x40, 2, (2 + 4 * path.len()) as u8, 2, path.len() as u8]);
                for a in path {
                    attrs.extend(a.to_be_bytes());
                }
                attrs.extend([0x40, 3, 4]); // NEXT_HOP: the peer
                attrs.extend(peer.addr.octets());
                body.extend(0u16.to_be_bytes());
                body.extend((attrs.len() as u16).to_be_bytes());
                body.extend(attrs);
                body.extend(&nlri);
            }
        }
        // Per-peer header: type, flags (none: 4-byte AS paths, IPv4), distinguisher,
        // address, AS, BGP id, timestamp.
        let mut m = vec![if peer.loc_rib { 3 } else { 0 }, 0];
        m.extend([0u8; 8]);
        m.extend([0u8; 12]);
        m.extend(peer.addr.octets());
        m.extend(peer.asn.to_be_bytes());
        m.extend(peer.addr.octets());
        m.extend(secs.to_be_bytes());
        m.extend(0u32.to_be_bytes());
        m.extend([0xff; 16]);
        m.extend(((19 + body.len()) as u16).to_be_bytes());
        m.push(2);
        m.extend(body);
        framed(0, m)
    }
}

/// A TCP connection to `to` from the loopback address `from` (a router of its own: the
/// daemon knows a BMP router by its address).
pub fn connect_from(from: std::net::Ipv4Addr, to: SocketAddr) -> TcpStream {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.bind(&SocketAddr::from((from, 0)).into()).unwrap();
    s.connect(&to.into()).unwrap();
    s.into()
}

/// A small filesystem (tmpfs of `size`) at `dir`, in a mount namespace of its own held
/// open by a `sleep` (so a daemon can be killed and restarted on the same files): a state
/// file on a disk the test can fill and free. Needs root (as the whole lab does).
pub struct SmallDisk {
    holder: Child,
    pub dir: PathBuf,
}

impl SmallDisk {
    pub fn new(dir: &std::path::Path, size: &str) -> SmallDisk {
        std::fs::create_dir_all(dir).unwrap();
        let holder = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sleep", "3600"])
            .stdin(Stdio::null())
            .spawn()
            .expect("unshare (util-linux)");
        let disk = SmallDisk {
            holder,
            dir: dir.to_path_buf(),
        };
        // The namespace exists once the child has exec'd sleep.
        let pid = disk.holder.id().to_string();
        let in_ns = wait_for(Duration::from_secs(5), || {
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
            exe.to_string_lossy().contains("sleep").then_some(())
        });
        assert!(in_ns.is_some(), "unshare did not start");
        let out = disk
            .command("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mount: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        disk
    }

    /// The wrapper that runs a program in the namespace.
    pub fn wrapper(&self) -> Vec<String> {
        ["nsenter", "-t", &self.holder.id().to_string(), "-m", "--"]
            .map(String::from)
            .to_vec()
    }

    /// `program` in the namespace.
    pub fn command(&self, program: &str) -> Command {
        let w = self.wrapper();
        let mut c = Command::new(&w[0]);
        c.args(&w[1..]).arg(program);
        c
    }

    /// Fills the disk to the last byte (a file `filler`).
    pub fn fill(&self) {
        let _ = self
            .command("dd")
            .args(["if=/dev/zero", "bs=4096", "status=none"])
            .arg(format!("of={}", self.dir.join("filler").display()))
            .stderr(Stdio::null())
            .status();
        let out = self.command("df").arg(&self.dir).output().unwrap();
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("100%"),
            "not full: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }

    /// Frees what [`Self::fill`] took.
    pub fn free(&self) {
        let st = self
            .command("rm")
            .arg(self.dir.join("filler"))
            .status()
            .unwrap();
        assert!(st.success());
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}
