//! The small commands: `keygen`, `webhook sign|verify`, `act`, `rpki inspect`, `config`,
//! `mrt2bmp`.

use super::*;

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
pub struct StateArgs {
    #[command(subcommand)]
    pub cmd: StateCmd,
}

#[derive(clap::Subcommand, Debug)]
pub enum StateCmd {
    /// Check a state file as `run` does before it starts (SQLite's quick_check and the
    /// schema's invariants): exit 0 when whole, 1 with the reasons otherwise.
    Check {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Keep what reads of a damaged state file: every row that still reads is copied,
    /// table by table, into a fresh file that takes its place; the damaged one is kept
    /// beside it (`FILE.damaged-SECONDS`). Stop the daemon first.
    Repair {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

/// `routewitness state check|repair`.
pub fn state(args: StateArgs) -> Result<Outcome, CliError> {
    use crate::state::check::{self, Health};
    match args.cmd {
        StateCmd::Check { file } => {
            match check::check(&file).map_err(|e| Failed(e.to_string()))? {
                Health::Whole => {
                    println!("{}: whole", file.display());
                    Ok(Outcome::Ok)
                }
                Health::Missing => Err(Failed(format!("{}: no such file", file.display())).into()),
                Health::Empty(what) => Err(Failed(format!(
                    "{}: {what}: not a state (run --new-state starts afresh)",
                    file.display()
                ))
                .into()),
                Health::Damaged(why) => Err(Failed(format!(
                    "{}: damaged:\n  {}\n{}",
                    file.display(),
                    why.join("\n  "),
                    check::ways_out(&file)
                ))
                .into()),
            }
        }
        StateCmd::Repair { file } => {
            if !file.is_file() {
                return Err(Failed(format!("{}: no such file", file.display())).into());
            }
            let r = check::repair(&file).map_err(|e| Failed(e.to_string()))?;
            for (table, kept, lost) in &r.tables {
                println!("{table}: {kept} rows kept, {lost} rows or ranges did not read");
            }
            println!(
                "{}: repaired; the damaged file is kept at {}",
                file.display(),
                r.damaged_kept_at.display()
            );
            Ok(Outcome::Ok)
        }
    }
}
