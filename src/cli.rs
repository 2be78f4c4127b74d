//! The commands behind the `routewitness` binary. `main.rs` parses arguments and maps the
//! [`Outcome`] to an exit code; everything else happens here.

use crate::judge::Policy;
use crate::model::{Asn, EventTime};
use crate::replay::{self, Judging, ReplayConfig};
use crate::rpki::{self, vrps, AspaSet, LoadOptions, RovState, VrpFormat, VrpIndex, VrpSet};
use clap::{Args, Parser, Subcommand, ValueEnum};
use ipnet::IpNet;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};

/// How a command ended; `main` turns it into the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 0: done.
    Ok,
    /// 2: done, but some input was damaged or truncated (everything readable was used).
    Incomplete,
}

/// A command failed; the message says why. Exit code 1.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Failed(pub String);

/// Why a command did not do its job: a failure (exit 1) or bad usage or configuration,
/// such as a policy that does not parse (exit 64).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Failed(#[from] Failed),
    #[error("{0}")]
    Usage(String),
}

#[derive(Parser, Debug)]
#[command(
    name = "routewitness",
    version,
    about = "Byzantine-tolerant BGP route validation",
    long_about = "Byzantine-tolerant BGP route validation.\n\nExit codes: 0 ok, 1 failure, \
                  2 input incomplete (damage reported), 64 bad usage."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log filter for stderr (tracing EnvFilter syntax), e.g. `debug` or `routewitness=trace`.
    /// Default: `info` for `run`, `warn` otherwise.
    #[arg(long, global = true, env = "ROUTEWITNESS_LOG")]
    pub log: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Replay MRT dumps through origin validation and print a report.
    ///
    /// With no files, replays the bundled fixtures (a Route Views RIB slice and update
    /// dumps, judged against a 723k-VRP rpki-client snapshot).
    Replay(ReplayArgs),
    /// Show the RPKI state of one route and the VRPs that decide it.
    Validate(ValidateArgs),
    /// Measure a policy on real days: replay MRT with labelled incidents (a labels file,
    /// and/or hijacks injected into the real background with `--inject`) and report,
    /// per incident, whether and when it was held and whether it stayed held until it
    /// ended; outside them, the false holds (claims, the busiest minute, route-hours by
    /// rule).
    Eval(EvalArgs),
    /// The daemon: judge BMP from routers live (and replay MRT as a demo feed first),
    /// answer the HTTP API, until SIGTERM or SIGINT.
    ///
    /// With no options: BMP on 127.0.0.1:11019, the API on 127.0.0.1:9179, the bundled
    /// VRPs and MRT fixtures, the default policy.
    Run(Box<RunArgs>),
    /// Check a configuration file (`--check`) or print it with every default filled in
    /// (`--print`). Exit 64 when it cannot be used, naming the file, key and line.
    Config(ConfigArgs),
    /// Re-encode MRT BGP4MP updates as a BMP stream (Route Monitoring, pre-policy), e.g.
    /// to feed recorded routes to `run` with `nc 127.0.0.1 11019 < out.bmp`.
    Mrt2bmp(Mrt2BmpArgs),
    /// RPKI objects: `rpki inspect FILE...` reads signed objects (.roa, .asa, .mft),
    /// certificates and CRLs, says what they assert, and with `--repo DIR` checks their
    /// signatures and certificate chain up to the trust anchor.
    Rpki(RpkiArgs),
    /// Acting on routers: `act config bird|frr` prints the router configuration that
    /// takes routewitness's RTR feeds (the RPKI data and the quarantine).
    Act(ActArgs),
    /// Make webhook signing keys (Standard Webhooks): an ed25519 pair (`whsk_` to sign,
    /// `whpk_` for receivers), or with `--shared` an HMAC secret (`whsec_`).
    Keygen(KeygenArgs),
    /// Standard Webhooks signatures: `webhook sign` and `webhook verify`, for receivers'
    /// own tests.
    Webhook(WebhookArgs),
}

#[derive(Args, Debug)]
pub struct KeygenArgs {
    /// A shared HMAC-SHA256 secret (`whsec_`, signature v1) instead of an ed25519 pair.
    #[arg(long)]
    pub shared: bool,
}

#[derive(Args, Debug)]
pub struct WebhookArgs {
    #[command(subcommand)]
    pub cmd: WebhookCmd,
}

#[derive(clap::Subcommand, Debug)]
pub enum WebhookCmd {
    /// Print the `webhook-signature` value of a request (one signature per key).
    Sign(WebhookSignArgs),
    /// Check a received request: exit 0 when a signature verifies with one of the keys
    /// and the timestamp is within the tolerance, else exit 1 with the reason.
    Verify(WebhookVerifyArgs),
}

#[derive(Args, Debug)]
pub struct WebhookSignArgs {
    /// A signing key (`whsk_` or `whsec_`); repeat for several (key rotation).
    #[arg(long = "key", value_name = "KEY", required = true)]
    pub keys: Vec<String>,
    /// The `webhook-id`.
    #[arg(long)]
    pub id: String,
    /// The `webhook-timestamp` (Unix seconds; default: now).
    #[arg(long)]
    pub timestamp: Option<i64>,
    /// The body (a file; `-` for standard input).
    #[arg(long, value_name = "FILE")]
    pub body: PathBuf,
}

#[derive(Args, Debug)]
pub struct WebhookVerifyArgs {
    /// A key to verify with (`whpk_`, `whsk_` or `whsec_`); repeat for several.
    #[arg(long = "key", value_name = "KEY", required = true)]
    pub keys: Vec<String>,
    /// The `webhook-id` header.
    #[arg(long)]
    pub id: String,
    /// The `webhook-timestamp` header.
    #[arg(long)]
    pub timestamp: String,
    /// The `webhook-signature` header.
    #[arg(long)]
    pub signature: String,
    /// The body as received (a file; `-` for standard input).
    #[arg(long, value_name = "FILE")]
    pub body: PathBuf,
    /// How far the timestamp may be from now, in seconds.
    #[arg(long, default_value_t = 300)]
    pub tolerance: i64,
}

fn read_body(p: &Path) -> Result<Vec<u8>, CliError> {
    if p == Path::new("-") {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut b)
            .map_err(|e| Failed(format!("standard input: {e}")))?;
        Ok(b)
    } else {
        std::fs::read(p).map_err(|e| CliError::Usage(format!("{}: {e}", p.display())))
    }
}

fn parse_keys(keys: &[String]) -> Result<Vec<crate::act::webhook::Key>, CliError> {
    keys.iter()
        .map(|k| crate::act::webhook::Key::parse(k).map_err(|e| CliError::Usage(e.to_string())))
        .collect()
}

/// `routewitness keygen`.
pub fn keygen(args: KeygenArgs) -> Result<Outcome, CliError> {
    if args.shared {
        let s = crate::act::webhook::new_secret().map_err(Failed)?;
        println!("secret: {s}");
    } else {
        let (sk, pk) = crate::act::webhook::keygen().map_err(Failed)?;
        println!("secret_key: {sk}");
        println!("public_key: {pk}");
    }
    Ok(Outcome::Ok)
}

