//! `routewitness run`: the long-running daemon. BMP from routers (and, for demos, MRT
//! replay) into the same ROV stage and judge as `replay`, and an HTTP API.
//!
//! ```text
//!  routers ──BMP/TCP──▶ accept_loop ──spawns──▶ bmp_session (one task per router)
//!                      (sessions.rs)            frames, decodes, converts
//!                                                 │ route events: DataTx (bounded, 64
//!                                                 │ batches: back-pressure to the routers)
//!                                                 ▼
//!  rpki_sources (rpki.rs) ── Input::Rpki, Alerts ──▶ ┌───────────────────────────┐
//!  reload_on_sighup (reload.rs) ── Input::Policy ──▶ │ pipeline thread           │
//!  HTTP API (crate::api) ── Routes/Held/Operator/ ─▶ │ (pipeline::Live): control │
//!     ActResume; sessions, verifiers ── Alerts,      │ first, then data; ROV,    │
//!     Actions ── all over ControlTx (unbounded:      │ Adj-RIB-In, judge,        │
//!     never full, never dropped; channels.rs)        │ quarantine                │
//!                                                    └──┬──────────┬─────────┬───┘
//!       Arc<Mutex<Shared>> (status.rs, publish.rs) ◀────┘          │         │
//!         the snapshot the API reads, never queued                 │         │
//!       StateMsg ──▶ state thread (state.rs): SQLite, outbox ◀─────┘         │
//!       quarantine feed / Change ──▶ RTR servers, BIRD verifiers, FRR ◀──────┘
//! ```
//!
//! Threads and tasks:
//! - a tokio runtime (two workers) runs the BMP listener, one task per router session, and
//!   the HTTP API. A session task frames and decodes its router's messages and turns them
//!   into route events with a [`crate::ingest::bmp::BmpConverter`] of its own (so a broken
//!   router costs only its own task, and routers convert in parallel); peers get their
//!   index from one shared registry. It sends the events of each socket read as one batch
//!   over the bounded data channel: when the judge falls behind, sessions wait and TCP
//!   pushes back on the routers, so memory stays bounded. Everything else (operators'
//!   requests, queries, new RPKI sets and policies, alerts, actions) travels on the
//!   control channel, which the pipeline empties before each round of data;
//! - the pipeline thread owns the judging state (ROV, the Adj-RIB-In and the judge,
//!   through a [`crate::pipeline::Pipeline`]) and is its only writer. It publishes a snapshot for
//!   the API (status, peer trust) every 200 ms while busy and up to every 10 ms when idle,
//!   and keeps the latest decisions; questions that need the live state (`/v1/routes`) go
//!   to it as messages, answered after everything received before them.
//! - the state thread writes decisions to SQLite ([`crate::state`]) before the API shows
//!   them, and the judge's checkpoints; a restarted daemon restores the judge from it.
//! - the RPKI task watches the sources (RTR caches, VRP files), merges them in quorum,
//!   applies SLURM and the sudden-loss freeze, indexes each new set on a blocking thread
//!   and hands it to the pipeline, which re-judges everything it holds against it.
//! - SIGHUP reloads the policy and the API token (from the configuration file, or the
//!   `--policy` and `--api-token-file` files); a file that does not load leaves the
//!   running ones in place. Other keys need a restart, and a reload says which changed.
//!
//! Bad input never stops the daemon: a stream that cannot be framed (bad version, length
//! shorter than the header or past the cap) drops that session; a message that does not
//! decode is skipped; both are counted by kind in `/metrics` and logged once per session.
//! Sessions beyond `max_sessions` are refused.
//!
//! Where things are: this file holds the configuration types, [`run`] (wiring and
//! shutdown); `channels.rs` the messages between threads; `status.rs` the API's snapshot;
//! `sessions.rs` the BMP listener and sessions; `pipeline.rs` the pipeline thread
//! (`pipeline::Live`: one method per kind of input, unit-tested without sockets) and
//! `publish.rs` the snapshot it publishes;
//! `state.rs` the state thread; `rpki.rs` the RPKI task; `reload.rs` SIGHUP. The HTTP
//! handlers are in [`crate::api`].

