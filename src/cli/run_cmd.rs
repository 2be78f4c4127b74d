//! `routewitness run`: its arguments, and the daemon's configuration built from them and
//! the configuration file.
//!
//! One configuration: [`crate::config::Loaded`], read from `--config` (or the defaults,
//! which are what `routewitness.example.toml` states), with the options given on the
//! command line put over it ([`crate::config::Overrides`]). The daemon's
//! [`crate::daemon::RunConfig`] is then made from that alone.

use super::*;
use crate::config::{Loaded, Overrides};

#[derive(Args, Debug)]
pub struct RunArgs {
    /// A configuration file (see routewitness.example.toml); the options below, when
    /// given, replace what it says (a list given replaces its list).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where routers connect with BMP (RFC 7854). [default: 127.0.0.1:11019]
    #[arg(long, value_name = "ADDR:PORT")]
    pub bmp: Option<std::net::SocketAddr>,
    /// Where the HTTP API listens. [default: 127.0.0.1:9179]
    #[arg(long, value_name = "ADDR:PORT")]
    pub api: Option<std::net::SocketAddr>,
    /// Which routes of each router are judged. [default: pre-policy]
    #[arg(long, value_enum)]
    pub view: Option<RunView>,
    /// Judge policy: a built-in name (default, strict, monitor-only) or a TOML file.
    /// [default: default]
    #[arg(long, value_name = "NAME|FILE")]
    pub policy: Option<String>,
    #[command(flatten)]
    pub vrp: VrpArgs,
    /// MRT files replayed into the judge before BMP (a demo feed). Default: the bundled
    /// fixtures (without --config), or the configuration's MRT feeds.
    #[arg(long, value_name = "MRT", num_args = 1..)]
    pub replay: Vec<PathBuf>,
    /// Replay nothing; judge BMP only.
    #[arg(long, conflicts_with = "replay")]
    pub no_replay: bool,
    /// BMP sessions at once; more are refused. [default: 64]
    #[arg(long)]
    pub max_sessions: Option<usize>,
    /// Largest BMP message accepted, in bytes; a longer one drops its session.
    /// [default: 1048576]
    #[arg(long)]
    pub max_message: Option<usize>,
    /// How far a router's BMP timestamps may be from their arrival before the message is
    /// judged at its arrival; `0s` takes them as they are (only to stream a recorded
    /// capture, e.g. `mrt2bmp` output). [default: 5m]
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub max_clock_skew: Option<std::time::Duration>,
    /// A file holding the bearer token that the API's holds and releases require
    /// (`POST /v1/quarantine/ID/hold|release`); without one they are refused.
    #[arg(long, value_name = "FILE")]
    pub api_token_file: Option<PathBuf>,
    /// How long shutdown may take (closing sessions, draining the judge). [default: 10s]
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub shutdown_timeout: Option<std::time::Duration>,
    /// The SQLite state file (decision log, quarantine, trust, established claims); a
    /// restart takes up from it. [default: routewitness-state.sqlite]
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
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
    #[arg(long, value_name = "FILE")]
    pub tal: Vec<PathBuf>,
    /// Sources that must carry a VRP or ASPA for it to be used (default: a majority).
    #[arg(long, value_name = "N")]
    pub quorum: Option<usize>,
    /// Keep no state: decisions in memory only (the last 10,000), nothing survives a restart.
    #[arg(long, conflicts_with = "state")]
    pub no_state: bool,
    /// Start a new state when the state file is 0 bytes, has none of its tables, or is
    /// damaged: the file is moved aside (`FILE.old-SECONDS`), never deleted. Without it
    /// such a file refuses to start (see `routewitness state check`).
    #[arg(long, conflicts_with = "no_state")]
    pub new_state: bool,
    /// Serve routers the RPKI data routewitness validates with, over RTR (RFC 8210;
    /// versions 0-2) on this address (see [act] in routewitness.example.toml).
    #[arg(long, value_name = "ADDR:PORT")]
    pub rtr_listen: Option<std::net::SocketAddr>,
    /// Serve the quarantine (one VRP per held claim) over RTR on this address, to the
    /// routers given with --quarantine-router.
    #[arg(long, value_name = "ADDR:PORT")]
    pub quarantine_listen: Option<std::net::SocketAddr>,
    /// A router (source address) allowed to take the quarantine feed; repeat for several.
    #[arg(long, value_name = "IP")]
    pub quarantine_router: Vec<std::net::IpAddr>,
    /// A BIRD control socket at which each change of the quarantine is verified (named
    /// bird1, bird2, ... in the audit log); repeat for several.
    #[arg(long, value_name = "PATH")]
    pub bird_socket: Vec<PathBuf>,
    /// An FRR (vtysh's --vty_socket directory) on which the quarantine is applied as
    /// route-map RW-QUARANTINE (named frr1, frr2, ...); repeat for several.
    #[arg(long, value_name = "DIR")]
    pub frr_vty: Vec<PathBuf>,
}