/// `routewitness webhook sign|verify`.
pub fn webhook(args: WebhookArgs) -> Result<Outcome, CliError> {
    use crate::act::webhook::{sign, verify};
    match args.cmd {
        WebhookCmd::Sign(a) => {
            let keys = parse_keys(&a.keys)?;
            let body = read_body(&a.body)?;
            let ts = a
                .timestamp
                .unwrap_or_else(|| chrono::Utc::now().timestamp());
            let sig = sign(&keys, &a.id, ts, &body);
            if sig.is_empty() {
                return Err(CliError::Usage(
                    "no signing key (whsk_ or whsec_) among --key".into(),
                ));
            }
            println!(
                "webhook-id: {}\nwebhook-timestamp: {ts}\nwebhook-signature: {sig}",
                a.id
            );
            Ok(Outcome::Ok)
        }
        WebhookCmd::Verify(a) => {
            let keys = parse_keys(&a.keys)?;
            let body = read_body(&a.body)?;
            let now = chrono::Utc::now().timestamp();
            match verify(
                &keys,
                Some(&a.id),
                Some(&a.timestamp),
                Some(&a.signature),
                &body,
                now,
                a.tolerance,
            ) {
                Ok(v) => {
                    println!("ok: {v} signature verified");
                    Ok(Outcome::Ok)
                }
                Err(e) => Err(Failed(format!("not verified: {e}")).into()),
            }
        }
    }
}

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ActArgs {
    #[command(subcommand)]
    pub cmd: Option<ActCmd>,
    /// Print what would be pushed to routers now (the quarantine feed's VRPs, the FRR
    /// commands), from the state file, without touching anything.
    #[arg(long)]
    pub dry_run: bool,
    /// The state file to read (default: the configuration's, else
    /// routewitness-state.sqlite).
    #[arg(long, value_name = "FILE", requires = "dry_run")]
    pub state: Option<PathBuf>,
    /// The daemon's configuration (its [act] caps and routers, its state file).
    #[arg(long, value_name = "FILE", requires = "dry_run")]
    pub config: Option<PathBuf>,
}