pub(crate) mod channels;
pub(crate) mod pipeline;
pub(crate) mod publish;
pub(crate) mod reload;
pub(crate) mod rpki;
pub(crate) mod sessions;
pub(crate) mod state;
pub(crate) mod status;

use crate::act::ActionRecord;
use crate::api::AppState;
use crate::ingest::bmp::View;
use crate::judge::Policy;
use crate::model::EventTime;
use crate::rpki::VrpSet;
use crate::state::{Reader, Restored, Store};
use channels::{ControlTx, Input};
use pipeline::{new_feeds, pipeline, Feeds, Wiring};
use reload::reload_on_sighup;
use rpki::rpki_sources;
use sessions::{accept_loop, Net, SessionCtx};
use state::{destinations, AlertSink};
use status::Shared;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

/// Decisions kept in memory for `/v1/decisions` when there is no state file.
pub(crate) const DECISIONS_KEPT: usize = 10_000;
/// Batches between the sessions and the pipeline. A batch is what one read of a socket
/// holds (at most ~128 KiB of BMP), so this bounds the decoded messages in flight.
pub(crate) const CHANNEL: usize = 64;
/// Decisions per message to the state thread (see `send_decisions`).
pub(crate) const DECISION_CHUNK: usize = 8192;
/// How often the API's snapshot is refreshed while busy (when idle, up to every 10 ms).
pub(crate) const PUBLISH_EVERY: Duration = Duration::from_millis(200);

/// What `run` needs (from the command line for now).
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub bmp: SocketAddr,
    pub api: SocketAddr,
    pub view: View,
    pub max_sessions: usize,
    pub max_message: usize,
    /// HTTP API connections served at once.
    pub api_max_connections: usize,
    /// See [`crate::config::BmpFeed`].
    pub initiation_timeout: Duration,
    pub idle_timeout: Duration,
    /// How far a router's timestamps may be from arrival; `ZERO`: taken as they are.
    pub max_clock_skew: Duration,
    /// Max-prefix per BMP peer and per monitored router.
    pub max_prefixes: crate::pipeline::Limits,
    /// The addresses routers may connect from over BMP (empty: any).
    pub bmp_allow: Vec<ipnet::IpNet>,
    /// MRT files replayed into the pipeline before BMP is judged (a demo feed).
    pub replay: Vec<PathBuf>,
    pub shutdown_timeout: Duration,
    pub honour_expires: bool,
    /// "723521 VRPs ... from FILE", for the status.
    pub rpki_description: String,
    /// The bearer token the API's POST endpoints require; none: they are refused.
    pub api_token: Option<String>,
    /// Where the state lives; none: in memory only.
    pub state: Option<StateConfig>,
    /// Where SIGHUP reloads from.
    pub reload: Reload,
    /// The RPKI sources watched while running (none: the data loaded at start stays).
    pub rpki: Option<RpkiSources>,
    /// Acting on routers (RTR feeds).
    pub act: crate::config::ActConfig,
    /// Alerts to the NOC, and the keys that sign them.
    pub alerts: (crate::config::AlertsConfig, Vec<crate::act::webhook::Key>),
}

/// One RPKI source.
#[derive(Clone, Debug)]
pub enum SourceSpec {
    /// An RTR cache, `HOST:PORT`.
    Rtr(String),
    /// A VRP file, reloaded when it changes.
    File {
        path: PathBuf,
        options: crate::rpki::LoadOptions,
        /// Loaded already at start (its data is in force): reload only on a change.
        loaded: bool,
    },
    /// A local copy of an RPKI repository (laid out by rsync URI, as rpki-client's cache):
    /// its ROAs and ASPAs, each validated up to a trust anchor (one of the TALs when given;
    /// see [`crate::rpki::signed::scan_repository`]), read again when a file changes.
    Directory { dir: PathBuf, tals: Vec<PathBuf> },
}

impl SourceSpec {
    fn name(&self) -> String {
        match self {
            SourceSpec::Rtr(c) => format!("rtr:{c}"),
            SourceSpec::File { path, .. } => format!("file:{}", path.display()),
            SourceSpec::Directory { dir, .. } => format!("repository:{}", dir.display()),
        }
    }
}

