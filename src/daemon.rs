//! `routewitness run`: the long-running daemon. BMP from routers (and, for demos, MRT
//! replay) into the same ROV stage and judge as `replay`, and an HTTP API.
//!
//! Threads and tasks:
//! - a tokio runtime (two workers) runs the BMP listener, one task per router session, and
//!   the HTTP API. A session task frames and decodes its router's messages and turns them
//!   into route events with a [`BmpConverter`] of its own (so a broken router costs only
//!   its own task, and routers convert in parallel); peers get their index from one
//!   shared registry. It sends the events of each socket read as one batch over one
//!   bounded channel: when the judge falls behind, sessions wait and TCP pushes back on
//!   the routers, so memory stays bounded;
//! - the pipeline thread owns the judging state (ROV, the Adj-RIB-In and the judge,
//!   through [`Tally`]) and is its only writer. It publishes a snapshot for the API
//!   (status, peer trust) every 200 ms while busy and up to every 10 ms when idle, and
//!   keeps the latest decisions; questions that need the live state (`/v1/routes`) go to
//!   it as messages, answered after everything received before them.
//!
//! Bad input never stops the daemon: a stream that cannot be framed (bad version, length
//! shorter than the header or past the cap) drops that session; a message that does not
//! decode is skipped; both are counted by kind in `/metrics` and logged once per session.
//! Sessions beyond `max_sessions` are refused.
//!
//! - the state thread writes decisions to SQLite ([`crate::state`]) before the API shows
//!   them, and the judge's checkpoints; a restarted daemon restores the judge from it.
//! - the RPKI task watches the sources (RTR caches, VRP files), merges them in quorum,
//!   applies SLURM and the sudden-loss freeze, indexes each new set on a blocking thread
//!   and hands it to the pipeline, which re-judges everything it holds against it.
//!
//! - SIGHUP reloads the policy and the API token (from the configuration file, or the
//!   `--policy` and `--api-token-file` files); a file that does not load leaves the
//!   running ones in place. Other keys need a restart, and a reload says which changed.

use crate::act::quarantine::QuarantineSet;
use crate::act::verify::{BirdStatus, Change};
use crate::act::ActionRecord;
use crate::ingest::bmp::{frame, BmpConverter, BmpCounts, RouterInfo, View};
use crate::ingest::{mrt, IngestEvent, PeerRegistry};
use crate::judge::{
    parse_claim_id, Decision, HeldRoute, Judge, JudgeStats, OperatorAction, PeerTrust, Policy,
};
use crate::model::Asn;
use crate::model::EventTime;
use crate::replay::{Judging, RovStage, Tally};
use crate::rpki::sources::Payloads;
use crate::rpki::{AspaSet, VrpIndex, VrpSet};
use crate::state::{decision_key, Reader, Restored, Store, StoredHold};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use ipnet::IpNet;
use metrics_exporter_prometheus::PrometheusHandle;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};

/// Decisions kept in memory for `/v1/decisions` when there is no state file.
const DECISIONS_KEPT: usize = 10_000;
/// Batches between the sessions and the pipeline. A batch is what one read of a socket
/// holds (at most ~128 KiB of BMP), so this bounds the decoded messages in flight.
const CHANNEL: usize = 64;
/// Decisions per message to the state thread (see `send_decisions`).
const DECISION_CHUNK: usize = 8192;
/// How often the API's snapshot is refreshed while busy (when idle, up to every 10 ms).
const PUBLISH_EVERY: Duration = Duration::from_millis(200);

/// What `run` needs (from the command line for now).
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub bmp: SocketAddr,
    pub api: SocketAddr,
    pub view: View,
    pub max_sessions: usize,
    pub max_message: usize,
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
#[derive(Clone, Debug, Default)]
pub struct Reload {
    /// The configuration file and what it said at start (`run --config`).
    pub config: Option<(PathBuf, crate::config::Loaded)>,
    /// Otherwise: the policy (a built-in name or a file) and the token file as given.
    pub policy: String,
    pub token_file: Option<PathBuf>,
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

/// What the state thread receives from the pipeline.
enum StateMsg {
    /// Decisions to log (then shown by the API).
    Decisions(Vec<Decision>),
    /// Actions on routers and their verifications, for the audit log.
    Actions(Vec<ActionRecord>),
    /// Alerts for the webhook outbox.
    Alerts(Vec<crate::act::alerts::Alert>),
    /// The judge's state to save; `ack` runs once it is committed.
    Checkpoint(crate::judge::Saved, Option<Box<dyn FnOnce() + Send>>),
}

/// What the pipeline thread receives.
enum Input {
    /// Route events from one router session (converted on its task), in order.
    Events(Vec<IngestEvent>),
    Routes {
        prefix: IpNet,
        /// Only the claim of this origin.
        origin: Option<Asn>,
        reply: oneshot::Sender<serde_json::Value>,
    },
    /// Every route held now.
    Held {
        reply: oneshot::Sender<Vec<HeldRoute>>,
    },
    /// An operator holds or releases a claim.
    Operator {
        prefix: IpNet,
        origin: Option<Asn>,
        action: OperatorAction,
        note: String,
        reply: oneshot::Sender<Option<usize>>,
    },
    /// A new policy (SIGHUP): swapped into the judge, which re-judges what it holds.
    Policy {
        policy: Box<Policy>,
        reply: oneshot::Sender<usize>,
    },
    /// A new RPKI data set (the RTR cache's): everything held is re-judged against it.
    Rpki {
        index: Arc<VrpIndex>,
        aspa: Arc<AspaSet>,
        serial: Option<u64>,
        description: String,
    },
    /// Actions and verifications done outside the pipeline (the BIRD verifiers).
    Actions(Vec<ActionRecord>),
    /// Alerts raised outside the pipeline (RPKI sources, BMP sessions).
    Alerts(Vec<crate::act::alerts::Alert>),
    /// An operator resumes acting after a cap stopped it; the answer says whether it had.
    ActResume { reply: oneshot::Sender<bool> },
    /// Time to refresh the API's snapshot if anything changed.
    Tick,
}

/// What the BMP sessions share: the peer registry (so every peer of every router gets
/// one index), and what each session saw, for the status.
#[derive(Default)]
struct Net {
    registry: Mutex<PeerRegistry>,
    /// Per session, in the order they connected (connected ones, and the last
    /// [`ENDED_KEPT`] that ended), and the totals of those no longer listed.
    sessions: Mutex<Sessions>,
}

/// Ended sessions listed in the status (older ones only count in the totals, so a
/// router that reconnects for months does not grow the daemon).
const ENDED_KEPT: usize = 64;

#[derive(Default)]
struct Sessions {
    listed: Vec<SessionSeen>,
    dropped_counts: BmpCounts,
    dropped_routes: (u64, u64),
}

/// What one session saw: (session, the router, its message counts, its (announcements,
/// withdrawals)).
type SessionSeen = (u64, RouterInfo, BmpCounts, (u64, u64));

impl Net {
    /// The session ended with the daemon: listed as disconnected, routes left as they are.
    fn gone(&self, session: u64) {
        let mut all = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = all.listed.iter_mut().find(|(s, ..)| *s == session) {
            e.1.connected = false;
        }
    }