#[derive(clap::Subcommand, Debug)]
pub enum ActCmd {
    /// Print the router configuration for the feeds of a configuration file (its [act]
    /// section) or of the addresses given.
    Config(ActConfigArgs),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RouterKind {
    Bird,
    Frr,
}

#[derive(Args, Debug)]
pub struct ActConfigArgs {
    /// The router whose configuration is printed.
    #[arg(value_enum)]
    pub router: RouterKind,
    /// The daemon's configuration file (its [act] addresses).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["rtr_listen", "quarantine_listen"])]
    pub config: Option<PathBuf>,
    /// The RPKI feed's address (as `run --rtr-listen`).
    #[arg(long, value_name = "ADDR:PORT")]
    pub rtr_listen: Option<std::net::SocketAddr>,
    /// The quarantine feed's address (as `run --quarantine-listen`).
    #[arg(long, value_name = "ADDR:PORT")]
    pub quarantine_listen: Option<std::net::SocketAddr>,
}

/// `routewitness act --dry-run`: what the daemon would push now, from its state.
fn act_dry_run(state: Option<PathBuf>, config: Option<PathBuf>) -> Result<Outcome, CliError> {
    let loaded = match &config {
        Some(f) => Some(
            crate::config::Loaded::load(f).map_err(|e| CliError::Usage(format!("config: {e}")))?,
        ),
        None => None,
    };
    let act = loaded
        .as_ref()
        .map(|l| l.config.act.clone())
        .unwrap_or_default();
    let path = state
        .or_else(|| loaded.as_ref().and_then(|l| l.config.state.path.clone()))
        .unwrap_or_else(|| PathBuf::from(crate::config::DEFAULT_STATE));
    if !path.is_file() {
        return Err(CliError::Usage(format!(
            "act --dry-run: no state file {}",
            path.display()
        )));
    }
    let reader = crate::state::Reader::open(&path).map_err(|e| Failed(e.to_string()))?;
    let held = reader
        .held_claims()
        .map_err(|e| Failed(format!("{}: {e}", path.display())))?;
    let routes: u64 = held.iter().map(|h| h.2).sum();
    println!(
        "From {}: {routes} held routes, {} claims. Nothing is pushed (dry run).",
        path.display(),
        held.len()
    );
    let servable: Vec<_> = held.iter().filter(|h| h.1.is_some()).collect();
    let unservable = held.len() - servable.len();
    println!(
        "\nQuarantine feed (RTR): {} VRPs{}",
        servable.len(),
        if unservable > 0 {
            format!(" ({unservable} claims without a single origin cannot be VRPs)")
        } else {
            String::new()
        }
    );
    for (p, o, n, rules) in &servable {
        let o = o.map_or(0, |a| a.0);
        println!("  {p}-{} AS{o}   ({n} routes; {rules})", p.prefix_len());
    }
    if servable.len() > act.max_quarantined {
        println!(
            "  over act.max_quarantined ({}): the daemon would stop acting at that point",
            act.max_quarantined
        );
    }
    for f in &act.frr {
        println!(
            "\nFRR {} (vtysh --vty_socket {}), after removing what routewitness left:",
            f.name,
            f.vty_socket.display()
        );
        println!("  configure terminal");
        println!("  route-map {} permit 65535", crate::act::frr::ROUTE_MAP);
        println!("  exit");
        for (i, (p, o, _, _)) in servable.iter().enumerate() {
            let k = (*p, p.prefix_len(), o.map_or(0, |a| a.0));
            for c in crate::act::frr::entry_commands(k, (i + 1).min(65_534) as u16, true) {
                println!("  {c}");
            }
        }
        println!("  end\n  clear bgp ipv4 unicast * soft in\n  clear bgp ipv6 unicast * soft in");
    }
    Ok(Outcome::Ok)
}

/// `routewitness act ...`.
pub fn act(args: ActArgs) -> Result<Outcome, CliError> {
    let Some(cmd) = args.cmd else {
        if !args.dry_run {
            return Err(CliError::Usage(
                "act: give --dry-run or a subcommand (act config bird|frr)".into(),
            ));
        }
        return act_dry_run(args.state, args.config);
    };
    match cmd {
        ActCmd::Config(a) => {
            let e = match &a.config {
                Some(f) => {
                    let l = crate::config::Loaded::load(f)
                        .map_err(|e| CliError::Usage(format!("config: {e}")))?;
                    crate::act::router_config::Endpoints {
                        rpki: l.config.act.rtr_listen,
                        quarantine: l.config.act.quarantine_listen,
                    }
                }
                None => crate::act::router_config::Endpoints {
                    rpki: a.rtr_listen,
                    quarantine: a.quarantine_listen,
                },
            };
            if e.rpki.is_none() && e.quarantine.is_none() && a.router == RouterKind::Bird {
                return Err(CliError::Usage(
                    "no feed to configure: give --rtr-listen and/or --quarantine-listen (or a \
                     --config with act.rtr_listen / act.quarantine_listen)"
                        .into(),
                ));
            }
            match a.router {
                RouterKind::Bird => print!("{}", crate::act::router_config::bird(&e)),
                RouterKind::Frr => print!("{}", crate::act::router_config::frr(&e)),
            }
            Ok(Outcome::Ok)
        }
    }
}

#[derive(Args, Debug)]
pub struct RpkiArgs {
    #[command(subcommand)]
    pub cmd: RpkiCmd,
}

#[derive(clap::Subcommand, Debug)]
pub enum RpkiCmd {
    /// Decode and check RPKI objects (one JSON object per line with --json).
    Inspect(InspectArgs),
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Objects (or directories, read recursively).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// A local copy of the repository, laid out by rsync URI (DIR/HOST/MODULE/PATH, as
    /// rpki-client's cache): issuers are found there and the chain checked.
    #[arg(long, value_name = "DIR")]
    pub repo: Option<PathBuf>,
    /// A TAL (RFC 8630): chains must end at its trust anchor (its key); repeat for
    /// several. Without one, any self-signed certificate ends a chain.
    #[arg(long, value_name = "FILE", requires = "repo")]
    pub tal: Vec<PathBuf>,
    /// One JSON object per file instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `routewitness rpki inspect`: exit 0 when every object decoded (and, with --repo,
/// validated at least as of its issuance), 2 otherwise.
pub fn rpki(args: RpkiArgs) -> Result<Outcome, CliError> {
    let RpkiCmd::Inspect(a) = args.cmd;
    let tals = crate::rpki::signed::read_tals(&a.tal)
        .map_err(|e| CliError::Usage(format!("--tal {e}")))?;
    let mut files = Vec::new();
    for f in &a.files {
        collect_files(f, &mut files);
    }
    files.sort();
    let mut bad = 0usize;
    let mut out = std::io::stdout().lock();
    for f in &files {
        let i = crate::rpki::signed::inspect(f, a.repo.as_deref(), &tals);
        let fine = i.decoded && (a.repo.is_none() || i.kind == "crl" || i.signature != "invalid");
        bad += usize::from(!fine);
        let line = if a.json {
            serde_json::to_string(&i).unwrap_or_default()
        } else {
            format!(
                "{}: {} {}{}{}",
                i.file.display(),
                i.kind,
                if i.decoded {
                    i.content.to_string()
                } else {
                    format!("NOT DECODED: {}", i.error.as_deref().unwrap_or(""))
                },
                if i.decoded {
                    format!("; signature {}", i.signature)
                } else {
                    String::new()
                },
                i.detail
                    .as_deref()
                    .map_or(String::new(), |d| format!(" ({d})"))
            )
        };
        writeln!(out, "{line}").map_err(|e| CliError::Failed(Failed(e.to_string())))?;
    }
    eprintln!("{} objects, {} not decoded or not valid", files.len(), bad);
    Ok(if bad == 0 {
        Outcome::Ok
    } else {
        Outcome::Incomplete
    })
}

fn collect_files(p: &Path, out: &mut Vec<PathBuf>) {
    match std::fs::read_dir(p) {
        Ok(rd) => {
            for e in rd.flatten() {
                collect_files(&e.path(), out);
            }
        }
        Err(_) => out.push(p.to_path_buf()),
    }
}

#[derive(Args, Debug)]
pub struct ConfigArgs {
    /// The configuration file.
    #[arg(value_name = "FILE", default_value = "routewitness.toml")]
    pub file: PathBuf,
    /// Check it (the default).
    #[arg(long, conflicts_with = "print")]
    pub check: bool,
    /// Print it as the daemon would use it (TOML, every default filled in, feeds read).
    #[arg(long)]
    pub print: bool,
}

/// `routewitness config`.
pub fn config(args: ConfigArgs) -> Result<Outcome, CliError> {
    let loaded = crate::config::Loaded::load(&args.file)
        .map_err(|e| CliError::Usage(format!("config: {e}")))?;
    if args.print {
        #[derive(serde::Serialize)]
        struct Effective<'a> {
            #[serde(flatten)]
            config: &'a crate::config::Config,
            /// The BMP feed in use (from a feed file, or the default).
            bmp: &'a crate::config::BmpFeed,
            /// MRT files replayed first, in the order given.
            mrt: &'a [PathBuf],
        }
        let text = toml::to_string_pretty(&Effective {
            config: &loaded.config,
            bmp: &loaded.bmp,
            mrt: &loaded.mrt,
        })
        .map_err(|e| Failed(format!("cannot print the configuration: {e}")))?;
        print!("{text}");
    } else {
        println!(
            "{}: ok (BMP on {}, {} view; {} MRT files to replay; policy {}; API on {})",
            args.file.display(),
            loaded.bmp.listen,
            serde_json::to_value(loaded.bmp.view)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            loaded.mrt.len(),
            loaded.config.policy,
            loaded.config.api.listen
        );
    }
    Ok(Outcome::Ok)
}

#[derive(Args, Debug)]
pub struct Mrt2BmpArgs {
    /// MRT files (BGP4MP, BGP4MP_ET; plain, gzip or bzip2), in the order given.
    #[arg(value_name = "MRT", required = true)]
    pub files: Vec<PathBuf>,
    /// Where the BMP stream goes (`-`: stdout).
    #[arg(long, short, value_name = "FILE", default_value = "-")]
    pub output: PathBuf,
}

/// `routewitness mrt2bmp`.
pub fn mrt2bmp(args: Mrt2BmpArgs) -> Result<Outcome, Failed> {
    use std::io::Read;
    let mut out = Vec::new();
    let mut incomplete = false;
    for f in &args.files {
        let mut raw = Vec::new();
        crate::input::InputReader::open(f)
            .and_then(|mut r| r.read_to_end(&mut raw))
            .map_err(|e| Failed(format!("{}: {e}", f.display())))?;
        let st = crate::ingest::mrt2bmp::convert(&raw, &mut out);
        eprintln!(
            "{}: {} records -> {} route monitoring, {} peer down; {} skipped{}",
            f.display(),
            st.records,
            st.route_monitoring,
            st.peer_down,
            st.skipped,
            if st.truncated_tail > 0 {
                format!(
                    "; {} bytes at the end are not a whole record",
                    st.truncated_tail
                )
            } else {
                String::new()
            }
        );
        incomplete |= st.truncated_tail > 0;
    }
    let res = if args.output == Path::new("-") {
        std::io::stdout().lock().write_all(&out)
    } else {
        std::fs::write(&args.output, &out)
    };
    res.map_err(|e| Failed(format!("{}: {e}", args.output.display())))?;
    Ok(if incomplete {
        Outcome::Incomplete
    } else {
        Outcome::Ok
    })
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Take everything from this configuration file (see routewitness.example.toml)
    /// instead of the options below, which it excludes.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["bmp", "api", "view", "policy", "vrps", "vrp_format", "skip_invalid_vrps", "ignore_expires", "replay", "no_replay", "max_sessions", "max_message", "shutdown_timeout", "api_token_file", "state", "no_state", "rtr", "quorum", "rtr_listen", "quarantine_listen", "quarantine_router", "bird_socket", "frr_vty"])]
    pub config: Option<PathBuf>,
    /// Where routers connect with BMP (RFC 7854).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:11019")]
    pub bmp: std::net::SocketAddr,
    /// Where the HTTP API listens.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:9179")]
    pub api: std::net::SocketAddr,
    /// Which routes of each router are judged.
    #[arg(long, value_enum, default_value = "pre-policy")]
    pub view: RunView,
    /// Judge policy: a built-in name (default, strict, monitor-only) or a TOML file.
    #[arg(long, value_name = "NAME|FILE", default_value = "default")]
    pub policy: String,
    #[command(flatten)]
    pub vrp: VrpArgs,
    /// MRT files replayed into the judge before BMP (a demo feed). Default: the bundled
    /// fixtures.
    #[arg(long, value_name = "MRT", num_args = 1..)]
    pub replay: Vec<PathBuf>,
    /// Replay nothing; judge BMP only.
    #[arg(long, conflicts_with = "replay")]
    pub no_replay: bool,
    /// BMP sessions at once; more are refused.
    #[arg(long, default_value_t = 64)]
    pub max_sessions: usize,
    /// Largest BMP message accepted, in bytes; a longer one drops its session.
    #[arg(long, default_value_t = crate::ingest::bmp::DEFAULT_MAX_MESSAGE)]
    pub max_message: usize,
    /// A file holding the bearer token that the API's holds and releases require
    /// (`POST /v1/quarantine/ID/hold|release`); without one they are refused.
    #[arg(long, value_name = "FILE")]
    pub api_token_file: Option<PathBuf>,
    /// How long shutdown may take (closing sessions, draining the judge).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub shutdown_timeout: std::time::Duration,
    /// The SQLite state file (decision log, quarantine, trust, established claims); a
    /// restart takes up from it.
    #[arg(long, value_name = "FILE", default_value = crate::config::DEFAULT_STATE)]
    pub state: PathBuf,
    /// An RTR cache (HOST:PORT: StayRTR, Routinator, ...) to take RPKI data from (RFC
    /// 8210; version 2 with ASPA, falling back to 1 and 0); repeat for several. With
    /// several sources (caches, and --vrps when given), a payload is used when --quorum
    /// of them carry it. Every change is judged at once.
    #[arg(long, value_name = "HOST:PORT")]
    pub rtr: Vec<String>,
    /// A local copy of an RPKI repository (laid out by rsync URI, as rpki-client's cache
    /// is) whose ROAs and ASPAs are a source: each object's CMS signature, EE certificate,
    /// resources, CRL and chain up to a trust anchor are validated with the `rpki` crate,
    /// now; the copy is read again when a file in it changes. Repeat for several. Fetching
    /// (rsync, RRDP) is left to a relying party.
    #[arg(long, value_name = "DIR")]
    pub rpki_dir: Vec<PathBuf>,
    /// A TAL (RFC 8630) the --rpki-dir chains must end at; repeat for several. Without one,
    /// any self-signed certificate in the copy is trusted (and the log says so).
    #[arg(long, value_name = "FILE", requires = "rpki_dir")]
    pub tal: Vec<PathBuf>,
    /// Sources that must carry a VRP or ASPA for it to be used (default: a majority).
    #[arg(long, value_name = "N")]
    pub quorum: Option<usize>,
    /// Keep no state: decisions in memory only (the last 10,000), nothing survives a restart.
    #[arg(long, conflicts_with = "state")]
    pub no_state: bool,
    /// Serve routers the RPKI data routewitness validates with, over RTR (RFC 8210;
    /// versions 0-2) on this address (see [act] in routewitness.example.toml).
    #[arg(long, value_name = "ADDR:PORT")]
    pub rtr_listen: Option<std::net::SocketAddr>,
    /// Serve the quarantine (one VRP per held claim) over RTR on this address, to the
    /// routers given with --quarantine-router.
    #[arg(long, value_name = "ADDR:PORT")]
    pub quarantine_listen: Option<std::net::SocketAddr>,
    /// A router (source address) allowed to take the quarantine feed; repeat for several.
    #[arg(long, value_name = "IP", requires = "quarantine_listen")]
    pub quarantine_router: Vec<std::net::IpAddr>,
    /// A BIRD control socket at which each change of the quarantine is verified (named
    /// bird1, bird2, ... in the audit log); repeat for several.
    #[arg(long, value_name = "PATH", requires = "quarantine_listen")]
    pub bird_socket: Vec<PathBuf>,
    /// An FRR (vtysh's --vty_socket directory) on which the quarantine is applied as
    /// route-map RW-QUARANTINE (named frr1, frr2, ...); repeat for several.
    #[arg(long, value_name = "DIR")]
    pub frr_vty: Vec<PathBuf>,
    /// Everything of [act] from a configuration file (set with --config).
    #[arg(skip)]
    pub act: Option<Box<crate::config::ActConfig>>,
    /// `[alerts]` from a configuration file (webhooks are configured there only).
    #[arg(skip)]
    pub alerts: Option<Box<crate::config::AlertsConfig>>,
}

/// [`crate::ingest::bmp::View`] on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RunView {
    PrePolicy,
    PostPolicy,
    LocRib,
}