/// [`crate::ingest::bmp::View`] on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RunView {
    PrePolicy,
    PostPolicy,
    LocRib,
}

impl RunArgs {
    /// The options given, to put over the configuration.
    pub fn overrides(&self) -> Overrides {
        use crate::ingest::bmp::View;
        Overrides {
            bmp: self.bmp,
            api: self.api,
            view: self.view.map(|v| match v {
                RunView::PrePolicy => View::PrePolicy,
                RunView::PostPolicy => View::PostPolicy,
                RunView::LocRib => View::LocRib,
            }),
            policy: self.policy.clone(),
            vrps: self.vrp.vrps.clone(),
            vrp_format: (self.vrp.vrp_format != VrpFormat::Auto).then_some(self.vrp.vrp_format),
            skip_invalid_vrps: self.vrp.skip_invalid_vrps,
            ignore_expires: self.vrp.ignore_expires,
            slurm: self.vrp.slurm.clone(),
            replay: self.replay.clone(),
            no_replay: self.no_replay,
            max_sessions: self.max_sessions,
            max_clock_skew: self.max_clock_skew,
            max_message: self.max_message,
            shutdown_timeout: self.shutdown_timeout,
            api_token_file: self.api_token_file.clone(),
            state: self.state.clone(),
            no_state: self.no_state,
            new_state: self.new_state,
            rtr: self.rtr.clone(),
            rpki_dir: self.rpki_dir.clone(),
            tal: self.tal.clone(),
            quorum: self.quorum,
            rtr_listen: self.rtr_listen,
            quarantine_listen: self.quarantine_listen,
            quarantine_router: self.quarantine_router.clone(),
            bird_socket: self.bird_socket.clone(),
            frr_vty: self.frr_vty.clone(),
        }
    }
}

/// The configuration without a file: every default, and the bundled MRT as a demo feed.
pub fn default_config() -> Loaded {
    Loaded {
        config: crate::config::Config::default(),
        bmp: crate::config::BmpFeed::default(),
        mrt: BUNDLED_MRT.iter().map(|f| fixtures_dir().join(f)).collect(),
    }
}

/// `routewitness run`.
pub fn run(args: RunArgs) -> Result<Outcome, CliError> {
    let overrides = args.overrides();
    let mut loaded = match &args.config {
        Some(path) => {
            let l = Loaded::load(path).map_err(|e| CliError::Usage(format!("config: {e}")))?;
            tracing::info!("configuration from {}", path.display());
            l
        }
        None => default_config(),
    };
    overrides.apply(&mut loaded);
    check(&loaded, &overrides)?;
    let reload = crate::daemon::Reload {
        config: args.config.clone(),
        overrides,
        running: loaded.clone(),
    };
    let (cfg, vrps, policy) = run_config(loaded, reload)?;
    crate::daemon::run(cfg, vrps, policy).map_err(|e| CliError::Failed(Failed(e.to_string())))?;
    Ok(Outcome::Ok)
}

/// What the file's own checks cover, for what the command line gave.
fn check(l: &Loaded, o: &Overrides) -> Result<(), CliError> {
    let usage = |s: String| Err(CliError::Usage(s));
    if l.bmp.max_message < crate::ingest::bmp::COMMON_HEADER {
        return usage(format!(
            "--max-message {} is smaller than a BMP header",
            l.bmp.max_message
        ));
    }
    let rpki = &l.config.rpki;
    if !rpki.tals.is_empty() {
        crate::rpki::signed::read_tals(&rpki.tals)
            .map_err(|e| CliError::Usage(format!("--tal {e}")))?;
        if rpki.directories.is_empty() {
            return usage("--tal: give the repository with --rpki-dir".into());
        }
    }
    for d in &rpki.directories {
        if !d.is_dir() {
            return usage(format!("--rpki-dir {}: not a directory", d.display()));
        }
    }
    if l.config.act.quarantine_listen.is_none()
        && (!o.quarantine_router.is_empty() || !o.bird_socket.is_empty())
    {
        return usage(
            "--quarantine-router and --bird-socket need --quarantine-listen (the feed they \
             take and verify)"
                .into(),
        );
    }
    Ok(())
}

/// The VRP options of the configuration, as the loaders take them.
fn vrp_args(l: &Loaded) -> VrpArgs {
    let r = &l.config.rpki;
    VrpArgs {
        vrps: r.vrps.clone(),
        vrp_format: r.format,
        skip_invalid_vrps: r.skip_invalid,
        ignore_expires: r.ignore_expires,
        slurm: r.slurm.clone(),
    }
}