    fn update(&self, session: u64, conv: &BmpConverter) {
        let info = conv.routers().pop().unwrap_or_default();
        let entry = (session, info, conv.counts.clone(), conv.routes());
        let mut all = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        match all.listed.iter_mut().find(|(s, ..)| *s == session) {
            Some(e) => *e = entry,
            None => all.listed.push(entry),
        }
        let ended = all.listed.iter().filter(|e| !e.1.connected).count();
        if ended > ENDED_KEPT {
            if let Some(i) = all.listed.iter().position(|e| !e.1.connected) {
                let (_, _, counts, (a, w)) = all.listed.remove(i);
                all.dropped_counts.add(&counts);
                all.dropped_routes.0 += a;
                all.dropped_routes.1 += w;
            }
        }
    }
}

/// One feed in `/v1/status`.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
enum FeedStatus {
    Bmp {
        listen: String,
        view: View,
        sessions_open: usize,
    },
    Mrt {
        file: String,
        announcements: u64,
        withdrawals: u64,
    },
}

/// The API's view, refreshed by the pipeline thread.
#[derive(Default)]
struct Shared {
    status: Status,
    trust: Vec<PeerTrust>,
    /// The latest decisions, oldest first (serialised when asked for).
    decisions: VecDeque<Decision>,
    /// Routes held at the last stop, not judged again yet (see [`StateConfig`]).
    restored: FxHashMap<(String, std::net::IpAddr, Asn, u32), StoredHold>,
    /// Each RTR source's client state (`None` for file sources).
    rtr: Vec<Option<crate::rpki::rtr::RtrStatus>>,
    /// Each source's disagreement with the merged set.
    rpki_sources: Vec<crate::rpki::sources::Disagreement>,
    /// Set while a sudden loss is held off.
    rpki_frozen: Option<crate::rpki::sources::FrozenStatus>,
    /// The latest actions on routers (without a state file; numbered here).
    actions: VecDeque<ActionRecord>,
    actions_seq: u64,
}

#[derive(Clone, Debug, Default, Serialize)]
struct Status {
    version: &'static str,
    started: String,
    bmp_listener: String,
    view: View,
    policy: String,
    policy_hash: String,
    rpki: String,
    rpki_serial: Option<u64>,
    /// The RTR caches among the sources, with their sessions, serials, timers and age.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    rtr: Vec<crate::rpki::rtr::RtrStatus>,
    /// Each source's disagreement with the merged set (what it lacks, what it adds).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    rpki_sources: Vec<crate::rpki::sources::Disagreement>,
    /// Set while a sudden loss of VRPs is held off (the previous set in force).
    #[serde(skip_serializing_if = "Option::is_none")]
    rpki_frozen: Option<crate::rpki::sources::FrozenStatus>,
    routers: Vec<RouterInfo>,
    peers: usize,
    routes_stored: usize,
    /// Route announcements and withdrawals received (BMP and replayed MRT).
    announcements: u64,
    withdrawals: u64,
    replayed_files: usize,
    /// The feeds: the BMP listener and the MRT files replayed first.
    feeds: Vec<FeedStatus>,
    judge: JudgeStats,
    held_routes: usize,
    /// Event time the judge has reached.
    judge_time: Option<EventTime>,
    /// The state file ("in memory" without one), this run's number in it, and the
    /// routes held at the last stop still waiting to be judged again.
    state: String,
    state_run: Option<i64>,
    restored_holds: usize,
    /// Acting on routers: the RTR feeds served and the quarantine's state.
    act: ActStatus,
}

/// What `/v1/status` says about acting.
#[derive(Clone, Debug, Default, Serialize)]
struct ActStatus {
    /// The RTR feeds served, with their routers.
    feeds: Vec<crate::act::rtr_server::FeedStatus>,
    /// Claims held now (every route of theirs the judge holds, and restored ones).
    quarantined_claims: usize,
    /// Claims in the quarantine feed now.
    served_claims: usize,
    /// Held routes that have no single origin (an AS_SET): not servable as a VRP.
    unservable_routes: u64,
    /// Set when a cap stopped acting (POST /v1/act/resume starts it again).
    stopped: Option<crate::act::quarantine::Tripped>,
    /// False under a monitor-only policy.
    acting: bool,
    /// The BIRDs that verify each change.
    birds: Vec<BirdStatus>,
    /// The FRRs the quarantine is applied on.
    frrs: Vec<crate::act::frr::FrrStatus>,
}

/// Where the state thread writes alerts: the outbox, its destinations, and the delivery
/// thread to wake.
struct AlertSink {
    place: crate::act::outbox::Place,
    dests: Vec<crate::act::outbox::Destination>,
    disabled: Arc<Mutex<Vec<bool>>>,
    wake: std::sync::mpsc::Sender<()>,
}

/// The destinations of the configuration.
fn destinations(a: &crate::config::AlertsConfig) -> Vec<crate::act::outbox::Destination> {
    a.webhook
        .iter()
        .map(|w| crate::act::outbox::Destination {
            name: w.name.clone(),
            url: w.url.clone(),
            format: w.format.clone(),
            types: w.types.clone(),
            min_severity: w.min_severity,
            prefixes: w.prefixes.clone(),
            timeout: w.timeout,
            max_attempts: w.max_attempts,
        })
        .collect()
}

/// A new alert id (`msg_` and 128 random bits): unique across runs, the receivers'
/// idempotency key.
fn alert_id() -> String {
    let mut b = [0u8; 16];
    let _ = getrandom::fill(&mut b);
    let mut s = String::from("msg_");
    for x in b {
        s.push_str(&format!("{x:02x}"));
    }
    s
}

/// The RTR feeds the daemon serves (see [`crate::act::rtr_server`]), and where each
/// change of the quarantine goes to be verified.
#[derive(Clone, Default)]
struct Feeds {
    rpki: Option<Arc<crate::act::rtr_server::Feed>>,
    quarantine: Option<Arc<crate::act::rtr_server::Feed>>,
    changes: Option<tokio::sync::broadcast::Sender<Arc<Change>>>,
    birds: Vec<Arc<Mutex<BirdStatus>>>,
    frrs: Vec<Arc<Mutex<crate::act::frr::FrrStatus>>>,
}

fn lock(m: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    // A panic while holding the lock cannot leave `Shared` half-written in a way that
    // matters to readers (every field is replaced whole), so go on with it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn now() -> EventTime {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    EventTime(i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// Runs the daemon until SIGTERM or SIGINT.
pub fn run(cfg: RunConfig, vrps: VrpSet, policy: Policy) -> Result<(), DaemonError> {
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .ok();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("rw-net")
        .build()
        .map_err(DaemonError::Runtime)?;
    let shared = Arc::new(Mutex::new(Shared::default()));
    let net = Arc::new(Net::default());
    let (tx, rx) = mpsc::channel::<Input>(CHANNEL);

    // Listen first: a port in use is an error before anything is loaded into memory.
    let (bmp, api, [rpki_listener, quarantine_listener]) = rt.block_on(async {
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
        Ok::<_, DaemonError>((bmp, api, rtr))
    })?;
    let bmp_addr = bmp.local_addr().unwrap_or(cfg.bmp);
    let api_addr = api.local_addr().unwrap_or(cfg.api);
    let view = serde_json::to_value(cfg.view)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    tracing::info!("BMP listener on {bmp_addr} (judging the {view} view)");
    tracing::info!("HTTP API on http://{api_addr}/v1/status, metrics on /metrics");
    tracing::info!("RPKI: {}", cfg.rpki_description);
    tracing::info!("policy {} ({})", policy.name, policy.hash());
    // The quarantine is kept when a router takes it: over RTR, or applied on an FRR.
    let feeds = new_feeds(
        &cfg,
        &vrps,
        rpki_listener.is_some(),
        quarantine_listener.is_some() || !cfg.act.frr.is_empty(),
    );
    if let Some(l) = &rpki_listener {
        tracing::info!(
            "RTR server for routers' RPKI on {} (the VRPs and ASPAs judged with)",
            l.local_addr()
                .map_or_else(|_| "?".into(), |a| a.to_string())
        );
    }
    if let Some(l) = &quarantine_listener {
        tracing::info!(
            "quarantine feed over RTR on {} for {} (caps: {} claims, {} a minute){}",
            l.local_addr()
                .map_or_else(|_| "?".into(), |a| a.to_string()),
            if cfg.act.quarantine_routers.is_empty() {
                "no router (act.quarantine_routers is empty)".to_string()
            } else {
                cfg.act
                    .quarantine_routers
                    .iter()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            cfg.act.max_quarantined,
            cfg.act.max_quarantined_per_minute,
            if policy.act {
                ""
            } else {
                "; empty: the policy is monitor-only"
            }
        );
    }
    let (store, restored) = match &cfg.state {
        Some(sc) => {
            let (store, restored) = Store::open(&sc.path, sc.keep_decisions)?;
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
            (Some(store), restored)
        }
        None => {
            tracing::info!("state: in memory only (--no-state; last {DECISIONS_KEPT} decisions)");
            (None, Restored::default())
        }
    };
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

    // Webhooks: the outbox shares the state file (in memory without one), a thread
    // delivers.
    let dests = destinations(&cfg.alerts.0);
    let outbox_status: Arc<Mutex<Vec<crate::act::outbox::DestinationStatus>>> =
        Arc::new(Mutex::new(
            dests
                .iter()
                .map(|d| crate::act::outbox::DestinationStatus {
                    name: d.name.clone(),
                    url: d.url.clone(),
                    ..Default::default()
                })
                .collect(),
        ));
    let outbox_place = crate::act::outbox::place_for(cfg.state.as_ref().map(|s| s.path.as_path()));
    let sink = if dests.is_empty() {
        None
    } else {
        let (wake, wake_rx) = std::sync::mpsc::channel();
        let disabled = Arc::new(Mutex::new(vec![false; dests.len()]));
        let sink = AlertSink {
            place: outbox_place.clone(),
            dests: dests.clone(),
            disabled: disabled.clone(),
            wake,
        };
        let (place, keys, status) = (
            outbox_place.clone(),
            cfg.alerts.1.clone(),
            outbox_status.clone(),
        );
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
            match &outbox_place {
                crate::act::outbox::Place::File(p) => p.display().to_string(),
            }
        );
        let dests = dests.clone();
        std::thread::Builder::new()
            .name("rw-webhooks".into())
            .spawn(move || {
                crate::act::outbox::deliver(place, dests, keys, status, disabled, wake_rx)
            })
            .map_err(DaemonError::Runtime)?;
        Some(sink)
    };
    let pipeline = {
        let shared = shared.clone();
        let cfg = cfg.clone();
        let net = net.clone();
        let feeds = feeds.clone();
        std::thread::Builder::new()
            .name("rw-judge".into())
            .spawn(move || {
                pipeline(
                    cfg, vrps, policy, rx, shared, net, bmp_addr, store, restored, feeds, sink,
                )
            })
            .map_err(DaemonError::Runtime)?
    };

    let (stop_tx, stop_rx) = watch::channel(false);
    let state = AppState {
        shared: shared.clone(),
        tx: tx.clone(),
        metrics,
        token: Arc::new(std::sync::RwLock::new(cfg.api_token.clone().map(Arc::from))),
        reader,
        outbox: (!dests.is_empty()).then(|| (outbox_place.clone(), outbox_status.clone())),
    };
    let token = state.token.clone();
    rt.block_on(async {
        let sessions = Arc::new(AtomicU64::new(0));
        let accept = tokio::spawn(accept_loop(
            bmp,
            tx.clone(),
            cfg.clone(),
            sessions,
            net.clone(),
            stop_rx.clone(),
        ));
        let app = Router::new()
            .route("/v1/status", get(status))
            .route("/v1/peers", get(peers))
            .route("/v1/decisions", get(decisions))
            .route("/v1/routes", get(routes))
            .route("/v1/quarantine", get(quarantine))
            .route("/v1/quarantine/{id}/release", axum::routing::post(release))
            .route("/v1/quarantine/{id}/hold", axum::routing::post(hold))
            .route("/v1/act/resume", axum::routing::post(act_resume))
            .route("/v1/actions", get(actions))
            .route("/v1/alerts", get(alerts_api))
            .route("/metrics", get(metrics_text))
            .with_state(state);
        let ticker = {
            let tx = tx.clone();
            let mut stop = stop_rx.clone();
            tokio::spawn(async move {
                let mut every = tokio::time::interval(PUBLISH_EVERY);
                loop {
                    tokio::select! {
                        _ = every.tick() => {
                            if tx.try_send(Input::Tick).is_err() && tx.is_closed() {
                                break;
                            }
                        }
                        _ = stop.changed() => break,
                    }
                }
            })
        };
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
        use crate::act::rtr_server::{serve, ServeConfig};
        let mut rtr_servers = Vec::new();
        if let (Some(l), Some(f)) = (rpki_listener, feeds.rpki.clone()) {
            let sc = ServeConfig {
                max_clients: cfg.act.max_routers,
                notify_interval: cfg.act.notify_interval,
            };
            rtr_servers.push(tokio::spawn(serve(l, f, sc, None, stop_rx.clone())));
        }
        // The BIRD verifiers, their results through the pipeline to the audit log.
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
                rtr_servers.push(tokio::spawn(crate::act::verify::verify_bird(
                    t,
                    changes.subscribe(),
                    vtx.clone(),
                    st.clone(),
                    stop_rx.clone(),
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
                rtr_servers.push(tokio::spawn(crate::act::frr::act_frr(
                    t,
                    feed.clone(),
                    changes.subscribe(),
                    vtx.clone(),
                    st.clone(),
                    stop_rx.clone(),
                )));
            }
        }
        drop(vtx);
        {
            let tx = tx.clone();
            rtr_servers.push(tokio::spawn(async move {
                while let Some(v) = vrx.recv().await {
                    if tx.send(Input::Actions(v)).await.is_err() {
                        break;
                    }
                }
            }));
        }
        if let (Some(l), Some(f)) = (quarantine_listener, feeds.quarantine.clone()) {
            let sc = ServeConfig {
                max_clients: cfg.act.max_routers,
                notify_interval: cfg.act.quarantine_notify_interval,
            };
            let allow = Some(Arc::from(cfg.act.quarantine_routers.clone()));
            rtr_servers.push(tokio::spawn(serve(l, f, sc, allow, stop_rx.clone())));
        }
        let hup = tokio::spawn(reload_on_sighup(
            cfg.reload.clone(),
            tx.clone(),
            token.clone(),
            stop_rx.clone(),
        ));
        let mut api_stop = stop_rx.clone();
        let server = tokio::spawn(async move {
            let _ = axum::serve(api, app)
                .with_graceful_shutdown(async move {
                    let _ = api_stop.changed().await;
                })
                .await;
        });
        shutdown_signal().await;
        tracing::info!("shutting down: closing BMP sessions, draining the judge");
        let _ = stop_tx.send(true);
        drop(tx);
        let deadline = cfg.shutdown_timeout;
        let _ = tokio::time::timeout(deadline, async {
            let _ = accept.await;
            let _ = server.await;
            let _ = ticker.await;
            let _ = hup.await;
            if let Some(r) = rtr {
                let _ = r.await;
            }
            for r in rtr_servers {
                let _ = r.await;
            }
        })
        .await;
    });
    // Every sender is gone once the sessions have ended: the pipeline drains and stops.
    let done = Instant::now();
    let (dtx, drx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = dtx.send(pipeline.join().is_ok());
    });
    let remaining = cfg.shutdown_timeout.saturating_sub(done.elapsed());
    match drx.recv_timeout(remaining.max(Duration::from_millis(100))) {
        Ok(true) => {}
        Ok(false) => return Err(DaemonError::Pipeline),
        Err(_) => tracing::warn!("the judge did not drain within the shutdown deadline"),
    }
    rt.shutdown_timeout(Duration::from_millis(200));
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
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

/// One RPKI source's news for the merger: its payloads now (`None`: no usable data).
struct SourceNews {
    payloads: Option<Arc<Payloads>>,
    serial: Option<u64>,
}

/// Where the sources leave their latest news for the merger: one slot per source (a
/// newer set replaces one not yet merged, so nothing queues), and a wake-up.
struct Slots {
    news: Mutex<Vec<Option<SourceNews>>>,
    wake: tokio::sync::Notify,
}

impl Slots {
    fn put(&self, source: usize, news: SourceNews) {
        if let Some(slot) = self
            .news
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(source)
        {
            *slot = Some(news);
        }
        self.wake.notify_one();
    }
}

/// What changes when a file under `dir` is added, removed, replaced or rewritten: the
/// number of files, their total size and the latest modification (`None`: unreadable).
fn tree_stamp(dir: &std::path::Path) -> Option<(usize, u64, Option<std::time::SystemTime>)> {
    let mut stamp = (0usize, 0u64, None);
    let mut dirs = vec![dir.to_path_buf()];
    std::fs::read_dir(dir).ok()?;
    while let Some(d) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                dirs.push(e.path());
            } else {
                stamp.0 += 1;
                stamp.1 += m.len();
                stamp.2 = stamp.2.max(m.modified().ok());
            }
        }
    }
    Some(stamp)
}