/// `routewitness run`.
pub fn run(mut args: RunArgs) -> Result<Outcome, CliError> {
    let mut state = crate::config::StateConfig::default();
    let d = crate::config::RpkiConfig::default();
    let mut rpki_guard = (d.max_loss, d.freeze, d.poll);
    let mut from_config = None;
    if let Some(path) = args.config.take() {
        let l = crate::config::Loaded::load(&path)
            .map_err(|e| CliError::Usage(format!("config: {e}")))?;
        state = l.config.state.clone();
        rpki_guard = (
            l.config.rpki.max_loss,
            l.config.rpki.freeze,
            l.config.rpki.poll,
        );
        from_config = Some((path.clone(), l.clone()));
        tracing::info!("configuration from {}", path.display());
        args = RunArgs {
            config: None,
            bmp: l.bmp.listen,
            api: l.config.api.listen,
            view: match l.bmp.view {
                crate::ingest::bmp::View::PrePolicy => RunView::PrePolicy,
                crate::ingest::bmp::View::PostPolicy => RunView::PostPolicy,
                crate::ingest::bmp::View::LocRib => RunView::LocRib,
            },
            policy: l.config.policy,
            vrp: VrpArgs {
                vrps: l.config.rpki.vrps,
                vrp_format: l.config.rpki.format,
                skip_invalid_vrps: l.config.rpki.skip_invalid,
                ignore_expires: l.config.rpki.ignore_expires,
                slurm: l.config.rpki.slurm.clone(),
            },
            no_replay: l.mrt.is_empty(),
            replay: l.mrt,
            max_sessions: l.bmp.max_sessions,
            max_message: l.bmp.max_message,
            shutdown_timeout: l.config.shutdown_timeout,
            api_token_file: l.config.api.token_file,
            rtr: l.config.rpki.rtr.clone(),
            rpki_dir: l.config.rpki.directories.clone(),
            tal: l.config.rpki.tals.clone(),
            quorum: l.config.rpki.quorum,
            no_state: l.config.state.path.is_none(),
            state: l.config.state.path.unwrap_or_default(),
            rtr_listen: None,
            quarantine_listen: None,
            quarantine_router: Vec::new(),
            bird_socket: Vec::new(),
            frr_vty: Vec::new(),
            act: Some(Box::new(l.config.act.clone())),
            alerts: Some(Box::new(l.config.alerts.clone())),
        };
    }
    let policy = Policy::load(&args.policy).map_err(|e| CliError::Usage(format!("policy: {e}")))?;
    if args.max_message < crate::ingest::bmp::COMMON_HEADER {
        return Err(CliError::Usage(format!(
            "--max-message {} is smaller than a BMP header",
            args.max_message
        )));
    }
    let api_token = match &args.api_token_file {
        Some(f) => Some(
            crate::config::read_token(f)
                .map_err(|e| CliError::Usage(format!("--api-token-file {e}")))?,
        ),
        None => None,
    };
    let reload = crate::daemon::Reload {
        config: from_config,
        policy: args.policy.clone(),
        token_file: args.api_token_file.clone(),
    };
    // With an RTR cache and no file, nothing until the cache answers (not the bundled
    // demo snapshot: live routes judged against someone else's data would mislead).
    if !args.tal.is_empty() {
        crate::rpki::signed::read_tals(&args.tal)
            .map_err(|e| CliError::Usage(format!("--tal {e}")))?;
    }
    if args.rpki_dir.is_empty() && !args.tal.is_empty() {
        return Err(CliError::Usage(
            "--tal: give the repository with --rpki-dir".into(),
        ));
    }
    for d in &args.rpki_dir {
        if !d.is_dir() {
            return Err(CliError::Usage(format!(
                "--rpki-dir {}: not a directory",
                d.display()
            )));
        }
    }
    let (vrps, description) = match (args.rtr.first(), args.rpki_dir.first(), &args.vrp.vrps) {
        (Some(_), _, _) | (None, Some(_), _) => (
            crate::rpki::VrpSet::default(),
            format!(
                "none yet: waiting for the RPKI sources ({})",
                args.rtr
                    .iter()
                    .map(|c| format!("RTR cache {c}"))
                    .chain(
                        args.rpki_dir
                            .iter()
                            .map(|d| format!("repository {}", d.display()))
                    )
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        _ => {
            let vrps = load_vrps(&args.vrp)?;
            let mut description = describe_vrps(&vrps, &VrpIndex::new(&vrps));
            if let Some(f) = &args.vrp.slurm {
                description.push_str(&format!(", with SLURM {}", f.display()));
            }
            (vrps, description)
        }
    };
    let index = VrpIndex::new(&vrps);
    let honour_expires = !args.vrp.ignore_expires;
    if honour_expires {
        let now = chrono::Utc::now().timestamp();
        let live = vrps
            .vrps
            .iter()
            .filter(|v| v.expires.is_none_or(|e| e >= now))
            .count();
        if live < vrps.vrps.len() {
            tracing::warn!(
                "{} of {} VRPs have expired: live routes are judged without them (replayed MRT at \
                 its own time); --ignore-expires uses them anyway",
                vrps.vrps.len() - live,
                vrps.vrps.len()
            );
        }
    }
    drop(index);
    let replay = if args.no_replay {
        Vec::new()
    } else if args.replay.is_empty() {
        BUNDLED_MRT.iter().map(|f| fixtures_dir().join(f)).collect()
    } else {
        args.replay
    };
    // In time order, as `replay` does: the judge's clock only goes forward.
    let mut replay: Vec<(Option<EventTime>, PathBuf)> = replay
        .into_iter()
        .map(|p| (crate::ingest::mrt::first_record_time(&p).ok().flatten(), p))
        .collect();
    replay.sort_by_key(|(t, _)| *t);
    let replay: Vec<PathBuf> = replay.into_iter().map(|(_, p)| p).collect();
    let cfg = crate::daemon::RunConfig {
        bmp: args.bmp,
        api: args.api,
        view: match args.view {
            RunView::PrePolicy => crate::ingest::bmp::View::PrePolicy,
            RunView::PostPolicy => crate::ingest::bmp::View::PostPolicy,
            RunView::LocRib => crate::ingest::bmp::View::LocRib,
        },
        max_sessions: args.max_sessions,
        max_message: args.max_message,
        replay,
        shutdown_timeout: args.shutdown_timeout,
        honour_expires,
        rpki_description: description,
        api_token,
        reload,
        rpki: Some(crate::daemon::RpkiSources {
            sources: {
                let options = LoadOptions {
                    format: args.vrp.vrp_format,
                    skip_invalid: args.vrp.skip_invalid_vrps,
                };
                let mut v: Vec<_> = args
                    .rtr
                    .iter()
                    .map(|c| crate::daemon::SourceSpec::Rtr(c.clone()))
                    .collect();
                v.extend(
                    args.rpki_dir
                        .iter()
                        .map(|d| crate::daemon::SourceSpec::Directory {
                            dir: d.clone(),
                            tals: args.tal.clone(),
                        }),
                );
                let others = !args.rtr.is_empty() || !args.rpki_dir.is_empty();
                // The VRP file: a source beside the caches and repositories when given,
                // the only one (reloaded when it changes) without them.
                if !others || args.vrp.vrps.is_some() {
                    v.push(crate::daemon::SourceSpec::File {
                        path: args
                            .vrp
                            .vrps
                            .clone()
                            .unwrap_or_else(|| fixtures_dir().join(BUNDLED_VRPS)),
                        options,
                        loaded: !others,
                    });
                }
                v
            },
            quorum: args.quorum,
            slurm: load_slurm(&args.vrp)?.map(std::sync::Arc::new),
            max_loss: rpki_guard.0,
            freeze: rpki_guard.1,
            file_poll: rpki_guard.2,
        }),
        act: args
            .act
            .clone()
            .map(|a| *a)
            .unwrap_or_else(|| crate::config::ActConfig {
                rtr_listen: args.rtr_listen,
                quarantine_listen: args.quarantine_listen,
                quarantine_routers: args.quarantine_router.clone(),
                bird: args
                    .bird_socket
                    .iter()
                    .enumerate()
                    .map(|(i, p)| crate::config::BirdConfig {
                        name: format!("bird{}", i + 1),
                        socket: p.clone(),
                        reload_in: Vec::new(),
                        verify_timeout: std::time::Duration::from_secs(5),
                    })
                    .collect(),
                frr: args
                    .frr_vty
                    .iter()
                    .enumerate()
                    .map(|(i, p)| crate::config::FrrConfig {
                        name: format!("frr{}", i + 1),
                        vty_socket: p.clone(),
                        verify_timeout: std::time::Duration::from_secs(5),
                    })
                    .collect(),
                ..Default::default()
            }),
        alerts: {
            let a = args.alerts.clone().map(|a| *a).unwrap_or_default();
            let mut keys = Vec::new();
            for f in &a.signing_keys {
                let text = std::fs::read_to_string(f)
                    .map_err(|e| CliError::Usage(format!("{}: {e}", f.display())))?;
                keys.push(
                    crate::act::webhook::Key::parse(&text)
                        .map_err(|e| CliError::Usage(format!("{}: {e}", f.display())))?,
                );
            }
            (a, keys)
        },
        state: (!args.no_state).then_some(crate::daemon::StateConfig {
            path: args.state,
            keep_decisions: state.keep_decisions,
            checkpoint: state.checkpoint,
            restore_grace: state.restore_grace,
        }),
    };
    crate::daemon::run(cfg, vrps, policy).map_err(|e| CliError::Failed(Failed(e.to_string())))?;
    Ok(Outcome::Ok)
}

#[derive(Args, Debug, Clone)]
pub struct VrpArgs {
    /// VRP export (rpki-client/Routinator/StayRTR JSON or CSV; plain, .gz or .bz2).
    /// Default: the bundled snapshot.
    #[arg(long, value_name = "FILE")]
    pub vrps: Option<PathBuf>,
    /// Format of --vrps.
    #[arg(long, value_enum, default_value = "auto")]
    pub vrp_format: VrpFormat,
    /// Skip malformed VRP entries with a warning instead of rejecting the file.
    #[arg(long)]
    pub skip_invalid_vrps: bool,
    /// Ignore VRP expiry (by default a VRP counts only until its `expires` time).
    #[arg(long)]
    pub ignore_expires: bool,
    /// A SLURM file (RFC 8416; version 2 with ASPA) applied on top of the RPKI data:
    /// its filters remove VRPs and ASPAs, its assertions add them.
    #[arg(long, value_name = "FILE")]
    pub slurm: Option<PathBuf>,
}

/// The SLURM file of `--slurm`, checked.
pub fn load_slurm(args: &VrpArgs) -> Result<Option<crate::rpki::slurm::Slurm>, Failed> {
    args.slurm
        .as_deref()
        .map(crate::rpki::slurm::Slurm::load)
        .transpose()
        .map_err(|e| Failed(format!("cannot use SLURM: {e}")))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Table,
    Json,
}

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// MRT files (TABLE_DUMP, TABLE_DUMP_V2, BGP4MP, BGP4MP_ET; plain, gzip or bzip2),
    /// replayed in the order of their first record's time.
    #[arg(value_name = "MRT")]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub vrp: VrpArgs,
    /// Report format on stdout.
    #[arg(long, value_enum, default_value = "table")]
    pub format: ReportFormat,
    /// Write one JSON line per judged announcement to FILE (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Rows in the top-invalid table.
    #[arg(long, default_value_t = 20)]
    pub top: usize,
    /// No progress bar, even on a terminal.
    #[arg(long)]
    pub no_progress: bool,
    /// Judge policy: a built-in name (default, strict, monitor-only) or a TOML file.
    #[arg(long, value_name = "NAME|FILE", default_value = "default")]
    pub policy: String,
    /// Write one JSON line per judge decision to FILE (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    pub decisions: Option<PathBuf>,
    /// Shadow mode: judge the same events under two policies and report what the second
    /// would have done differently (decisions are logged for POLICY_A).
    #[arg(long, num_args = 2, value_names = ["POLICY_A", "POLICY_B"], conflicts_with = "no_judge")]
    pub diff: Option<Vec<String>>,
    /// Origin validation only: no judge, no decisions.
    #[arg(long)]
    pub no_judge: bool,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// MRT files, replayed in the order of their first record's time (history first).
    #[arg(value_name = "MRT", required = true)]
    pub files: Vec<PathBuf>,
    /// Labelled incidents: one JSON object per line, `{"id", "kind": "origin" |
    /// "sub-prefix" | "forged-origin" | "leak" | "other", "prefix", "origin"?, "path"?
    /// (the routes' path ends with these ASes), "start", "end"}` (RFC 3339 or Unix
    /// seconds).
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,
    /// Inject N hijacks into the real background (origin, sub-prefix and forged-origin in
    /// turn), each from every peer with a route to the attacker, along that route.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub inject: usize,
    /// Seed of the injection's choices (the same seed gives the same cases).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Kinds to inject (repeatable; default: origin, sub-prefix, forged-origin, leak).
    #[arg(long = "inject-kind", value_enum, value_name = "KIND")]
    pub inject_kinds: Vec<InjectKind>,
    /// Write the injected incidents' labels to FILE (JSON lines, as --labels reads).
    #[arg(long, value_name = "FILE")]
    pub write_labels: Option<PathBuf>,
    /// Count false holds (and inject) from this time on; what comes before is history
    /// (RFC 3339 or Unix seconds). Default: the whole replay.
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// How many false holds the report explains, first ones first (the table shows 20
    /// of them; JSON all).
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub examples: usize,
    /// Judge without any RPKI data (the world of 2008, and of every prefix without a ROA).
    #[arg(long, conflicts_with = "vrps")]
    pub no_rpki: bool,
    #[command(flatten)]
    pub vrp: VrpArgs,
    /// Judge policy: a built-in name (default, strict, monitor-only) or a TOML file.
    #[arg(long, value_name = "NAME|FILE", default_value = "default")]
    pub policy: String,
    /// Report format on stdout.
    #[arg(long, value_enum, default_value = "table")]
    pub format: ReportFormat,
}

/// Injectable incident kinds.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum InjectKind {
    Origin,
    SubPrefix,
    ForgedOrigin,
    Leak,
}

