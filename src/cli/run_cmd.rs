//! `routewitness run`: its arguments, and the daemon's configuration built from them and
//! the configuration file.

use super::*;

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