/// The RPKI sources (RTR caches, VRP files polled for changes), merged in quorum (see
/// [`crate::rpki::sources`]), SLURM applied, guarded against sudden loss, indexed off the
/// runtime's threads and handed to the pipeline, which re-judges against each new set.
/// The first set goes out when every source has spoken, or after 30 s.
async fn rpki_sources(
    rs: RpkiSources,
    tx: mpsc::Sender<Input>,
    shared: Arc<Mutex<Shared>>,
    feed: Option<Arc<crate::act::rtr_server::Feed>>,
    honour_expires: bool,
    mut stop: watch::Receiver<bool>,
) {
    use crate::rpki::rtr::{RtrClient, RtrConfig, RtrEvent};
    use crate::rpki::sources::{merge, Freeze, FrozenStatus, Verdict};
    let n = rs.sources.len();
    let slots = Arc::new(Slots {
        news: Mutex::new((0..n).map(|_| None).collect()),
        wake: tokio::sync::Notify::new(),
    });
    let mut tasks = Vec::new();
    let names: Vec<String> = rs.sources.iter().map(SourceSpec::name).collect();
    for (i, spec) in rs.sources.iter().cloned().enumerate() {
        let slots = slots.clone();
        let stop = stop.clone();
        let shared = shared.clone();
        let alerts = tx.clone();
        match spec {
            SourceSpec::Rtr(cache) => tasks.push(tokio::spawn(async move {
                let mut client = RtrClient::new(RtrConfig::new(&cache));
                let name = cache.clone();
                client
                    .run(
                        move |e| {
                            let (payloads, serial) = match e {
                                RtrEvent::Data(d) => (
                                    Some(Arc::new(Payloads::new(&d.vrps(), &d.aspas()))),
                                    Some(u64::from(d.serial)),
                                ),
                                RtrEvent::Expired => {
                                    // Rare: a full channel drops it (the log has it).
                                    let _ = alerts.try_send(Input::Alerts(vec![
                                        crate::act::alerts::Alert::new(
                                            "rpki.expired",
                                            crate::act::alerts::Severity::Warning,
                                            format!("rpki.expired:{name}"),
                                            serde_json::json!({
                                                "summary": format!(
                                                    "RTR cache {name}: its data is older than its \
                                                     expire interval and no longer used"
                                                ),
                                                "source": name,
                                            }),
                                        ),
                                    ]));
                                    (None, None)
                                }
                            };
                            slots.put(i, SourceNews { payloads, serial });
                        },
                        move |st| {
                            metrics::gauge!("routewitness_rpki_vrps", "source" => st.cache.clone())
                                .set(st.vrps as f64);
                            let mut sh = lock(&shared);
                            if sh.rtr.len() < n {
                                sh.rtr.resize(n, None);
                            }
                            sh.rtr[i] = Some(st.clone());
                        },
                        stop,
                    )
                    .await;
            })),
            SourceSpec::Directory { dir, tals } => {
                let poll = rs.file_poll;
                let mut stop = stop;
                tasks.push(tokio::spawn(async move {
                    let name = dir.display().to_string();
                    let tals = match crate::rpki::signed::read_tals(&tals) {
                        Ok(t) => Arc::new(t),
                        Err(e) => {
                            // Checked at start; a TAL gone since leaves the source silent.
                            tracing::error!("RPKI repository {name}: TAL {e}; not read");
                            return;
                        }
                    };
                    if tals.is_empty() {
                        tracing::warn!(
                            "RPKI repository {name}: no TAL given: any self-signed certificate \
                             in it is taken as a trust anchor"
                        );
                    }
                    let mut seen = None;
                    loop {
                        let d = dir.clone();
                        let stamp = tokio::task::spawn_blocking(move || tree_stamp(&d)).await;
                        let Ok(stamp) = stamp else { return };
                        if stamp.is_none() && seen.is_some() {
                            // Gone or unreadable: what it gave stays until it reads again.
                            tracing::error!(
                                "RPKI repository {name}: cannot be read; its previous data stays"
                            );
                            seen = None;
                        }
                        if stamp.is_some() && stamp != seen {
                            seen = stamp;
                            let (d, t) = (dir.clone(), tals.clone());
                            let scanned = tokio::task::spawn_blocking(move || {
                                crate::rpki::signed::scan_repository(&d, &t)
                            })
                            .await;
                            let Ok(scan) = scanned else { return };
                            for (state, n) in
                                [("valid", scan.accepted), ("invalid", scan.rejected.len())]
                            {
                                metrics::gauge!("routewitness_rpki_objects", "source" => name.clone(), "state" => state)
                                    .set(n as f64);
                            }
                            metrics::gauge!("routewitness_rpki_vrps", "source" => name.clone())
                                .set(scan.vrps.len() as f64);
                            tracing::info!(
                                "RPKI repository {name}: {} of {} ROAs and ASPAs valid: {} VRPs, {} ASPAs",
                                scan.accepted,
                                scan.objects,
                                scan.vrps.len(),
                                scan.aspas.len()
                            );
                            for (f, why) in scan.rejected.iter().take(20) {
                                tracing::warn!("RPKI repository {name}: {} not used: {why}", f.display());
                            }
                            if scan.rejected.len() > 20 {
                                tracing::warn!(
                                    "RPKI repository {name}: {} more objects not used",
                                    scan.rejected.len() - 20
                                );
                            }
                            slots.put(
                                i,
                                SourceNews {
                                    payloads: Some(Arc::new(Payloads::new(&scan.vrps, &scan.aspas))),
                                    serial: None,
                                },
                            );
                        }
                        tokio::select! {
                            _ = tokio::time::sleep(poll) => {}
                            _ = stop.changed() => return,
                        }
                    }
                }));
            }
            SourceSpec::File {
                path,
                options,
                loaded,
            } => {
                let poll = rs.file_poll;
                let mut stop = stop;
                tasks.push(tokio::spawn(async move {
                    let stamp_of = |p: &std::path::Path| {
                        std::fs::metadata(p)
                            .ok()
                            .map(|m| (m.modified().ok(), m.len()))
                    };
                    let mut seen = if loaded { stamp_of(&path) } else { None };
                    loop {
                        let stamp = stamp_of(&path);
                        if stamp.is_some() && stamp != seen {
                            seen = stamp;
                            let p = path.clone();
                            let loaded = tokio::task::spawn_blocking(move || {
                                crate::rpki::vrps::load(&p, options)
                            })
                            .await;
                            match loaded {
                                Ok(Ok(set)) => {
                                    metrics::gauge!("routewitness_rpki_vrps", "source" => path.display().to_string())
                                        .set(set.vrps.len() as f64);
                                    let serial = set
                                        .source
                                        .as_ref()
                                        .and_then(|s| s.generated)
                                        .and_then(|g| u64::try_from(g).ok());
                                    let news = SourceNews {
                                        payloads: Some(Arc::new(Payloads::from_set(&set))),
                                        serial,
                                    };
                                    slots.put(i, news);
                                }
                                Ok(Err(e)) => {
                                    metrics::counter!("routewitness_rpki_errors_total", "source" => path.display().to_string())
                                        .increment(1);
                                    tracing::error!("RPKI source {}: {e}; its previous data stays", path.display());
                                }
                                Err(_) => return,
                            }
                        }
                        tokio::select! {
                            _ = tokio::time::sleep(poll) => {}
                            _ = stop.changed() => return,
                        }
                    }
                }));
            }
        }
    }
    let quorum = rs.quorum.unwrap_or(crate::rpki::sources::majority(n));
    tracing::info!(
        "RPKI: {n} sources ({}), a payload used when {quorum} carry it",
        names.join(", ")
    );
    let mut latest: Vec<Option<Arc<Payloads>>> = vec![None; n];
    let mut spoken = vec![false; n];
    let mut serials: Vec<Option<u64>> = vec![None; n];
    let mut freeze = Freeze::new(rs.max_loss, rs.freeze);
    let started = Instant::now();
    let mut generation = 0u64;
    let mut dirty = false;
    // A merged set held off by the freeze, taken when the freeze ends.
    let mut held: Option<(
        crate::rpki::sources::Merged,
        Option<crate::rpki::slurm::SlurmEffect>,
    )> = None;
    loop {
        // Wake for news, for the end of the start-up wait, and while a set is held off
        // to see whether its freeze has run out.
        let startup = Duration::from_secs(30).saturating_sub(started.elapsed());
        let mut wait = Duration::from_secs(3600);
        if !startup.is_zero() {
            wait = wait.min(startup);
        }
        if held.is_some() {
            wait = wait.min(
                rs.freeze
                    .clamp(Duration::from_millis(100), Duration::from_secs(10)),
            );
        }
        tokio::select! {
            _ = slots.wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => break,
        }
        for (i, slot) in slots
            .news
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter_mut()
            .enumerate()
        {
            if let Some(m) = slot.take() {
                latest[i] = m.payloads;
                serials[i] = m.serial;
                spoken[i] = true;
                dirty = true;
            }
        }
        let ready = spoken.iter().all(|s| *s) || started.elapsed() >= Duration::from_secs(30);
        if !ready || !(dirty || held.is_some()) {
            continue;
        }
        let fresh = dirty;
        let (m, local) = if dirty {
            dirty = false;
            held = None;
            let (sources, slurm, names2) = (latest.clone(), rs.slurm.clone(), names.clone());
            let merged = tokio::task::spawn_blocking(move || {
                let input: Vec<(String, Option<&Payloads>)> = names2
                    .iter()
                    .cloned()
                    .zip(sources.iter().map(|p| p.as_deref()))
                    .collect();
                let mut m = merge(&input, quorum);
                let local = slurm.map(|s| s.apply(&mut m.vrps, &mut m.aspas));
                (m, local)
            })
            .await;
            let Ok(x) = merged else { break };
            x
        } else {
            // Nothing new: only the held-off set's freeze is looked at again.
            let Some(x) = held.take() else { continue };
            x
        };
        let single = (n == 1).then(|| serials[0]).flatten();
        let mut disagreeing = Vec::new();
        for r in &m.reports {
            if fresh && r.has_data && (r.missing > 0 || r.extra > 0) {
                disagreeing.push(crate::act::alerts::Alert::new(
                    "rpki.source_disagrees",
                    crate::act::alerts::Severity::Warning,
                    format!("rpki.source_disagrees:{}", r.source),
                    serde_json::json!({
                        "summary": format!(
                            "RPKI source {} disagrees with the merged set: lacks {}, adds {}",
                            r.source, r.missing, r.extra
                        ),
                        "report": r,
                    }),
                ));
                tracing::warn!(
                    "RPKI source {} disagrees with the merged set: lacks {} (e.g. {}), adds {} (e.g. {})",
                    r.source,
                    r.missing,
                    r.missing_examples.join(", "),
                    r.extra,
                    r.extra_examples.join(", ")
                );
            }
        }
        if !disagreeing.is_empty() {
            let _ = tx.send(Input::Alerts(disagreeing)).await;
        }
        let verdict = freeze.check(m.vrps.len(), Instant::now());
        {
            let mut sh = lock(&shared);
            sh.rpki_sources = m.reports.clone();
            sh.rpki_frozen = match &verdict {
                Verdict::Hold { had, lost, share } => Some(FrozenStatus {
                    had: *had,
                    lost: *lost,
                    share: *share,
                    for_s: freeze.frozen_since().map_or(0, |t| t.elapsed().as_secs()),
                    hold_s: rs.freeze.as_secs(),
                }),
                Verdict::Take => None,
            };
        }
        if let Verdict::Hold { had, lost, share } = verdict {
            if freeze
                .frozen_since()
                .is_some_and(|t| t.elapsed() < Duration::from_millis(500))
            {
                metrics::counter!("routewitness_rpki_freezes_total").increment(1);
                let alert = crate::act::alerts::Alert::new(
                    "rpki.sudden_loss",
                    crate::act::alerts::Severity::Critical,
                    "rpki.sudden_loss".into(),
                    serde_json::json!({
                        "summary": format!(
                            "the merged RPKI set would lose {lost} of {had} VRPs ({:.0}%) at once: \
                             the previous set is kept for up to {}",
                            share * 100.0,
                            humantime::format_duration(rs.freeze)
                        ),
                        "had": had, "lost": lost, "share": share,
                    }),
                );
                let _ = tx.send(Input::Alerts(vec![alert])).await;
                tracing::error!(
                    "RPKI: the merged set would lose {lost} of {had} VRPs ({:.0}%) at once: \
                     keeping the previous set for up to {} (alert)",
                    share * 100.0,
                    humantime::format_duration(rs.freeze)
                );
            }
            held = Some((m, local));
            continue;
        }
        generation += 1;
        let (nv, na) = (m.vrps.len(), m.aspas.len());
        let local = local.map_or(String::new(), |e| {
            format!(
                "; SLURM {}: {} VRPs filtered, {} added, {} ASPAs filtered or replaced, {} asserted",
                e.file, e.vrps_filtered, e.vrps_added, e.aspas_filtered, e.aspas_asserted
            )
        });
        let description = if n == 1 {
            match &rs.sources[0] {
                SourceSpec::Rtr(c) => match single {
                    Some(s) => {
                        format!("{nv} VRPs, {na} ASPAs from RTR cache {c} (serial {s}){local}")
                    }
                    None => {
                        format!("none: RTR cache {c} has no usable data (down or expired){local}")
                    }
                },
                SourceSpec::File { path, .. } => {
                    format!("{nv} VRPs, {na} ASPAs from {}{local}", path.display())
                }
                SourceSpec::Directory { dir, .. } => {
                    format!(
                        "{nv} VRPs, {na} ASPAs from the signed objects in {}{local}",
                        dir.display()
                    )
                }
            }
        } else {
            let up = latest.iter().filter(|p| p.is_some()).count();
            format!(
                "{nv} VRPs, {na} ASPAs carried by at least {quorum} of {n} sources ({up} with \
                 data; generation {generation}){local}"
            )
        };
        let serial = if n == 1 { single } else { Some(generation) };
        let (vrps, aspas) = (m.vrps, m.aspas);
        let to_routers = feed.clone();
        let built = tokio::task::spawn_blocking(move || {
            // Routers get the set the judge is given, as it is given.
            if let Some(f) = to_routers {
                let now = honour_expires.then(|| chrono::Utc::now().timestamp());
                let (v, a) = crate::act::rtr_server::entries_of(&vrps, &aspas, now);
                f.replace(v, a);
            }
            (
                Arc::new(VrpIndex::from_vrps(vrps)),
                Arc::new(AspaSet::new(&aspas)),
            )
        })
        .await;
        let Ok((index, aspa)) = built else { break };
        let input = Input::Rpki {
            index,
            aspa,
            serial,
            description,
        };
        if tx.send(input).await.is_err() {
            break;
        }
    }
    for t in tasks {
        let _ = t.await;
    }
}