/// The VRPs the daemon starts with, and how to describe them. With RTR caches or
/// repositories, none until they answer (not the bundled demo snapshot: live routes
/// judged against someone else's data would mislead).
fn initial_vrps(l: &Loaded) -> Result<(VrpSet, String), CliError> {
    let r = &l.config.rpki;
    if r.rtr.is_empty() && r.directories.is_empty() {
        let args = vrp_args(l);
        let vrps = load_vrps(&args)?;
        let mut description = describe_vrps(&vrps, &VrpIndex::new(&vrps));
        if let Some(f) = &args.slurm {
            description.push_str(&format!(", with SLURM {}", f.display()));
        }
        return Ok((vrps, description));
    }
    let sources = r
        .rtr
        .iter()
        .map(|c| format!("RTR cache {c}"))
        .chain(
            r.directories
                .iter()
                .map(|d| format!("repository {}", d.display())),
        )
        .collect::<Vec<_>>()
        .join(", ");
    Ok((
        VrpSet::default(),
        format!("none yet: waiting for the RPKI sources ({sources})"),
    ))
}

/// The RPKI sources: RTR caches, repositories, and the VRP file (beside them when
/// given, the only one, reloaded when it changes, without them).
fn rpki_sources(l: &Loaded) -> Result<crate::daemon::RpkiSources, CliError> {
    let r = &l.config.rpki;
    let options = LoadOptions {
        format: r.format,
        skip_invalid: r.skip_invalid,
    };
    let mut sources: Vec<_> = r
        .rtr
        .iter()
        .map(|c| crate::daemon::SourceSpec::Rtr(c.clone()))
        .collect();
    sources.extend(
        r.directories
            .iter()
            .map(|d| crate::daemon::SourceSpec::Directory {
                dir: d.clone(),
                tals: r.tals.clone(),
            }),
    );
    let others = !sources.is_empty();
    if !others || r.vrps.is_some() {
        sources.push(crate::daemon::SourceSpec::File {
            path: r
                .vrps
                .clone()
                .unwrap_or_else(|| fixtures_dir().join(BUNDLED_VRPS)),
            options,
            loaded: !others,
        });
    }
    Ok(crate::daemon::RpkiSources {
        sources,
        quorum: r.quorum,
        slurm: load_slurm(&vrp_args(l))?.map(std::sync::Arc::new),
        max_loss: r.max_loss,
        freeze: r.freeze,
        file_poll: r.poll,
    })
}

/// Says how many VRPs have expired (and are not used for live routes).
fn warn_expired(vrps: &VrpSet) {
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

/// The daemon's configuration, its first VRPs and its policy, from the configuration.
fn run_config(
    l: Loaded,
    reload: crate::daemon::Reload,
) -> Result<(crate::daemon::RunConfig, VrpSet, Policy), CliError> {
    let c = &l.config;
    let policy = Policy::load(&c.policy).map_err(|e| CliError::Usage(format!("policy: {e}")))?;
    let api_token = match &c.api.token_file {
        Some(f) => Some(
            crate::config::read_token(f)
                .map_err(|e| CliError::Usage(format!("--api-token-file {e}")))?,
        ),
        None => None,
    };
    let (vrps, description) = initial_vrps(&l)?;
    let honour_expires = !c.rpki.ignore_expires;
    if honour_expires {
        warn_expired(&vrps);
    }
    // In time order, as `replay` does: the judge's clock only goes forward.
    let mut replay: Vec<(Option<EventTime>, PathBuf)> = l
        .mrt
        .iter()
        .map(|p| {
            (
                crate::ingest::mrt::first_record_time(p).ok().flatten(),
                p.clone(),
            )
        })
        .collect();
    replay.sort_by_key(|(t, _)| *t);
    let mut keys = Vec::new();
    for f in &c.alerts.signing_keys {
        let text = std::fs::read_to_string(f)
            .map_err(|e| CliError::Usage(format!("{}: {e}", f.display())))?;
        keys.push(
            crate::act::webhook::Key::parse(&text)
                .map_err(|e| CliError::Usage(format!("{}: {e}", f.display())))?,
        );
    }
    let cfg = crate::daemon::RunConfig {
        bmp: l.bmp.listen,
        api: c.api.listen,
        view: l.bmp.view,
        max_sessions: l.bmp.max_sessions,
        max_message: l.bmp.max_message,
        api_max_connections: c.api.max_connections,
        initiation_timeout: l.bmp.initiation_timeout,
        idle_timeout: l.bmp.idle_timeout,
        max_clock_skew: l.bmp.max_clock_skew,
        max_prefixes: crate::pipeline::Limits {
            per_peer: l.bmp.max_prefixes_per_peer,
            per_router: l.bmp.max_prefixes_per_router,
            warn: l.bmp.max_prefixes_warn,
        },
        bmp_allow: l.bmp.allow.clone(),
        replay: replay.into_iter().map(|(_, p)| p).collect(),
        shutdown_timeout: c.shutdown_timeout,
        honour_expires,
        rpki_description: description,
        api_token,
        rpki: Some(rpki_sources(&l)?),
        act: c.act.clone(),
        alerts: (c.alerts.clone(), keys),
        state: c.state.path.clone().map(|path| crate::daemon::StateConfig {
            path,
            keep_decisions: c.state.keep_decisions,
            checkpoint: c.state.checkpoint,
            restore_grace: c.state.restore_grace,
            new_state: c.state.new_state,
        }),
        reload,
    };
    Ok((cfg, vrps, policy))
}