/// The RPKI sources and how they are merged.
#[derive(Clone, Debug)]
pub struct RpkiSources {
    pub sources: Vec<SourceSpec>,
    /// Sources that must carry a payload for it to be used (none: a majority).
    pub quorum: Option<usize>,
    /// Applied to the merged set.
    pub slurm: Option<Arc<crate::rpki::slurm::Slurm>>,
    /// Largest share of VRPs a new set may lose at once before the freeze.
    pub max_loss: f64,
    /// How long the previous set stays after a sudden loss.
    pub freeze: Duration,
    /// How often VRP files are checked for changes.
    pub file_poll: Duration,
}

/// What SIGHUP re-reads.
#[derive(Clone, Debug)]
pub struct Reload {
    /// The configuration file (`run --config`), read again.
    pub config: Option<PathBuf>,
    /// The command line's options, put over it again.
    pub overrides: crate::config::Overrides,
    /// The configuration running (to say what changed that takes a restart).
    pub running: crate::config::Loaded,
}

/// The SQLite state (see [`crate::state`]).
#[derive(Clone, Debug)]
pub struct StateConfig {
    pub path: PathBuf,
    /// Decisions kept in the log (older ones are deleted).
    pub keep_decisions: u64,
    /// How often trust, the judge's clock and the established claims are saved.
    pub checkpoint: Duration,
    /// How long routes held at the last stop are listed (as restored) while their
    /// routers reconnect; those not judged again by then are forgotten.
    pub restore_grace: Duration,
    /// Start afresh on a 0-byte, table-less or damaged file (moved aside).
    pub new_state: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot listen for BMP on {0}: {1}")]
    Bmp(SocketAddr, io::Error),
    #[error("cannot serve the API on {0}: {1}")]
    Api(SocketAddr, io::Error),
    #[error("cannot serve RTR on {0}: {1}")]
    Rtr(SocketAddr, io::Error),
    #[error("{0}")]
    Runtime(io::Error),
    #[error("the pipeline thread failed")]
    Pipeline,
    #[error("state: {0}")]
    State(#[from] crate::state::StateError),
}

pub(crate) fn lock(m: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    // A panic while holding the lock cannot leave `Shared` half-written in a way that
    // matters to readers (every field is replaced whole), so go on with it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn now() -> EventTime {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    EventTime(i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// Runs the daemon until SIGTERM or SIGINT.
/// The listeners, bound before anything is loaded: a port in use is an error at once.
struct Listeners {
    bmp: TcpListener,
    api: TcpListener,
    rpki: Option<TcpListener>,
    quarantine: Option<TcpListener>,
}

async fn bind(cfg: &RunConfig) -> Result<Listeners, DaemonError> {
    let bmp = TcpListener::bind(cfg.bmp)
        .await
        .map_err(|e| DaemonError::Bmp(cfg.bmp, e))?;
    let api = TcpListener::bind(cfg.api)
        .await
        .map_err(|e| DaemonError::Api(cfg.api, e))?;
    let mut rtr = [None, None];
    for (i, a) in [cfg.act.rtr_listen, cfg.act.quarantine_listen]
        .into_iter()
        .enumerate()
    {
        if let Some(a) = a {
            rtr[i] = Some(
                TcpListener::bind(a)
                    .await
                    .map_err(|e| DaemonError::Rtr(a, e))?,
            );
        }
    }
    let [rpki, quarantine] = rtr;
    Ok(Listeners {
        bmp,
        api,
        rpki,
        quarantine,
    })
}

/// Says where everything listens and what the daemon judges with.
fn log_start(cfg: &RunConfig, policy: &Policy, l: &Listeners) {
    let view = serde_json::to_value(cfg.view)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let addr = |l: &TcpListener| {
        l.local_addr()
            .map_or_else(|_| "?".into(), |a| a.to_string())
    };
    tracing::info!("BMP listener on {} (judging the {view} view)", addr(&l.bmp));
    tracing::info!(
        "HTTP API on http://{}/v1/status, metrics on /metrics",
        addr(&l.api)
    );
    tracing::info!("RPKI: {}", cfg.rpki_description);
    tracing::info!("policy {} ({})", policy.name, policy.hash());
    if let Some(l) = &l.rpki {
        tracing::info!(
            "RTR server for routers' RPKI on {} (the VRPs and ASPAs judged with)",
            addr(l)
        );
    }
    if let Some(l) = &l.quarantine {
        let routers = if cfg.act.quarantine_routers.is_empty() {
            "no router (act.quarantine_routers is empty)".to_string()
        } else {
            cfg.act
                .quarantine_routers
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        tracing::info!(
            "quarantine feed over RTR on {} for {routers} (caps: {} claims, {} a minute){}",
            addr(l),
            cfg.act.max_quarantined,
            cfg.act.max_quarantined_per_minute,
            if policy.act {
                ""
            } else {
                "; empty: the policy is monitor-only"
            }
        );
    }
}

/// Opens the state file (or none: `--no-state`) and says what it restored.
fn open_state(cfg: &RunConfig) -> Result<(Option<Store>, Restored), DaemonError> {
    let Some(sc) = &cfg.state else {
        tracing::info!("state: in memory only (--no-state; last {DECISIONS_KEPT} decisions)");
        return Ok((None, Restored::default()));
    };
    let (store, restored) = Store::open_with(&sc.path, sc.keep_decisions, sc.new_state)?;
    match &restored.saved {
        Some(saved) => tracing::info!(
            "state: {} (run {}): restored {} established claims, the trust of {} \
             peers, {} operator overrides, {} held routes, {} decisions",
            sc.path.display(),
            restored.run,
            saved.claims.as_ref().map_or(0, Vec::len),
            saved.trust.len(),
            saved.operators.len(),
            restored.quarantine.len(),
            restored.decisions
        ),
        None => tracing::info!("state: {} (new)", sc.path.display()),
    }
    if restored.damaged > 0 {
        tracing::warn!(
            "state: {} rows of {} did not read and were skipped",
            restored.damaged,
            sc.path.display()
        );
    }
    Ok((Some(store), restored))
}

/// The webhooks: the outbox shares the state file (in memory without one), a thread
/// delivers. Returns where the state thread writes alerts (`None`: no destination), and
/// the outbox with its destinations' delivery state for the API.
fn start_webhooks(
    cfg: &RunConfig,
) -> Result<(Option<AlertSink>, Option<crate::api::OutboxView>), DaemonError> {
    let dests = destinations(&cfg.alerts.0);
    if dests.is_empty() {
        return Ok((None, None));
    }
    let status = Arc::new(Mutex::new(
        dests
            .iter()
            .map(|d| crate::act::outbox::DestinationStatus {
                name: d.name.clone(),
                url: d.url.clone(),
                ..Default::default()
            })
            .collect(),
    ));
    let place = crate::act::outbox::place_for(cfg.state.as_ref().map(|s| s.path.as_path()));
    let (wake, wake_rx) = std::sync::mpsc::channel();
    let disabled = Arc::new(Mutex::new(vec![false; dests.len()]));
    let keys = cfg.alerts.1.clone();
    if keys.is_empty() {
        tracing::warn!(
            "webhooks are configured without alerts.signing_keys: alerts go out unsigned"
        );
    }
    tracing::info!(
        "alerts to {} webhooks ({}), outbox in {}",
        dests.len(),
        dests
            .iter()
            .map(|d| d.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        match &place {
            crate::act::outbox::Place::File(p) => p.display().to_string(),
        }
    );
    let sink = AlertSink {
        place: place.clone(),
        dests: dests.clone(),
        disabled: disabled.clone(),
        wake,
        keys: keys.clone(),
    };
    let (p, st) = (place.clone(), status.clone());
    std::thread::Builder::new()
        .name("rw-webhooks".into())
        .spawn(move || crate::act::outbox::deliver(p, dests, keys, st, disabled, wake_rx))
        .map_err(DaemonError::Runtime)?;
    Ok((Some(sink), Some((place, status))))
}

/// The tasks that act on routers: the RTR servers (the RPKI data, the quarantine), the
/// BIRD verifiers and the FRR appliers, whose results go through the pipeline to the
/// audit log.
fn spawn_acting(
    cfg: &RunConfig,
    feeds: &Feeds,
    rpki: Option<TcpListener>,
    quarantine: Option<TcpListener>,
    tx: &ControlTx,
    stop: &watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    use crate::act::rtr_server::{serve, ServeConfig};
    let mut tasks = Vec::new();
    if let (Some(l), Some(f)) = (rpki, feeds.rpki.clone()) {
        let sc = ServeConfig {
            max_clients: cfg.act.max_routers,
            notify_interval: cfg.act.notify_interval,
            write_timeout: cfg.act.write_timeout,
        };
        let allow =
            (!cfg.act.rtr_routers.is_empty()).then(|| Arc::from(cfg.act.rtr_routers.clone()));
        tasks.push(tokio::spawn(serve(l, f, sc, allow, stop.clone())));
    }
    let (vtx, mut vrx) = mpsc::channel::<Vec<ActionRecord>>(64);
    if let Some(changes) = &feeds.changes {
        for (b, st) in cfg.act.bird.iter().zip(&feeds.birds) {
            let t = crate::act::verify::BirdTarget {
                name: b.name.clone(),
                socket: b.socket.clone(),
                reload_in: b.reload_in.clone(),
                timeout: b.verify_timeout,
            };
            tracing::info!(
                "verifying each change of the quarantine at BIRD {} ({})",
                t.name,
                t.socket.display()
            );
            tasks.push(tokio::spawn(crate::act::verify::verify_bird(
                t,
                changes.subscribe(),
                vtx.clone(),
                st.clone(),
                stop.clone(),
            )));
        }
    }
    if let (Some(changes), Some(feed)) = (&feeds.changes, &feeds.quarantine) {
        for (f, st) in cfg.act.frr.iter().zip(&feeds.frrs) {
            let t = crate::act::frr::FrrTarget {
                name: f.name.clone(),
                vty: f.vty_socket.clone(),
                timeout: f.verify_timeout,
            };
            tracing::info!(
                "applying the quarantine on FRR {} (vtysh --vty_socket {}) as route-map {}",
                t.name,
                t.vty.display(),
                crate::act::frr::ROUTE_MAP
            );
            tasks.push(tokio::spawn(crate::act::frr::act_frr(
                t,
                feed.clone(),
                changes.subscribe(),
                vtx.clone(),
                st.clone(),
                stop.clone(),
            )));
        }
    }
    drop(vtx);
    let tx = tx.clone();
    tasks.push(tokio::spawn(async move {
        while let Some(v) = vrx.recv().await {
            if tx.send(Input::Actions(v)).is_err() {
                break;
            }
        }
    }));
    if let (Some(l), Some(f)) = (quarantine, feeds.quarantine.clone()) {
        let sc = ServeConfig {
            max_clients: cfg.act.max_routers,
            notify_interval: cfg.act.quarantine_notify_interval,
            write_timeout: cfg.act.write_timeout,
        };
        let allow = Some(Arc::from(cfg.act.quarantine_routers.clone()));
        tasks.push(tokio::spawn(serve(l, f, sc, allow, stop.clone())));
    }
    tasks
}

pub fn run(cfg: RunConfig, vrps: VrpSet, policy: Policy) -> Result<(), DaemonError> {
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .ok();
    crate::metrics::describe();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("rw-net")
        .build()
        .map_err(DaemonError::Runtime)?;
    let shared = Arc::new(Mutex::new(Shared::default()));
    let net = Arc::new(Net::default());
    let (data_tx, data_rx) = mpsc::channel::<Vec<crate::ingest::IngestEvent>>(CHANNEL);
    let (tx, rx) = mpsc::unbounded_channel::<Input>();

    let listeners = rt.block_on(bind(&cfg))?;
    log_start(&cfg, &policy, &listeners);
    let Listeners {
        bmp,
        api,
        rpki: rpki_listener,
        quarantine: quarantine_listener,
    } = listeners;
    let bmp_addr = bmp.local_addr().unwrap_or(cfg.bmp);
    // The quarantine is kept when a router takes it: over RTR, or applied on an FRR.
    let feeds = new_feeds(
        &cfg,
        &vrps,
        rpki_listener.is_some(),
        quarantine_listener.is_some() || !cfg.act.frr.is_empty(),
    );
    let (store, restored) = open_state(&cfg)?;
    if !cfg.replay.is_empty() && restored.saved.is_none() {
        tracing::info!("replaying {} MRT files first (demo feed)", cfg.replay.len());
    }
    let reader = match &store {
        Some(st) => Some(Arc::new(Mutex::new(Reader::open(st.path())?))),
        None => None,
    };
    {
        let mut sh = lock(&shared);
        for h in &restored.quarantine {
            let (id, peer, asn, path) = h.key();
            sh.restored
                .insert((id.to_string(), peer, asn, path), h.clone());
        }
    }
    let (sink, outbox) = start_webhooks(&cfg)?;
    let pipeline = {
        let wiring = Wiring {
            cfg: cfg.clone(),
            vrps,
            policy,
            shared: shared.clone(),
            net: net.clone(),
            bmp_addr,
            store,
            restored,
            feeds: feeds.clone(),
            sink,
        };
        std::thread::Builder::new()
            .name("rw-judge".into())
            .spawn(move || pipeline(wiring, rx, data_rx))
            .map_err(DaemonError::Runtime)?
    };

    let (stop_tx, stop_rx) = watch::channel(false);
    let state = AppState {
        shared: shared.clone(),
        tx: tx.clone(),
        metrics,
        token: Arc::new(std::sync::RwLock::new(cfg.api_token.clone().map(Arc::from))),
        reader,
        outbox,
    };
    let token = state.token.clone();
    rt.block_on(async {
        let sessions = Arc::new(AtomicU64::new(0));
        let ctx = SessionCtx {
            data: data_tx.clone(),
            tx: tx.clone(),
            cap: cfg.max_message,
            view: cfg.view,
            initiation_timeout: cfg.initiation_timeout,
            idle_timeout: cfg.idle_timeout,
            max_clock_skew: (!cfg.max_clock_skew.is_zero()).then_some(cfg.max_clock_skew),
            allow: Arc::from(cfg.bmp_allow.clone()),
            net: net.clone(),
            stop: stop_rx.clone(),
        };
        let accept = tokio::spawn(accept_loop(bmp, ctx, cfg.max_sessions, sessions));
        let app = crate::api::router(state);
        let rtr = cfg.rpki.clone().map(|rs| {
            tokio::spawn(rpki_sources(
                rs,
                tx.clone(),
                shared.clone(),
                feeds.rpki.clone(),
                cfg.honour_expires,
                stop_rx.clone(),
            ))
        });
        let acting = spawn_acting(
            &cfg,
            &feeds,
            rpki_listener,
            quarantine_listener,
            &tx,
            &stop_rx,
        );
        let hup = tokio::spawn(reload_on_sighup(
            cfg.reload.clone(),
            tx.clone(),
            token.clone(),
            stop_rx.clone(),
        ));
        let server = tokio::spawn(crate::api::serve(
            api,
            app,
            cfg.api_max_connections,
            stop_rx.clone(),
        ));
        shutdown_signal().await;
        tracing::info!("shutting down: closing BMP sessions, draining the judge");
        let _ = stop_tx.send(true);
        drop(tx);
        drop(data_tx);
        let _ = tokio::time::timeout(cfg.shutdown_timeout, async {
            let _ = accept.await;
            let _ = server.await;
            let _ = hup.await;
            if let Some(r) = rtr {
                let _ = r.await;
            }
            for r in acting {
                let _ = r.await;
            }
        })
        .await;
    });
    // Every sender is gone once the sessions have ended: the pipeline drains and stops.
    let drained = drain(pipeline, cfg.shutdown_timeout);
    rt.shutdown_timeout(Duration::from_millis(200));
    drained?;
    tracing::info!("stopped");
    Ok(())
}

/// Waits for the pipeline thread to drain and stop, for at most `deadline`.
fn drain(pipeline: std::thread::JoinHandle<()>, deadline: Duration) -> Result<(), DaemonError> {
    let (dtx, drx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = dtx.send(pipeline.join().is_ok());
    });
    match drx.recv_timeout(deadline.max(Duration::from_millis(100))) {
        Ok(true) => Ok(()),
        Ok(false) => Err(DaemonError::Pipeline),
        Err(_) => {
            tracing::warn!("the judge did not drain within the shutdown deadline");
            Ok(())
        }
    }
}

pub(crate) async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