/// Reloads the policy and the API token on SIGHUP, until shutdown.
async fn reload_on_sighup(
    reload: Reload,
    tx: mpsc::Sender<Input>,
    token: Arc<std::sync::RwLock<Option<Arc<str>>>>,
    mut stop: watch::Receiver<bool>,
) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP: reloading is off");
            return;
        };
        loop {
            tokio::select! {
                _ = hup.recv() => {}
                _ = stop.changed() => return,
            }
            let outcome = match reload_files(&reload) {
                Ok((policy, new_token)) => {
                    let (name, hash) = (policy.name.clone(), policy.hash());
                    let (reply, answer) = oneshot::channel();
                    let input = Input::Policy {
                        policy: Box::new(policy),
                        reply,
                    };
                    if tx.send(input).await.is_err() {
                        return;
                    }
                    let decided = answer.await.unwrap_or(0);
                    *token.write().unwrap_or_else(|e| e.into_inner()) = new_token.map(Arc::from);
                    tracing::info!(
                        "SIGHUP: policy {name} ({hash}) in force, {decided} decisions from \
                         re-judging; API token reloaded"
                    );
                    "ok"
                }
                Err(e) => {
                    tracing::error!("SIGHUP: {e}; the running configuration stays");
                    "refused"
                }
            };
            metrics::counter!("routewitness_reloads_total", "result" => outcome).increment(1);
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (reload, tx, token, stop.changed().await);
    }
}

/// The policy and token the reload source names now, or why they cannot be used.
fn reload_files(reload: &Reload) -> Result<(Policy, Option<String>), String> {
    let (policy, token_file) = match &reload.config {
        Some((path, running)) => {
            let mut l = crate::config::Loaded::load(path).map_err(|e| e.to_string())?;
            let (policy, token_file) = (l.config.policy.clone(), l.config.api.token_file.clone());
            // Everything else needs a restart: say what changed.
            l.config.policy = running.config.policy.clone();
            l.config.api.token_file = running.config.api.token_file.clone();
            let changed = crate::config::changed_keys(running, &l);
            if !changed.is_empty() {
                tracing::warn!(
                    "SIGHUP: {} changed in {}: that takes a restart (policy and API token \
                     are reloaded now)",
                    changed.join(", "),
                    path.display()
                );
            }
            (policy, token_file)
        }
        None => (reload.policy.clone(), reload.token_file.clone()),
    };
    let policy = Policy::load(&policy).map_err(|e| format!("policy: {e}"))?;
    let token = match token_file {
        Some(f) => Some(crate::config::read_token(&f).map_err(|e| format!("API token: {e}"))?),
        None => None,
    };
    Ok((policy, token))
}

async fn accept_loop(
    listener: TcpListener,
    tx: mpsc::Sender<Input>,
    cfg: RunConfig,
    open: Arc<AtomicU64>,
    net: Arc<Net>,
    mut stop: watch::Receiver<bool>,
) {
    let next = AtomicU64::new(1);
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!("BMP accept failed: {e}");
                        metrics::counter!("routewitness_bmp_errors_total", "kind" => "accept").increment(1);
                        continue;
                    }
                };
                if open.load(Ordering::Relaxed) as usize >= cfg.max_sessions {
                    tracing::warn!("BMP session from {peer} refused: {} sessions open (the cap)", cfg.max_sessions);
                    metrics::counter!("routewitness_bmp_errors_total", "kind" => "session_cap").increment(1);
                    drop(stream);
                    continue;
                }
                let session = next.fetch_add(1, Ordering::Relaxed);
                open.fetch_add(1, Ordering::Relaxed);
                let (tx, open, stop, cap) = (tx.clone(), open.clone(), stop.clone(), cfg.max_message);
                let (view, net) = (cfg.view, net.clone());
                tasks.spawn(async move {
                    bmp_session(stream, peer, session, tx, cap, view, net, stop).await;
                    open.fetch_sub(1, Ordering::Relaxed);
                });
            }
        }
    }
    // Stop: every session ends (it sends its RouterGone on the way out).
    while tasks.join_next().await.is_some() {}
}