#[derive(Args, Debug)]
pub struct ValidateArgs {
    /// The route's prefix, e.g. 1.1.1.0/24.
    pub prefix: IpNet,
    /// The route's origin AS, e.g. 13335 or AS13335.
    pub asn: Asn,
    #[command(flatten)]
    pub vrp: VrpArgs,
    /// Judge expiry at this time (RFC 3339 or Unix seconds); default: now.
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Where the bundled fixtures are: `./fixtures` when run from a checkout, otherwise the
/// directory this crate was built from.
pub fn fixtures_dir() -> PathBuf {
    let local = Path::new("fixtures");
    if local.join("README.md").is_file() {
        local.to_path_buf()
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
    }
}

/// The bundled VRP snapshot.
pub const BUNDLED_VRPS: &str = "vrp/rpki-client_20250720T093135Z.json.bz2";
/// The bundled MRT dumps replayed by default.
pub const BUNDLED_MRT: &[&str] = &[
    "mrt/routeviews2_rib.20140523.0600_slice.mrt.gz",
    "mrt/routeviews2_updates.20080224.1839.bz2",
    "mrt/routeviews2_updates.20080224.1854.bz2",
    "mrt/routeviews2_updates.20080224.1909.bz2",
    "mrt/routeviews2_updates.20080224.1924.bz2",
    "mrt/routeviews2_updates.20080224.1939.bz2",
    "mrt/routeviews2_updates.20080224.1954.bz2",
    "mrt/routeviews2_updates.20080224.2009.bz2",
];

/// Loads the VRPs named by the arguments (or the bundled ones) and logs what was loaded.
pub fn load_vrps(args: &VrpArgs) -> Result<VrpSet, Failed> {
    let path = args
        .vrps
        .clone()
        .unwrap_or_else(|| fixtures_dir().join(BUNDLED_VRPS));
    let set = vrps::load(
        &path,
        LoadOptions {
            format: args.vrp_format,
            skip_invalid: args.skip_invalid_vrps,
        },
    )
    .map_err(|e| Failed(format!("cannot use VRPs: {e}")))?;
    for w in &set.warnings {
        tracing::warn!("{}: {w}", path.display());
    }
    if !set.warnings.is_empty() {
        eprintln!(
            "warning: {} malformed VRP entries skipped in {} (see --log warn)",
            set.warnings.len(),
            path.display()
        );
    }
    let mut set = set;
    if let Some(slurm) = load_slurm(args)? {
        let e = slurm.apply(&mut set.vrps, &mut set.aspas);
        tracing::info!(
            "SLURM {}: {} VRPs filtered, {} added; {} ASPAs filtered or replaced, {} asserted",
            e.file,
            e.vrps_filtered,
            e.vrps_added,
            e.aspas_filtered,
            e.aspas_asserted
        );
    }
    Ok(set)
}

/// "723521 VRPs, 100 ASPAs from FILE (rpki-client-json, built ...)".
pub fn describe_vrps(set: &VrpSet, index: &VrpIndex) -> String {
    let mut s = format!("{} VRPs", index.len());
    s.push_str(&format!(", {} ASPAs", set.aspas.len()));
    if let Some(src) = &set.source {
        let fmt = serde_json::to_value(src.format)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        s.push_str(&format!(" from {} ({fmt}", src.path.display()));
        if let Some(g) = src.generated {
            s.push_str(&format!(", built {}", EventTime::from_secs(g)));
        }
        s.push(')');
    }
    s
}

/// A buffered writer for FILE, `-` for stdout, or nothing.
fn open_sink(path: Option<&Path>) -> Result<Option<BufWriter<Box<dyn Write>>>, Failed> {
    let Some(p) = path else {
        return Ok(None);
    };
    let w: Box<dyn Write> = if p.as_os_str() == "-" {
        Box::new(std::io::stdout())
    } else {
        Box::new(
            std::fs::File::create(p)
                .map_err(|e| Failed(format!("cannot create {}: {e}", p.display())))?,
        )
    };
    Ok(Some(BufWriter::with_capacity(1 << 20, w)))
}

/// `routewitness replay`.
pub fn replay(args: ReplayArgs) -> Result<Outcome, CliError> {
    let files = if args.files.is_empty() {
        let dir = fixtures_dir();
        BUNDLED_MRT.iter().map(|f| dir.join(f)).collect()
    } else {
        args.files.clone()
    };
    let set = load_vrps(&args.vrp)?;
    let mut set = set;
    let index = VrpIndex::new(&set);
    let vrp_line = describe_vrps(&set, &index);
    set.vrps = Vec::new();

    let show_progress = !args.no_progress && std::io::stderr().is_terminal();
    let progress: Option<Box<dyn FnMut(u64, u64)>> = if show_progress {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} replaying [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        Some(Box::new(move |done, total| {
            bar.set_length(total);
            bar.set_position(done);
            if done >= total {
                bar.finish_and_clear();
            }
        }))
    } else {
        None
    };

    let policies = if args.no_judge {
        Vec::new()
    } else {
        let names = args
            .diff
            .clone()
            .unwrap_or_else(|| vec![args.policy.clone()]);
        names
            .iter()
            .map(|n| Policy::load(n).map_err(|e| CliError::Usage(format!("policy: {e}"))))
            .collect::<Result<Vec<_>, _>>()?
    };
    let aspa = AspaSet::new(&set.aspas);
    let rpki_serial = set
        .source
        .as_ref()
        .and_then(|s| s.generated)
        .and_then(|g| u64::try_from(g).ok());
    drop(set);

    let config = ReplayConfig {
        files,
        honour_expires: !args.vrp.ignore_expires,
        top: args.top,
        progress,
        inject: Vec::new(),
    };
    if args.output.as_deref() == Some(Path::new("-"))
        && args.decisions.as_deref() == Some(Path::new("-"))
    {
        return Err(CliError::Usage(
            "--output - and --decisions - cannot both write to stdout".into(),
        ));
    }
    let mut routes_out = open_sink(args.output.as_deref())?;
    let mut decisions_out = open_sink(args.decisions.as_deref())?;
    let judging = (!policies.is_empty()).then(|| Judging {
        policies,
        aspa: &aspa,
        rpki_serial,
        decisions: decisions_out.as_mut().map(|w| w as &mut dyn Write),
        sink: None,
        observer: None,
    });
    let report = replay::run(
        config,
        &index,
        routes_out.as_mut().map(|w| w as &mut dyn Write),
        judging,
    )
    .map_err(|e| Failed(e.to_string()))?;
    for (sink, what) in [(routes_out, "routes"), (decisions_out, "decisions")] {
        if let Some(mut w) = sink {
            w.flush()
                .map_err(|e| Failed(format!("writing {what}: {e}")))?;
        }
    }

    let text = match args.format {
        ReportFormat::Table => crate::report::table(&report, &vrp_line),
        ReportFormat::Json => {
            let mut v = serde_json::to_value(&report)
                .map_err(|e| Failed(format!("cannot encode report: {e}")))?;
            v["rpki"] = serde_json::Value::String(vrp_line);
            let mut s = serde_json::to_string_pretty(&v)
                .map_err(|e| Failed(format!("cannot encode report: {e}")))?;
            s.push('\n');
            s
        }
    };
    let mut out = std::io::stdout().lock();
    // A closed pipe (`| head`) is not a failure of the replay.
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    Ok(if report.complete {
        Outcome::Ok
    } else {
        Outcome::Incomplete
    })
}

/// `routewitness eval`.
pub fn eval(args: EvalArgs) -> Result<Outcome, CliError> {
    use crate::eval::{self, IncidentKind};
    let from = args
        .from
        .as_deref()
        .map(eval::time_arg)
        .transpose()
        .map_err(|e| CliError::Usage(format!("--from: {e}")))?;
    let mut labels = match &args.labels {
        Some(p) => eval::read_labels(p).map_err(CliError::Usage)?,
        None => Vec::new(),
    };
    let mut injected = Vec::new();
    if args.inject > 0 {
        let kinds = args
            .inject_kinds
            .iter()
            .map(|k| match k {
                InjectKind::Origin => IncidentKind::Origin,
                InjectKind::SubPrefix => IncidentKind::SubPrefix,
                InjectKind::ForgedOrigin => IncidentKind::ForgedOrigin,
                InjectKind::Leak => IncidentKind::Leak,
            })
            .collect();
        let plan = eval::InjectPlan {
            count: args.inject,
            seed: args.seed,
            from,
            kinds,
        };
        let (l, evs) = eval::plan_injections(&args.files, &plan).map_err(Failed)?;
        if let Some(path) = &args.write_labels {
            let mut text = String::new();
            for label in &l {
                text.push_str(&serde_json::to_string(label).map_err(|e| Failed(e.to_string()))?);
                text.push('\n');
            }
            std::fs::write(path, text).map_err(|e| Failed(format!("{}: {e}", path.display())))?;
        }
        labels.extend(l);
        injected = evs;
    }
    if labels.is_empty() && args.inject == 0 {
        tracing::warn!("no labels and no --inject: every hold is counted as a false hold");
    }
    let mut set = if args.no_rpki {
        crate::rpki::vrps::VrpSet {
            vrps: Vec::new(),
            aspas: Vec::new(),
            warnings: Vec::new(),
            source: None,
        }
    } else {
        load_vrps(&args.vrp)?
    };
    let index = VrpIndex::new(&set);
    set.vrps = Vec::new();
    let policy = Policy::load(&args.policy).map_err(|e| CliError::Usage(format!("policy: {e}")))?;
    let (name, hash) = (policy.name.clone(), policy.hash());
    let aspa = AspaSet::new(&set.aspas);
    let mut tracker = eval::Tracker::new(&labels, from).map_err(CliError::Usage)?;
    tracker.max_examples = args.examples;
    let config = ReplayConfig {
        files: args.files.clone(),
        honour_expires: !args.vrp.ignore_expires,
        top: 0,
        progress: None,
        inject: injected,
    };
    let started = std::time::Instant::now();
    let judging = Judging {
        policies: vec![policy],
        aspa: &aspa,
        rpki_serial: None,
        decisions: None,
        sink: None,
        observer: Some(&mut tracker),
    };
    let replayed =
        replay::run(config, &index, None, Some(judging)).map_err(|e| Failed(e.to_string()))?;
    let stats = replayed.judges.first().map(|j| j.stats).unwrap_or_default();
    let report = tracker.finish(
        &name,
        &hash,
        args.files.len(),
        started.elapsed().as_secs_f64(),
        stats,
    );
    let text = match args.format {
        ReportFormat::Table => eval::table(&report),
        ReportFormat::Json => {
            let mut s = serde_json::to_string_pretty(&report)
                .map_err(|e| Failed(format!("cannot encode report: {e}")))?;
            s.push('\n');
            s
        }
    };
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    Ok(if replayed.complete {
        Outcome::Ok
    } else {
        Outcome::Incomplete
    })
}

fn parse_time(s: &str) -> Result<i64, Failed> {
    if let Ok(secs) = s.parse::<i64>() {
        return Ok(secs);
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp())
        .map_err(|_| Failed(format!("--at {s:?}: not RFC 3339 or Unix seconds")))
}

/// `routewitness validate`.
pub fn validate(args: ValidateArgs) -> Result<Outcome, Failed> {
    let set = load_vrps(&args.vrp)?;
    let index = VrpIndex::new(&set);
    let prefix = args.prefix.trunc();
    let at = match &args.at {
        Some(s) => Some(parse_time(s)?),
        None if args.vrp.ignore_expires => None,
        None => Some(chrono::Utc::now().timestamp()),
    };
    let at = if args.vrp.ignore_expires { None } else { at };
    let state = rpki::validate(&index, &prefix, Some(args.asn), at);
    let covering = index.covering(&prefix);
    let expired = |v: &rpki::Vrp| matches!((at, v.expires), (Some(t), Some(e)) if e < t);
    let classify = |v: &rpki::Vrp| -> &'static str {
        if expired(v) {
            "expired"
        } else if v.asn == args.asn && v.asn != Asn::ZERO && prefix.prefix_len() <= v.max_length {
            "matched"
        } else if v.asn == args.asn && v.asn != Asn::ZERO {
            "unmatched_length"
        } else {
            "unmatched_as"
        }
    };
    let refs: Vec<replay::VrpRef> = covering
        .iter()
        .map(|v| replay::VrpRef {
            prefix: v.prefix,
            max_length: v.max_length,
            asn: v.asn,
            ta: v.ta.clone(),
            expired: expired(v),
        })
        .collect();
    let why = replay::explain(&prefix, Some(args.asn), state, &refs);
    if args.json {
        let vrps: Vec<serde_json::Value> = covering
            .iter()
            .map(|v| {
                serde_json::json!({
                    "prefix": v.prefix, "max_length": v.max_length, "asn": v.asn,
                    "ta": v.ta, "expires": v.expires, "role": classify(v),
                })
            })
            .collect();
        let out = serde_json::json!({
            "route": {"prefix": prefix, "origin_asn": args.asn},
            "state": state.name(),
            "reason": state.reason(),
            "description": why,
            "at": at.map(|t| EventTime::from_secs(t).rfc3339()),
            "vrps": vrps,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&out).map_err(|e| Failed(e.to_string()))?
        );
    } else {
        println!("{prefix} {}: {}", args.asn, state.label());
        println!("  {why}");
        for v in &covering {
            println!(
                "  {:<17} {}-{} {}{}{}",
                classify(v),
                v.prefix,
                v.max_length,
                v.asn,
                v.ta.as_deref()
                    .map(|t| format!(" ({t})"))
                    .unwrap_or_default(),
                v.expires
                    .map(|e| format!(" expires {}", EventTime::from_secs(e)))
                    .unwrap_or_default()
            );
        }
        let n_expired = covering.iter().filter(|v| expired(v)).count();
        if n_expired > 0 && (state == RovState::NotFound || n_expired == covering.len()) {
            println!(
                "  note: {n_expired} covering VRPs had expired at {}; pass --at TIME or --ignore-expires to judge an older snapshot",
                at.map(|t| EventTime::from_secs(t).rfc3339()).unwrap_or_default()
            );
        }
    }
    Ok(Outcome::Ok)
}