/// One router's BMP session: frames, decodes, sends; ends on EOF, a framing error, or
/// shutdown, and then tells the pipeline the router is gone.
#[allow(clippy::too_many_arguments)]
async fn bmp_session(
    mut stream: TcpStream,
    peer: SocketAddr,
    session: u64,
    tx: mpsc::Sender<Input>,
    cap: usize,
    view: View,
    net: Arc<Net>,
    mut stop: watch::Receiver<bool>,
) {
    let name = peer.to_string();
    tracing::info!("BMP session from {name}");
    let _ = stream.set_nodelay(true);
    // This router's messages become route events here, on the session's task: the
    // pipeline thread only judges.
    let mut conv = BmpConverter::new(view);
    // The session is named by address and port; the router, whose peers keep their
    // index (and trust) when it reconnects, by its address.
    let router = conv.router(&name, &peer.ip().to_string());
    net.update(session, &conv);
    metrics::gauge!("routewitness_bmp_session_up", "router" => name.clone()).set(1.0);
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut start = 0usize;
    let mut logged_skip = false;
    let messages = metrics::counter!("routewitness_bmp_messages_total");
    // Events per batch, to size the next batch's vector (a Route Monitoring message of a
    // full-table dump carries ~6 routes; growing the vector from a guess copied it).
    let mut last_batch = 1024;
    let why = 'session: loop {
        // Everything whole in the buffer, converted as it is decoded (no vector of
        // decoded messages in between) and sent as one batch.
        let mut events = Vec::new();
        let mut broken = None;
        let received = now();
        let mut registry = &net.registry;
        loop {
            match frame(&buf[start..], cap) {
                Ok(Some(n)) => {
                    let msg = &buf[start..start + n];
                    start += n;
                    messages.increment(1);
                    if events.capacity() == 0 {
                        events.reserve(last_batch);
                    }
                    let read = conv.bytes(router, msg, received, &mut registry, &mut |e| {
                        events.push(e)
                    });
                    if let Err(e) = read {
                        metrics::counter!("routewitness_bmp_errors_total", "kind" => e.kind)
                            .increment(1);
                        if !logged_skip {
                            tracing::warn!(
                                "BMP from {name}: message skipped ({e}); further skips only counted"
                            );
                            logged_skip = true;
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    metrics::counter!("routewitness_bmp_errors_total", "kind" => e.kind())
                        .increment(1);
                    broken = Some(format!("session dropped: {e}"));
                    break;
                }
            }
        }
        if start > 0 {
            net.update(session, &conv);
        }
        if !events.is_empty() {
            last_batch = events.len().next_power_of_two();
            if tx.send(Input::Events(events)).await.is_err() {
                break 'session "shutting down".to_string();
            }
        }
        if let Some(why) = broken {
            break 'session why;
        }
        if start > 0 {
            buf.drain(..start);
            start = 0;
        }
        if buf.capacity() - buf.len() < 16 * 1024 {
            buf.reserve(64 * 1024);
        }
        let read = tokio::select! {
            r = stream.read_buf(&mut buf) => r,
            _ = stop.changed() => break 'session "shutting down".to_string(),
        };
        match read {
            Ok(0) if buf.is_empty() => break "closed by the router".to_string(),
            Ok(0) => {
                metrics::counter!("routewitness_bmp_errors_total", "kind" => "truncated_at_close")
                    .increment(1);
                break format!(
                    "closed by the router mid-message ({} bytes left)",
                    buf.len()
                );
            }
            Ok(_) => {}
            Err(e) => {
                metrics::counter!("routewitness_bmp_errors_total", "kind" => "read").increment(1);
                break format!("read failed: {e}");
            }
        }
    };
    tracing::info!("BMP session from {name} ended: {why}");
    metrics::gauge!("routewitness_bmp_session_up", "router" => name.clone()).set(0.0);
    // The router's routes go with its session, unless the daemon is stopping: then they
    // did not go anywhere, it stopped watching, and the state keeps them held as they are
    // (as it would after a kill -9).
    if !*stop.borrow() {
        let alert = crate::act::alerts::Alert::new(
            "bmp.session_lost",
            crate::act::alerts::Severity::Warning,
            format!("bmp.session_lost:{name}"),
            serde_json::json!({
                "summary": format!("BMP session from {name} lost: {why}; its routes are withdrawn"),
                "router": name,
                "reason": why,
            }),
        );
        let _ = tx.send(Input::Alerts(vec![alert])).await;
        let mut events = Vec::new();
        conv.router_gone(router, now(), &mut |e| events.push(e));
        net.update(session, &conv);
        let _ = tx.send(Input::Events(events)).await;
    } else {
        net.gone(session);
    }
}

/// The state thread: logs each batch of decisions (when there is a store) before the
/// API shows them, saves checkpoints, and forgets restored holds after the grace period.
fn state_thread(
    mut store: Option<Store>,
    rx: std::sync::mpsc::Receiver<StateMsg>,
    shared: Arc<Mutex<Shared>>,
    grace: Duration,
    sink: Option<AlertSink>,
) {
    let mut outbox = sink.as_ref().and_then(|s| {
        crate::act::outbox::Outbox::open(&s.place)
            .map_err(|e| tracing::error!("webhook outbox: cannot open: {e}"))
            .ok()
    });
    let started = Instant::now();
    let mut restored_open = !lock(&shared).restored.is_empty();
    loop {
        let wait = if restored_open {
            grace.saturating_sub(started.elapsed())
        } else {
            Duration::from_secs(3600)
        };
        let msg = match rx.recv_timeout(wait) {
            Ok(m) => Some(m),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => None,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        };
        // Decisions waiting behind this batch go into the same transaction (fewer
        // commits: each one rewrites the B-trees' upper pages).
        let mut next = None;
        let msg = match msg {
            Some(StateMsg::Decisions(mut ds)) => {
                while ds.len() < 65_536 {
                    match rx.try_recv() {
                        Ok(StateMsg::Decisions(mut more)) => ds.append(&mut more),
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                Some(StateMsg::Decisions(ds))
            }
            m => m,
        };
        for m in [msg, next].into_iter().flatten() {
            if let StateMsg::Alerts(alerts) = m {
                if let (Some(ob), Some(s)) = (outbox.as_mut(), sink.as_ref()) {
                    let disabled = s.disabled.lock().unwrap_or_else(|e| e.into_inner()).clone();
                    match ob.add(&alerts, &s.dests, &disabled) {
                        Ok(_) => {
                            let _ = s.wake.send(());
                        }
                        Err(e) => {
                            metrics::counter!("routewitness_state_errors_total", "kind" => "webhook outbox").increment(1);
                            tracing::error!(
                                "webhook outbox: {e}: {} alerts not queued",
                                alerts.len()
                            );
                        }
                    }
                }
                continue;
            }
            state_message(m, &mut store, &shared);
        }
        if restored_open && started.elapsed() >= grace {
            restored_open = false;
            let left = std::mem::take(&mut lock(&shared).restored).len();
            if let Some(st) = store.as_mut() {
                match st.drop_restored() {
                    Ok(n) => tracing::info!(
                        "{n} routes held at the last stop were not sent again within {}: \
                         forgotten ({left} still listed)",
                        humantime::format_duration(grace)
                    ),
                    Err(e) => state_failed("forgetting restored holds", e),
                }
            }
        }
    }
}

fn state_failed(what: &str, e: crate::state::StateError) {
    metrics::counter!("routewitness_state_errors_total", "kind" => what.to_string()).increment(1);
    tracing::error!("state: {what} failed: {e}");
}

fn state_message(msg: StateMsg, store: &mut Option<Store>, shared: &Mutex<Shared>) {
    match msg {
        StateMsg::Decisions(ds) => {
            if let Some(st) = store.as_mut() {
                if let Err(e) = st.write_decisions(&ds) {
                    state_failed("decision log", e);
                }
            }
            metrics::counter!("routewitness_decisions_total").increment(ds.len() as u64);
            let mut sh = lock(shared);
            for d in ds {
                if !sh.restored.is_empty() {
                    sh.restored.remove(&decision_key(&d));
                }
                // With a store the API reads the log; the ring is for running without one.
                if store.is_some() {
                    continue;
                }
                if sh.decisions.len() == DECISIONS_KEPT {
                    sh.decisions.pop_front();
                }
                sh.decisions.push_back(d);
            }
        }
        // Written by the state thread itself (see `state_thread`).
        StateMsg::Alerts(_) => {}
        StateMsg::Actions(mut v) => {
            if let Some(st) = store.as_mut() {
                if let Err(e) = st.write_actions(&mut v) {
                    state_failed("audit log", e);
                }
                return;
            }
            let mut sh = lock(shared);
            for mut a in v {
                sh.actions_seq += 1;
                a.seq = sh.actions_seq;
                if sh.actions.len() == DECISIONS_KEPT {
                    sh.actions.pop_front();
                }
                sh.actions.push_back(a);
            }
        }
        StateMsg::Checkpoint(saved, ack) => {
            if let Some(st) = store.as_mut() {
                if let Err(e) = st.checkpoint(&saved) {
                    state_failed("checkpoint", e);
                }
            }
            if let Some(ack) = ack {
                ack();
            }
        }
    }
}

/// The pipeline thread: every event through ROV, the Adj-RIB-In and the judge.
#[allow(clippy::too_many_arguments)]
fn pipeline(
    cfg: RunConfig,
    vrps: VrpSet,
    policy: Policy,
    mut rx: mpsc::Receiver<Input>,
    shared: Arc<Mutex<Shared>>,
    net: Arc<Net>,
    bmp_addr: SocketAddr,
    store: Option<Store>,
    restored: Restored,
    feeds: Feeds,
    sink: Option<AlertSink>,
) {
    let alerting = sink.as_ref().map(|_| cfg.alerts.0.repeat);
    let state_path = store.as_ref().map(|s| s.path().display().to_string());
    let state_run = store.as_ref().map(|_| restored.run);
    let (to_state, state_rx) = std::sync::mpsc::sync_channel::<StateMsg>(16);
    let writer = {
        let shared = shared.clone();
        let grace = cfg
            .state
            .as_ref()
            .map_or(Duration::ZERO, |s| s.restore_grace);
        std::thread::Builder::new()
            .name("rw-state".into())
            .spawn(move || state_thread(store, state_rx, shared, grace, sink))
    };
    let writer = match writer {
        Ok(w) => w,
        Err(e) => {
            tracing::error!("cannot start the state thread: {e}");
            return;
        }
    };
    pipeline_loop(
        cfg, vrps, policy, &mut rx, shared, net, bmp_addr, restored, &to_state, state_path,
        state_run, feeds, alerting,
    );
    drop(to_state);
    let _ = writer.join();
}

#[allow(clippy::too_many_arguments)]
fn pipeline_loop(
    cfg: RunConfig,
    vrps: VrpSet,
    policy: Policy,
    rx: &mut mpsc::Receiver<Input>,
    shared: Arc<Mutex<Shared>>,
    net: Arc<Net>,
    bmp_addr: SocketAddr,
    restored: Restored,
    to_state: &std::sync::mpsc::SyncSender<StateMsg>,
    state_path: Option<String>,
    state_run: Option<i64>,
    act_feeds: Feeds,
    alerting: Option<Duration>,
) {
    // Alerts (when webhooks are configured), deduplicated per type and claim.
    let dedupe = RefCell::new(crate::act::alerts::Dedupe::new(
        alerting.unwrap_or(Duration::from_secs(3600)),
    ));
    let below_floor: RefCell<FxHashSet<String>> = RefCell::default();
    // Alerts admitted by the dedupe: numbered and handed to the state thread.
    let send_alerts = |mut alerts: Vec<crate::act::alerts::Alert>| {
        for a in alerts.iter_mut() {
            a.id = alert_id();
        }
        if !alerts.is_empty() {
            metrics::counter!("routewitness_alerts_total").increment(alerts.len() as u64);
            let _ = to_state.send(StateMsg::Alerts(alerts));
        }
    };
    let raise = |mut alerts: Vec<crate::act::alerts::Alert>| {
        if alerting.is_none() {
            return;
        }
        let now = Instant::now();
        let mut d = dedupe.borrow_mut();
        alerts.retain_mut(|a| d.admit(a, now));
        drop(d);
        send_alerts(alerts);
    };
    let index = VrpIndex::new(&vrps);
    // What the quarantine feed serves (see crate::act::quarantine), from every decision
    // and the holds restored from the state.
    let caps = crate::act::quarantine::Caps {
        max_total: cfg.act.max_quarantined,
        max_per_minute: cfg.act.max_quarantined_per_minute,
    };
    let quarantine = RefCell::new(QuarantineSet::new(caps, policy.act));
    if act_feeds.quarantine.is_some() {
        let mut q = quarantine.borrow_mut();
        for h in &restored.quarantine {
            let (id, peer, asn, path) = h.key();
            q.restore(
                (id.to_string(), peer, asn, path),
                h.route.prefix,
                h.route.origin.map(|a| a.0),
            );
        }
    }
    let push_quarantine = || {
        if let Some(f) = &act_feeds.quarantine {
            let records = act_on(&mut quarantine.borrow_mut(), f, act_feeds.changes.as_ref());
            if !records.is_empty() {
                let _ = to_state.send(StateMsg::Actions(records));
            }
        }
    };
    push_quarantine();
    let restore_ends = Instant::now()
        + cfg
            .state
            .as_ref()
            .map_or(Duration::ZERO, |s| s.restore_grace);
    let mut restore_over = false;
    let aspa = AspaSet::new(&vrps.aspas);
    let rpki_serial = vrps
        .source
        .as_ref()
        .and_then(|s| s.generated)
        .and_then(|g| u64::try_from(g).ok());
    // What the status says about the RPKI data (it changes with an RTR source).
    let rpki_now = RefCell::new((cfg.rpki_description.clone(), rpki_serial));
    // Each decision of the judge, with its path and VRPs filled in, to the state thread
    // in batches (see `send_decisions`).
    let pending: Rc<RefCell<Vec<Decision>>> = Rc::default();
    let mut sink = {
        let pending = pending.clone();
        move |d: Decision| pending.borrow_mut().push(d)
    };
    let send_decisions = || {
        // The next batch's vector sized like this one's: pushing ~1,000 decisions into an
        // empty vector reallocates and copies them ten times.
        let ds = {
            let mut p = pending.borrow_mut();
            let n = p.len();
            std::mem::replace(&mut *p, Vec::with_capacity(n))
        };
        if alerting.is_some() {
            // The dedupe first: a payload is built only for the alerts that go out.
            use crate::act::alerts::Alert;
            let now = Instant::now();
            let mut dd = dedupe.borrow_mut();
            let out: Vec<Alert> = ds
                .iter()
                .filter_map(|d| {
                    let c = Alert::classify(d)?;
                    let updates = dd.admit_key(&c.2, now)?;
                    let mut a = Alert::of_decision(d, c);
                    a.set_updates(updates);
                    Some(a)
                })
                .collect();
            drop(dd);
            send_alerts(out);
        }
        if act_feeds.quarantine.is_some() && !ds.is_empty() {
            let mut q = quarantine.borrow_mut();
            for d in &ds {
                q.decision(d, || decision_key(d));
            }
            drop(q);
            push_quarantine();
        }
        // In chunks, so the channel bounds the decisions in flight (16 x 8,192), and
        // sending blocks while the state thread is behind: back-pressure up to the
        // routers. (Each decision moves once.)
        if ds.len() <= DECISION_CHUNK {
            if !ds.is_empty() {
                let _ = to_state.send(StateMsg::Decisions(ds));
            }
            return;
        }
        let mut all = ds.into_iter();
        loop {
            let chunk: Vec<Decision> = all.by_ref().take(DECISION_CHUNK).collect();
            if chunk.is_empty() {
                break;
            }
            let _ = to_state.send(StateMsg::Decisions(chunk));
        }
    };
    let mut rov = RovStage::new(&index, cfg.honour_expires);
    let mut tally = Tally::new(
        &index,
        cfg.honour_expires,
        None,
        Some(Judging {
            policies: vec![policy],
            aspa: &aspa,
            rpki_serial,
            decisions: None,
            sink: Some(&mut sink),
            observer: None,
        }),
    );
    let was_restored = restored.saved.is_some();
    if let (Some(saved), Some(j)) = (restored.saved, tally.judge_mut()) {
        j.restore(saved, now(), |p| rov.intern_prefix(p));
    }
    let mut claims_saved = tally.judges().first().map(|j| j.claims_version());
    let mut last_checkpoint = Instant::now();
    let checkpoint_every = cfg
        .state
        .as_ref()
        .map_or(Duration::from_secs(3600), |s| s.checkpoint);
    // Saves the judge (its claims only when they changed); `ack` once committed.
    let mut checkpoint = |tally: &Tally, ack: Option<Box<dyn FnOnce() + Send>>| {
        let Some(j) = tally.judges().first() else {
            if let Some(ack) = ack {
                ack();
            }
            return;
        };
        let v = j.claims_version();
        let saved = j.save(claims_saved != Some(v));
        claims_saved = Some(v);
        let _ = to_state.send(StateMsg::Checkpoint(saved, ack));
    };
    let started = chrono::Utc::now().to_rfc3339();
    let mut events: Vec<IngestEvent> = Vec::with_capacity(1024);
    let mut verdicts = Vec::with_capacity(1024);
    let mut handle = |events: &mut Vec<IngestEvent>, rov: &mut RovStage, tally: &mut Tally| {
        // In bulk, as the replay does: the table look-ups overlap.
        verdicts.clear();
        rov.annotate_all(events, &mut verdicts);
        if let Err(e) = tally.handle_all(events, &verdicts) {
            tracing::error!("recording decisions failed: {e}");
        }
        events.clear();
        send_decisions();
    };

    // The demo feed first: MRT through the same registry, converter-free.
    let t0 = Instant::now();
    let (mut replay_ann, mut replay_wd) = (0u64, 0u64);
    let mut feeds = Vec::new();
    let replay: &[PathBuf] = if was_restored && !cfg.replay.is_empty() {
        tracing::info!(
            "not replaying the {} MRT files of the demo feed: an earlier run judged them, \
             and the state restored says what it learned",
            cfg.replay.len()
        );
        &[]
    } else {
        &cfg.replay
    };
    for path in replay {
        let read = {
            let mut registry = net.registry.lock().unwrap_or_else(|e| e.into_inner());
            mrt::read_file(path, &mut registry, None, |ev| events.push(ev))
        };
        match read {
            Ok(s) => {
                replay_ann += s.announcements;
                replay_wd += s.withdrawals;
                feeds.push(FeedStatus::Mrt {
                    file: path.display().to_string(),
                    announcements: s.announcements,
                    withdrawals: s.withdrawals,
                });
            }
            Err(e) => tracing::warn!("{}: cannot replay: {e}", path.display()),
        }
        handle(&mut events, &mut rov, &mut tally);
    }
    let replayed = replay.len();
    if replayed > 0 {
        checkpoint(&tally, None);
        tracing::info!(
            "replayed {replayed} MRT files ({replay_ann} announcements, {replay_wd} \
             withdrawals) in {:.1} s; judging BMP now",
            t0.elapsed().as_secs_f64()
        );
    }

    let mut last_publish = Instant::now() - PUBLISH_EVERY;
    let publish = |tally: &Tally, force: bool, last: &mut Instant| {
        if !force && last.elapsed() < PUBLISH_EVERY {
            return;
        }
        *last = Instant::now();
        let judge: Option<&Judge> = tally.judges().first();
        let (mut routers, mut c, (mut ann, mut wd)) =
            (Vec::new(), BmpCounts::default(), (replay_ann, replay_wd));
        {
            let all = net.sessions.lock().unwrap_or_else(|e| e.into_inner());
            c.add(&all.dropped_counts);
            ann += all.dropped_routes.0;
            wd += all.dropped_routes.1;
            for (_, info, n, (a, w)) in &all.listed {
                routers.push(info.clone());
                c.add(n);
                ann += a;
                wd += w;
            }
        }
        let peers = net
            .registry
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .peers
            .len();
        let sessions_open = routers.iter().filter(|r| r.connected).count();
        // One lock for both (the mutex is not re-entrant).
        let (rtr, rpki_sources, rpki_frozen, restored_holds) = {
            let sh = lock(&shared);
            (
                sh.rtr.iter().flatten().cloned().collect(),
                sh.rpki_sources.clone(),
                sh.rpki_frozen.clone(),
                sh.restored.len(),
            )
        };
        let status = Status {
            version: env!("CARGO_PKG_VERSION"),
            started: started.clone(),
            bmp_listener: bmp_addr.to_string(),
            view: cfg.view,
            policy: judge.map_or_else(String::new, |j| j.policy().name.clone()),
            policy_hash: judge.map_or_else(String::new, |j| j.policy_hash().to_string()),
            rpki: rpki_now.borrow().0.clone(),
            rpki_serial: rpki_now.borrow().1,
            rtr,
            rpki_sources,
            rpki_frozen,
            routers,
            peers,
            routes_stored: tally.routes_stored(),
            announcements: ann,
            withdrawals: wd,
            replayed_files: replayed,
            feeds: std::iter::once(FeedStatus::Bmp {
                listen: bmp_addr.to_string(),
                view: cfg.view,
                sessions_open,
            })
            .chain(feeds.iter().cloned())
            .collect(),
            judge: judge.map(|j| j.stats()).unwrap_or_default(),
            held_routes: judge.map_or(0, |j| j.held_routes()),
            judge_time: judge.map(|j| j.now()).filter(|t| t.0 != i64::MIN),
            state: state_path
                .clone()
                .unwrap_or_else(|| "in memory".to_string()),
            state_run,
            restored_holds,
            act: {
                let q = quarantine.borrow();
                let (quarantined_claims, served_claims) = q.sizes();
                ActStatus {
                    feeds: [&act_feeds.rpki, &act_feeds.quarantine]
                        .into_iter()
                        .flatten()
                        .map(|f| f.status())
                        .collect(),
                    quarantined_claims,
                    served_claims,
                    unservable_routes: q.unservable,
                    stopped: q.tripped(),
                    acting: q.acting(),
                    birds: act_feeds
                        .birds
                        .iter()
                        .map(|b| b.lock().unwrap_or_else(|e| e.into_inner()).clone())
                        .collect(),
                    frrs: act_feeds
                        .frrs
                        .iter()
                        .map(|b| b.lock().unwrap_or_else(|e| e.into_inner()).clone())
                        .collect(),
                }
            },
        };
        let trust = judge.map(|j| j.trust_table(j.now())).unwrap_or_default();
        // A peer whose trust falls below the floor (its votes stop counting) is an alert,
        // once until it is above again.
        if alerting.is_some() {
            let mut low = below_floor.borrow_mut();
            let mut fell = Vec::new();
            let now_low: FxHashSet<String> = trust
                .iter()
                .filter(|t| t.below_floor)
                .map(|t| format!("{}:{}:{}", t.peer.feed, t.peer.addr, t.peer.asn.0))
                .collect();
            for t in trust.iter().filter(|t| t.below_floor) {
                let key = format!("{}:{}:{}", t.peer.feed, t.peer.addr, t.peer.asn.0);
                if !low.contains(&key) {
                    fell.push(crate::act::alerts::Alert::new(
                        "peer.trust_low",
                        crate::act::alerts::Severity::Warning,
                        format!("peer.trust_low:{key}"),
                        serde_json::json!({
                            "summary": format!(
                                "peer {} AS{} ({}) fell below the trust floor ({:.2}): its votes no \
                                 longer count and its unique claims are held",
                                t.peer.addr, t.peer.asn.0, t.peer.feed, t.score
                            ),
                            "peer": t,
                        }),
                    ));
                }
            }
            *low = now_low;
            drop(low);
            raise(fell);
        }
        metrics::gauge!("routewitness_routes_stored").set(status.routes_stored as f64);
        metrics::gauge!("routewitness_peers").set(status.peers as f64);
        metrics::counter!("routewitness_route_announcements_total").absolute(ann);
        metrics::counter!("routewitness_route_withdrawals_total").absolute(wd);
        let s = &status.judge;
        for (outcome, v) in [
            ("quarantine", s.quarantined),
            ("reject", s.rejected),
            ("release", s.released),
            ("withdrawn_while_held", s.withdrawn_while_held),
        ] {
            metrics::counter!("routewitness_decisions_by_outcome_total", "outcome" => outcome)
                .absolute(v);
        }
        for (kind, v) in [
            ("initiation", c.initiation),
            ("termination", c.termination),
            ("peer_up", c.peer_up),
            ("peer_down", c.peer_down),
            ("route_monitoring", c.route_monitoring),
            ("statistics", c.statistics),
            ("route_mirroring", c.route_mirroring),
        ] {
            metrics::counter!("routewitness_bmp_messages_by_type_total", "type" => kind)
                .absolute(v);
        }
        let mut sh = lock(&shared);
        sh.status = status;
        sh.trust = trust;
    };
    publish(&tally, true, &mut last_publish);

    loop {
        // Wait at most until the next publish is due, so the API stays fresh while idle.
        let Some(first) = rx.blocking_recv() else {
            break;
        };
        // Whatever else is waiting too, so a busy judge handles inputs in bulk.
        let mut inputs = vec![first];
        while inputs.len() < 256 {
            match rx.try_recv() {
                Ok(i) => inputs.push(i),
                Err(_) => break,
            }
        }
        for input in inputs {
            match input {
                // Judged where they lie (appending them to one vector copied every
                // event once more); what came before them first.
                Input::Events(mut evs) => {
                    if !events.is_empty() {
                        handle(&mut events, &mut rov, &mut tally);
                    }
                    handle(&mut evs, &mut rov, &mut tally);
                }
                Input::Routes {
                    prefix,
                    origin,
                    reply,
                } => {
                    // Answer after everything received before the question.
                    handle(&mut events, &mut rov, &mut tally);
                    let pid = rov.prefix_id(&prefix);
                    let mut claims = match (pid, tally.judges().first()) {
                        (Some(pid), Some(j)) => j.claims_of(pid),
                        _ => Vec::new(),
                    };
                    if origin.is_some() {
                        claims.retain(|c| c.origin == origin);
                    }
                    let claims = serde_json::to_value(claims).unwrap_or_default();
                    let _ = reply.send(serde_json::json!({ "prefix": prefix, "claims": claims }));
                }
                Input::Held { reply } => {
                    handle(&mut events, &mut rov, &mut tally);
                    let held = tally.judges().first().map(|j| j.held()).unwrap_or_default();
                    let _ = reply.send(held);
                }
                Input::Operator {
                    prefix,
                    origin,
                    action,
                    note,
                    reply,
                } => {
                    handle(&mut events, &mut rov, &mut tally);
                    let done = match (rov.prefix_id(&prefix), tally.judge_mut()) {
                        (Some(pid), Some(j)) => j.operator(pid, origin, action, &note, now()),
                        _ => None,
                    };
                    // The decisions it made, logged like any other; the answer waits
                    // until they and the override are committed.
                    tally.flush_decisions();
                    send_decisions();
                    tracing::info!("operator {action:?} of {prefix} origin {origin:?} ({note}): {done:?} routes");
                    checkpoint(
                        &tally,
                        Some(Box::new(move || {
                            let _ = reply.send(done);
                        })),
                    );
                }
                Input::Policy { policy, reply } => {
                    handle(&mut events, &mut rov, &mut tally);
                    let before = tally.judges().first().map_or(0, |j| j.stats().decisions);
                    quarantine.borrow_mut().set_acting(policy.act);
                    if let Some(j) = tally.judge_mut() {
                        j.set_policy(*policy, now());
                    }
                    tally.flush_decisions();
                    send_decisions();
                    let after = tally.judges().first().map_or(0, |j| j.stats().decisions);
                    let _ = reply.send((after - before) as usize);
                }
                Input::Rpki {
                    index,
                    aspa,
                    serial,
                    description,
                } => {
                    // Everything received before is judged with the old set first.
                    handle(&mut events, &mut rov, &mut tally);
                    let before = tally.judges().first().map_or(0, |j| j.stats().decisions);
                    rov.set_index(index.clone());
                    let changed = tally.set_rpki(index, aspa, serial, now());
                    send_decisions();
                    let after = tally.judges().first().map_or(0, |j| j.stats().decisions);
                    tracing::info!(
                        "RPKI: {description}; {changed} claims changed state, {} decisions",
                        after - before
                    );
                    *rpki_now.borrow_mut() = (description, serial);
                }
                Input::Actions(v) => {
                    raise(
                        v.iter()
                            .filter(|a| a.result == "unverified" || a.result == "failed")
                            .map(|a| {
                                crate::act::alerts::Alert::new(
                                    "action.failed",
                                    crate::act::alerts::Severity::Critical,
                                    format!("action.failed:{}:{:?}:{:?}", a.target, a.prefix, a.origin),
                                    serde_json::json!({
                                        "summary": format!(
                                            "{} {} of {:?} AS{:?}: {} ({})",
                                            a.target, a.action, a.prefix, a.origin, a.result, a.detail
                                        ),
                                        "action": a,
                                    }),
                                )
                            })
                            .collect(),
                    );
                    let _ = to_state.send(StateMsg::Actions(v));
                }
                Input::Alerts(v) => raise(v),
                Input::ActResume { reply } => {
                    handle(&mut events, &mut rov, &mut tally);
                    let was = quarantine.borrow_mut().resume();
                    push_quarantine();
                    tracing::warn!("acting resumed by an operator (it was stopped: {was})");
                    let _ = reply.send(was);
                }
                Input::Tick => {}
            }
        }
        if !restore_over && Instant::now() >= restore_ends {
            restore_over = true;
            quarantine.borrow_mut().forget_restored();
            push_quarantine();
        }
        handle(&mut events, &mut rov, &mut tally);
        if last_checkpoint.elapsed() >= checkpoint_every {
            checkpoint(&tally, None);
            last_checkpoint = Instant::now();
        }
        // Idle (nothing waiting): the snapshot may be fresher than every 200 ms.
        let idle = rx.is_empty() && last_publish.elapsed() >= Duration::from_millis(10);
        publish(&tally, idle, &mut last_publish);
    }
    handle(&mut events, &mut rov, &mut tally);
    checkpoint(&tally, None);
    publish(&tally, true, &mut last_publish);
}

/// The feeds a new run serves: the RPKI feed holds the data loaded at start, unless it
/// comes from RTR caches (then routers hear No Data Available until the first set); the
/// quarantine feed starts empty (and ready).
fn new_feeds(cfg: &RunConfig, vrps: &VrpSet, rpki: bool, quarantine: bool) -> Feeds {
    use crate::act::rtr_server::{entries_of, new_session_id, Feed};
    let timing = crate::rpki::rtr::Timing {
        refresh: cfg.act.refresh,
        retry: cfg.act.retry,
        expire: cfg.act.expire,
    };
    let session = new_session_id();
    let from_caches = cfg
        .rpki
        .as_ref()
        .is_some_and(|r| r.sources.iter().any(|s| matches!(s, SourceSpec::Rtr(_))));
    Feeds {
        rpki: rpki.then(|| {
            let f = Feed::new("rpki", session, timing);
            if !from_caches {
                let now = cfg.honour_expires.then(|| chrono::Utc::now().timestamp());
                let (v, a) = entries_of(&vrps.vrps, &vrps.aspas, now);
                f.replace(v, a);
                f.set_ready();
            }
            Arc::new(f)
        }),
        quarantine: quarantine.then(|| {
            let f = Feed::new("quarantine", session.wrapping_add(1), timing);
            f.set_ready();
            Arc::new(f)
        }),
        changes: quarantine.then(|| tokio::sync::broadcast::channel(1024).0),
        birds: if quarantine {
            cfg.act.bird.iter().map(|_| Arc::default()).collect()
        } else {
            Vec::new()
        },
        frrs: cfg.act.frr.iter().map(|_| Arc::default()).collect(),
    }
}

/// Sends the quarantine's changes to its feed (and to the verifiers), and says so when a
/// cap stops acting; returns the audit log's rows for what the feed now serves.
fn act_on(
    q: &mut QuarantineSet<(String, std::net::IpAddr, Asn, u32)>,
    feed: &crate::act::rtr_server::Feed,
    verifiers: Option<&tokio::sync::broadcast::Sender<Arc<Change>>>,
) -> Vec<ActionRecord> {
    let was = q.tripped().is_some();
    let changes = q.flush(Instant::now());
    let (added, released) = changes.iter().fold(
        (0, 0),
        |(a, r), (_, on)| {
            if *on {
                (a + 1, r)
            } else {
                (a, r + 1)
            }
        },
    );
    let at = Instant::now();
    let mut records = Vec::new();
    if let Some(serial) = feed.update(changes.iter().copied()) {
        records = changes
            .iter()
            .map(|&(k, on)| {
                ActionRecord::new(
                    "rtr:quarantine",
                    if on { "quarantine" } else { "release" },
                    "served",
                )
                .claim(k, serial)
            })
            .collect();
        if let Some(v) = verifiers.filter(|v| v.receiver_count() > 0) {
            let _ = v.send(Arc::new(Change {
                serial,
                at,
                claims: changes,
            }));
        }
        metrics::counter!("routewitness_act_quarantine_changes_total", "change" => "added")
            .increment(added);
        metrics::counter!("routewitness_act_quarantine_changes_total", "change" => "released")
            .increment(released);
        tracing::debug!("quarantine feed serial {serial}: {added} added, {released} released");
    }
    let (held, served) = q.sizes();
    metrics::gauge!("routewitness_act_quarantined_claims", "state" => "held").set(held as f64);
    metrics::gauge!("routewitness_act_quarantined_claims", "state" => "served").set(served as f64);
    if let Some(t) = q.tripped() {
        metrics::gauge!("routewitness_act_stopped").set(1.0);
        if !was {
            tracing::error!(
                "acting STOPPED: {}; no more routes are quarantined at routers ({} held claims \
                 waiting; releases still go out) until POST /v1/act/resume (alert)",
                t.reason,
                t.waiting
            );
        }
    } else {
        metrics::gauge!("routewitness_act_stopped").set(0.0);
    }
    records
}

#[derive(Clone)]
struct AppState {
    shared: Arc<Mutex<Shared>>,
    tx: mpsc::Sender<Input>,
    metrics: Option<PrometheusHandle>,
    /// Swapped on SIGHUP.
    token: Arc<std::sync::RwLock<Option<Arc<str>>>>,
    /// The decision log, when there is a state file.
    reader: Option<Arc<Mutex<Reader>>>,
    /// The webhook outbox and each destination's delivery state.
    outbox: Option<(
        crate::act::outbox::Place,
        Arc<Mutex<Vec<crate::act::outbox::DestinationStatus>>>,
    )>,
}

async fn status(State(s): State<AppState>) -> Json<Status> {
    Json(lock(&s.shared).status.clone())
}

async fn peers(State(s): State<AppState>) -> Json<Vec<PeerTrust>> {
    Json(lock(&s.shared).trust.clone())
}

#[derive(Deserialize)]
struct DecisionsQuery {
    /// Decisions with a sequence number above this.
    since: Option<u64>,
    limit: Option<usize>,
}

async fn decisions(State(s): State<AppState>, Query(q): Query<DecisionsQuery>) -> Response {
    from_log(s, Log::Decisions, q).await
}

/// `GET /v1/alerts`: each destination's delivery state and the last 100 alerts.
async fn alerts_api(State(s): State<AppState>) -> Response {
    let Some((place, status)) = s.outbox.clone() else {
        return Json(serde_json::json!({ "destinations": [], "alerts": [] })).into_response();
    };
    let recent = tokio::task::spawn_blocking(move || {
        crate::act::outbox::Outbox::open(&place).and_then(|o| o.recent(100))
    })
    .await;
    match recent {
        Ok(Ok(alerts)) => {
            let destinations = status.lock().unwrap_or_else(|e| e.into_inner()).clone();
            Json(serde_json::json!({ "destinations": destinations, "alerts": alerts }))
                .into_response()
        }
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, format!("outbox: {e}")).into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "outbox").into_response(),
    }
}

async fn actions(State(s): State<AppState>, Query(q): Query<DecisionsQuery>) -> Response {
    from_log(s, Log::Actions, q).await
}

/// The two logs the API reads.
#[derive(Clone, Copy)]
enum Log {
    Decisions,
    Actions,
}

/// Rows of a log after `since`: from the state file when there is one, else from memory.
async fn from_log(s: AppState, log: Log, q: DecisionsQuery) -> Response {
    let since = q.since.unwrap_or(0);
    let limit = q.limit.unwrap_or(1000).min(DECISIONS_KEPT);
    let name = match log {
        Log::Decisions => "decision log",
        Log::Actions => "audit log",
    };
    let rows = if let Some(reader) = s.reader.clone() {
        let rows = tokio::task::spawn_blocking(move || {
            let r = reader.lock().unwrap_or_else(|e| e.into_inner());
            match log {
                Log::Decisions => r.decisions(since, limit),
                Log::Actions => r.actions(since, limit),
            }
        })
        .await;
        match rows {
            Ok(Ok(rows)) => rows,
            Ok(Err(e)) => {
                metrics::counter!("routewitness_state_errors_total", "kind" => "read").increment(1);
                return (StatusCode::INTERNAL_SERVER_ERROR, format!("{name}: {e}")).into_response();
            }
            Err(_) => return (StatusCode::INTERNAL_SERVER_ERROR, name).into_response(),
        }
    } else {
        let sh = lock(&s.shared);
        match log {
            Log::Decisions => sh
                .decisions
                .iter()
                .filter(|d| d.seq > since)
                .take(limit)
                .map(|d| serde_json::to_string(d).unwrap_or_default())
                .collect(),
            Log::Actions => sh
                .actions
                .iter()
                .filter(|a| a.seq > since)
                .take(limit)
                .map(|a| serde_json::to_string(a).unwrap_or_default())
                .collect(),
        }
    };
    (
        [("content-type", "application/json")],
        format!("[{}]", rows.join(",")),
    )
        .into_response()
}

#[derive(Deserialize)]
struct RoutesQuery {
    prefix: String,
    /// `65001` or `AS65001`.
    origin: Option<String>,
}

async fn routes(State(s): State<AppState>, Query(q): Query<RoutesQuery>) -> Response {
    let origin = match q.origin.as_deref().map(str::parse::<Asn>) {
        None => None,
        Some(Ok(a)) => Some(a),
        Some(Err(_)) => {
            return (StatusCode::BAD_REQUEST, "origin: not an AS number").into_response()
        }
    };
    let Ok(prefix) = q.prefix.parse::<IpNet>() else {
        return (
            StatusCode::BAD_REQUEST,
            format!("not a prefix: {}", q.prefix),
        )
            .into_response();
    };
    let (reply, answer) = oneshot::channel();
    if s.tx
        .send(Input::Routes {
            prefix: prefix.trunc(),
            origin,
            reply,
        })
        .await
        .is_err()
    {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    match tokio::time::timeout(Duration::from_secs(5), answer).await {
        Ok(Ok(v)) => Json(v).into_response(),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "the judge is busy").into_response(),
    }
}

async fn metrics_text(State(s): State<AppState>) -> Response {
    match &s.metrics {
        Some(h) => ([("content-type", "text/plain; version=0.0.4")], h.render()).into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics recorder not installed",
        )
            .into_response(),
    }
}

async fn quarantine(State(s): State<AppState>) -> Response {
    let (reply, answer) = oneshot::channel();
    if s.tx.send(Input::Held { reply }).await.is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    let held = match tokio::time::timeout(Duration::from_secs(5), answer).await {
        Ok(Ok(v)) => v,
        _ => return (StatusCode::SERVICE_UNAVAILABLE, "the judge is busy").into_response(),
    };
    // Then the routes held at the last stop that their routers have not sent again yet.
    let mut out = serde_json::to_value(held).unwrap_or_default();
    if let Some(list) = out.as_array_mut() {
        let sh = lock(&s.shared);
        let mut restored: Vec<&StoredHold> = sh.restored.values().collect();
        restored.sort_by_key(|h| h.seq);
        for h in restored {
            let mut v = serde_json::to_value(h).unwrap_or_default();
            v["restored"] = serde_json::Value::Bool(true);
            list.push(v);
        }
    }
    Json(out).into_response()
}

#[derive(Deserialize, Default)]
struct OperatorBody {
    /// Who and why, recorded in the decision.
    note: Option<String>,
}

async fn release(
    State(s): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    operator(s, id, OperatorAction::Release, headers, body).await
}

async fn hold(
    State(s): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    operator(s, id, OperatorAction::Hold, headers, body).await
}

async fn act_resume(State(s): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    if let Err(r) = authorised(&s, &headers, "resuming acting") {
        return r;
    }
    let (reply, answer) = oneshot::channel();
    if s.tx.send(Input::ActResume { reply }).await.is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    match tokio::time::timeout(Duration::from_secs(5), answer).await {
        Ok(Ok(was)) => {
            Json(serde_json::json!({ "resumed": true, "was_stopped": was })).into_response()
        }
        _ => (StatusCode::SERVICE_UNAVAILABLE, "the judge is busy").into_response(),
    }
}

/// The bearer token check of every POST; the refusal when it fails.
#[allow(clippy::result_large_err)]
fn authorised(s: &AppState, headers: &axum::http::HeaderMap, what: &str) -> Result<(), Response> {
    let token = s.token.read().unwrap_or_else(|e| e.into_inner()).clone();
    let Some(token) = &token else {
        return Err((
            StatusCode::FORBIDDEN,
            format!("no API token is configured (--api-token-file): {what} is refused"),
        )
            .into_response());
    };
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !same_secret(given.as_bytes(), token.as_bytes()) {
        return Err((
            StatusCode::UNAUTHORIZED,
            [("www-authenticate", "Bearer")],
            "a valid bearer token is required",
        )
            .into_response());
    }
    Ok(())
}

/// Compares in time independent of where they differ (the token is a secret).
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn operator(
    s: AppState,
    id: String,
    action: OperatorAction,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = authorised(&s, &headers, "holds and releases") {
        return r;
    }
    let Some((prefix, origin)) = parse_claim_id(&id) else {
        return (
            StatusCode::BAD_REQUEST,
            format!("not a claim id (ADDRESS-LENGTH-ASn or ...-AS_SET): {id}"),
        )
            .into_response();
    };
    let note = if body.is_empty() {
        None
    } else {
        match serde_json::from_slice::<OperatorBody>(&body) {
            Ok(b) => b.note,
            Err(e) => return (StatusCode::BAD_REQUEST, format!("body: {e}")).into_response(),
        }
    }
    .unwrap_or_else(|| "through the API".to_string());
    let (reply, answer) = oneshot::channel();
    let input = Input::Operator {
        prefix,
        origin,
        action,
        note,
        reply,
    };
    if s.tx.send(input).await.is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    match tokio::time::timeout(Duration::from_secs(5), answer).await {
        Ok(Ok(Some(n))) => {
            Json(serde_json::json!({ "id": id, "action": action, "routes": n })).into_response()
        }
        Ok(Ok(None)) => (StatusCode::NOT_FOUND, format!("no such claim now: {id}")).into_response(),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "the judge is busy").into_response(),
    }
}
