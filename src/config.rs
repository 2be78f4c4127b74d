//! `routewitness.toml`: the daemon's configuration, and the feed files it names.
//!
//! One file names the feeds (each a file of its own under `feeds/`: a BMP listener, an MRT
//! replay feed for demos), the RPKI source, the policy, and where the API listens. Every
//! key has a default (the same as `routewitness run` with no options), so an empty file is
//! a valid configuration; unknown keys are errors, reported with their line. The example
//! with every key and its default is `routewitness.example.toml`.
//!
//! Relative paths in a file are taken from the directory of that file.

use crate::ingest::bmp::{View, DEFAULT_MAX_MESSAGE};
use crate::rpki::VrpFormat;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a configuration cannot be used; always names the file (and the line, for syntax
/// and unknown keys).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {message}", .path.display())]
    Parse { path: PathBuf, message: String },
    #[error("{}: {message}", .path.display())]
    Invalid { path: PathBuf, message: String },
}

/// `routewitness.toml`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Feed files (see [`Feed`]), relative to this file. Without a BMP feed, a BMP
    /// listener with the defaults of [`BmpFeed`] serves anyway (judging BMP is the
    /// daemon's job).
    pub feeds: Vec<PathBuf>,
    /// A built-in policy name (`default`, `strict`, `monitor-only`) or a policy file.
    pub policy: String,
    pub rpki: RpkiConfig,
    pub api: ApiConfig,
    /// How long shutdown may take.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    pub state: StateConfig,
    pub act: ActConfig,
    pub alerts: AlertsConfig,
}

/// `[alerts]`: alerts to the NOC over signed webhooks (see `crate::act::alerts`).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Files each holding one signing key (`whsk_` for v1a, `whsec_` for v1), relative
    /// to this file; several sign at once (key rotation).
    pub signing_keys: Vec<PathBuf>,
    /// The same alert (type and claim) is not sent again within this; the next one
    /// says how many times it happened meanwhile.
    #[serde(with = "humantime_serde")]
    pub repeat: Duration,
    /// Destinations (`[[alerts.webhook]]`).
    pub webhook: Vec<WebhookConfig>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            signing_keys: Vec::new(),
            repeat: Duration::from_secs(3600),
            webhook: Vec::new(),
        }
    }
}

/// `[[alerts.webhook]]`: one destination.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub name: String,
    pub url: String,
    /// `json` (Standard Webhooks payload), `slack`, `mattermost` or `teams`; another is
    /// refused with its line.
    #[serde(default)]
    pub format: crate::act::alerts::WebhookFormat,
    /// Alert types taken; empty: all. An unknown type is refused with its line (a typo
    /// would silently mute the destination).
    #[serde(default)]
    pub types: Vec<crate::act::alerts::AlertKind>,
    /// `info`, `warning` or `critical`.
    #[serde(default)]
    pub min_severity: crate::act::alerts::Severity,
    /// Only alerts about these prefixes or more specifics; empty: all.
    #[serde(default)]
    pub prefixes: Vec<ipnet::IpNet>,
    #[serde(default = "default_webhook_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
}

fn default_webhook_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_max_attempts() -> u32 {
    12
}

/// `[act]`: acting on routers (see `crate::act`). Off by default: nothing listens, and
/// the quarantine reaches no router until it is enabled here for that router.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ActConfig {
    /// The RTR server for routers' RPKI: the merged, SLURM-adjusted VRPs and ASPAs
    /// routewitness validates with. Default (key absent): off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtr_listen: Option<SocketAddr>,
    /// The quarantine feed: one VRP per held claim. Default (key absent): off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quarantine_listen: Option<SocketAddr>,
    /// The routers (source addresses) allowed to take the quarantine feed; others are
    /// refused with an Error Report. Acting is enabled per router by listing it here.
    pub quarantine_routers: Vec<std::net::IpAddr>,
    /// The routers (source addresses) that may take the RPKI feed; empty (the
    /// default): any that reaches `rtr_listen`.
    pub rtr_routers: Vec<std::net::IpAddr>,
    /// At most this many claims quarantined at routers; beyond it acting stops.
    pub max_quarantined: usize,
    /// At most this many claims newly quarantined within a minute; beyond it acting stops.
    pub max_quarantined_per_minute: usize,
    /// Least time between two Serial Notifies to a router of the RPKI feed
    /// (RFC 8210 §8.2: one minute).
    #[serde(with = "humantime_serde")]
    pub notify_interval: Duration,
    /// The same for the quarantine feed (0: at once; see the README).
    #[serde(with = "humantime_serde")]
    pub quarantine_notify_interval: Duration,
    /// End of Data timers sent to routers, in seconds (RFC 8210 §6).
    pub refresh: u32,
    pub retry: u32,
    pub expire: u32,
    /// Routers connected to each feed at once.
    pub max_routers: usize,
    /// A write to a router that cannot go out this long (it asked and does not read)
    /// ends its session, so such clients cannot hold the slots.
    #[serde(with = "humantime_serde")]
    pub write_timeout: Duration,
    /// BIRDs at which each change of the quarantine is verified (`[[act.bird]]`).
    pub bird: Vec<BirdConfig>,
    /// FRRs on which the quarantine is applied through vtysh (`[[act.frr]]`).
    pub frr: Vec<FrrConfig>,
}

/// `[[act.frr]]`: an FRR whose route-map `RW-QUARANTINE` routewitness keeps (vtysh).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FrrConfig {
    /// Its name in the audit log and status (`frr:NAME`).
    pub name: String,
    /// vtysh's `--vty_socket` directory, relative to the configuration file.
    pub vty_socket: PathBuf,
    /// How long a change may take to show in FRR before it is reported unverified.
    #[serde(default = "default_verify_timeout", with = "humantime_serde")]
    pub verify_timeout: Duration,
}

/// `[[act.bird]]`: a BIRD whose control socket verifies what the quarantine did.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BirdConfig {
    /// Its name in the audit log and status (`bird:NAME`).
    pub name: String,
    /// Its control socket (`bird -s`), relative to the configuration file.
    pub socket: PathBuf,
    /// Protocols to `reload in` after each change: those whose channels lack
    /// `import table` (BIRD 2.0.12 re-filters only those that have it by itself).
    #[serde(default)]
    pub reload_in: Vec<String>,
    /// How long a change may take to show in BIRD before it is reported unverified.
    #[serde(default = "default_verify_timeout", with = "humantime_serde")]
    pub verify_timeout: Duration,
}

fn default_verify_timeout() -> Duration {
    Duration::from_secs(5)
}

impl Default for ActConfig {
    fn default() -> Self {
        ActConfig {
            rtr_listen: None,
            quarantine_listen: None,
            quarantine_routers: Vec::new(),
            rtr_routers: Vec::new(),
            max_quarantined: 10_000,
            max_quarantined_per_minute: 1_000,
            notify_interval: Duration::from_secs(60),
            quarantine_notify_interval: Duration::ZERO,
            refresh: 600,
            retry: 60,
            expire: 7200,
            max_routers: 64,
            write_timeout: Duration::from_secs(30),
            bird: Vec::new(),
            frr: Vec::new(),
        }
    }
}

/// The state file `routewitness run` uses by default (in the current directory).
pub const DEFAULT_STATE: &str = "routewitness-state.sqlite";

/// `[state]`: the SQLite state (see `crate::state`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StateConfig {
    /// The state file, relative to the configuration file; `""`: none (in memory only).
    #[serde(serialize_with = "state_path_out", deserialize_with = "state_path_in")]
    pub path: Option<PathBuf>,
    /// Decisions kept in the log; older ones are deleted.
    pub keep_decisions: u64,
    /// How often trust, the judge's clock and its established claims are saved.
    #[serde(with = "humantime_serde")]
    pub checkpoint: Duration,
    /// How long routes held at the last stop stay listed while their routers reconnect.
    #[serde(with = "humantime_serde")]
    pub restore_grace: Duration,
    /// `run --new-state`: a 0-byte, table-less or damaged file is moved aside and a new
    /// state started (never from the file: a flag for one start, not a setting).
    #[serde(skip)]
    pub new_state: bool,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            path: Some(PathBuf::from(DEFAULT_STATE)),
            keep_decisions: 1_000_000,
            checkpoint: Duration::from_secs(30),
            restore_grace: Duration::from_secs(600),
            new_state: false,
        }
    }
}

fn state_path_in<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
    let s = String::deserialize(d)?;
    Ok((!s.is_empty()).then(|| PathBuf::from(s)))
}

fn state_path_out<S: serde::Serializer>(p: &Option<PathBuf>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(
        &p.as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
    )
}

impl Default for Config {
    fn default() -> Self {
        Config {
            feeds: Vec::new(),
            policy: "default".into(),
            rpki: RpkiConfig::default(),
            api: ApiConfig::default(),
            shutdown_timeout: Duration::from_secs(10),
            state: StateConfig::default(),
            act: ActConfig::default(),
            alerts: AlertsConfig::default(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RpkiConfig {
    /// A VRP export (rpki-client / Routinator / StayRTR JSON or CSV); none: the bundled one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vrps: Option<PathBuf>,
    pub format: VrpFormat,
    /// Skip malformed entries with a warning instead of refusing the file.
    pub skip_invalid: bool,
    /// Use VRPs past their `expires` time.
    pub ignore_expires: bool,
    /// RTR caches (`HOST:PORT`), sources beside the file (when `vrps` is set).
    pub rtr: Vec<String>,
    /// Local copies of RPKI repositories (laid out by rsync URI) whose validated ROAs and
    /// ASPAs are sources, relative to this file.
    pub directories: Vec<PathBuf>,
    /// TALs the repositories' chains must end at, relative to this file (none: any
    /// self-signed certificate).
    pub tals: Vec<PathBuf>,
    /// Sources that must carry a payload for it to be used (none: a majority).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quorum: Option<usize>,
    /// Largest share of VRPs the merged set may lose at once before it is frozen.
    pub max_loss: f64,
    /// How long the previous set stays in force after a sudden loss.
    #[serde(with = "humantime_serde")]
    pub freeze: Duration,
    /// How often VRP files are checked for changes.
    #[serde(with = "humantime_serde")]
    pub poll: Duration,
    /// A SLURM file (RFC 8416) applied on top of the RPKI data, relative to this file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slurm: Option<PathBuf>,
}

impl Default for RpkiConfig {
    fn default() -> Self {
        RpkiConfig {
            vrps: None,
            format: VrpFormat::Auto,
            skip_invalid: false,
            ignore_expires: false,
            rtr: Vec::new(),
            directories: Vec::new(),
            tals: Vec::new(),
            quorum: None,
            max_loss: 0.1,
            freeze: Duration::from_secs(3600),
            poll: Duration::from_secs(10),
            slurm: None,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    pub listen: SocketAddr,
    /// A file holding the bearer token for holds and releases (none: refused).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// Connections served at once; more wait in the kernel's backlog.
    pub max_connections: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: "127.0.0.1:9179".parse().expect("literal"),
            token_file: None,
            max_connections: 64,
        }
    }
}

/// A feed file (`feeds/*.toml`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Feed {
    /// A BMP listener for routers.
    Bmp(BmpFeed),
    /// MRT files replayed into the judge before BMP is judged (a demo feed).
    Mrt(MrtFeed),
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BmpFeed {
    #[serde(default = "default_bmp_listen")]
    pub listen: SocketAddr,
    #[serde(default)]
    pub view: View,
    #[serde(default = "default_max_sessions")]
    pub max_sessions: usize,
    #[serde(default = "default_max_message")]
    pub max_message: usize,
    /// A session that has sent no whole BMP message this long after connecting is
    /// dropped (RFC 7854 §4.3 wants the Initiation first; any message is taken, since
    /// recorded streams re-encoded by `mrt2bmp` carry none): idle connections cannot hold
    /// the session slots.
    #[serde(default = "default_initiation_timeout", with = "humantime_serde")]
    pub initiation_timeout: Duration,
    /// A session silent this long is dropped; `0s` (the default): never, since a quiet
    /// router's session is silent by right.
    #[serde(default, with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// How far a router's per-peer timestamp may be from the message's arrival here; a
    /// message outside is judged at its arrival (counted, `kind="clock_skew"`, and logged
    /// once per session), so no router's clock moves the judge's time for the others.
    /// `0s`: timestamps taken as they are (only to stream a recorded capture).
    #[serde(default = "default_max_clock_skew", with = "humantime_serde")]
    pub max_clock_skew: Duration,
    /// Max-prefix (see `pipeline::limits`): routes one BMP peer may have in the
    /// Adj-RIB-In; past it its new routes are refused (what it has stays judged). 0: none.
    #[serde(default = "default_max_prefixes_per_peer")]
    pub max_prefixes_per_peer: usize,
    /// Routes all the peers of one monitored router may have together; 0: none.
    #[serde(default = "default_max_prefixes_per_router")]
    pub max_prefixes_per_router: usize,
    /// The fraction of a max-prefix limit at which a warning is logged and alerted.
    #[serde(default = "default_max_prefixes_warn")]
    pub max_prefixes_warn: f64,
    /// The addresses or prefixes routers may connect from; others are refused and
    /// counted (`kind="not_allowed"`). Empty (the default): any that reaches `listen`.
    #[serde(default)]
    pub allow: Vec<ipnet::IpNet>,
}

fn default_initiation_timeout() -> Duration {
    Duration::from_secs(30)
}

/// A full table with ADD-PATH: 1.0 M IPv4 and 0.25 M IPv6 routes in 2026, twice.
fn default_max_prefixes_per_peer() -> usize {
    2_500_000
}

/// Four such peers (or ten peers with a full table and no ADD-PATH): about 1.5 GiB of
/// Adj-RIB-In and judge at the ~150 B per route measured.
fn default_max_prefixes_per_router() -> usize {
    10_000_000
}

fn default_max_prefixes_warn() -> f64 {
    0.9
}

/// Five minutes: NTP-synced routers are within a second; a BMP station may buffer
/// messages for a while under load (the arrival is then late, not the router wrong).
pub fn default_max_clock_skew() -> Duration {
    Duration::from_secs(300)
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MrtFeed {
    /// MRT files, relative to the feed file; replayed in the order of their first record.
    pub files: Vec<PathBuf>,
}

fn default_bmp_listen() -> SocketAddr {
    "127.0.0.1:11019".parse().expect("literal")
}
fn default_max_sessions() -> usize {
    64
}
fn default_max_message() -> usize {
    DEFAULT_MAX_MESSAGE
}

/// The API's bearer token from `path` (trimmed; at least 16 characters).
pub fn read_token(path: &Path) -> Result<String, String> {
    let t = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let t = t.trim().to_string();
    if t.len() < 16 {
        return Err(format!(
            "{}: the token must be at least 16 characters",
            path.display()
        ));
    }
    Ok(t)
}

/// What changed between two configurations, by top-level key (`feeds` for any feed).
pub fn changed_keys(a: &Loaded, b: &Loaded) -> Vec<String> {
    let (Ok(serde_json::Value::Object(x)), Ok(serde_json::Value::Object(y))) =
        (serde_json::to_value(a), serde_json::to_value(b))
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (k, v) in &x {
        match (v, y.get(k)) {
            (serde_json::Value::Object(inner), Some(serde_json::Value::Object(other)))
                if k == "config" =>
            {
                for (ik, iv) in inner {
                    if other.get(ik) != Some(iv) {
                        out.push(ik.clone());
                    }
                }
            }
            (v, w) if w != Some(v) => out.push(k.clone()),
            _ => {}
        }
    }
    out.sort();
    out.dedup();
    out
}

/// What the command line says over the configuration (`run`'s options): each one given
/// replaces what the file (or, without one, the default) says; a list given replaces the
/// file's list. One configuration type, [`Loaded`], is what the daemon runs: the file's
/// (or the defaults), then these on top. A reload (SIGHUP) reads the file again and puts
/// the same options on top again, so an option given at start keeps winning.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub bmp: Option<SocketAddr>,
    pub api: Option<SocketAddr>,
    pub view: Option<View>,
    pub policy: Option<String>,
    pub vrps: Option<PathBuf>,
    pub vrp_format: Option<VrpFormat>,
    pub skip_invalid_vrps: bool,
    pub ignore_expires: bool,
    pub slurm: Option<PathBuf>,
    pub replay: Vec<PathBuf>,
    pub no_replay: bool,
    pub max_sessions: Option<usize>,
    pub max_clock_skew: Option<Duration>,
    pub max_message: Option<usize>,
    pub shutdown_timeout: Option<Duration>,
    pub api_token_file: Option<PathBuf>,
    pub state: Option<PathBuf>,
    pub no_state: bool,
    pub new_state: bool,
    pub rtr: Vec<String>,
    pub rpki_dir: Vec<PathBuf>,
    pub tal: Vec<PathBuf>,
    pub quorum: Option<usize>,
    pub rtr_listen: Option<SocketAddr>,
    pub quarantine_listen: Option<SocketAddr>,
    pub quarantine_router: Vec<std::net::IpAddr>,
    pub bird_socket: Vec<PathBuf>,
    pub frr_vty: Vec<PathBuf>,
}

fn set<T: Clone>(to: &mut T, v: &Option<T>) {
    if let Some(v) = v {
        *to = v.clone();
    }
}

fn set_list<T: Clone>(to: &mut Vec<T>, v: &[T]) {
    if !v.is_empty() {
        *to = v.to_vec();
    }
}

impl Overrides {
    /// Puts these options over `l`.
    pub fn apply(&self, l: &mut Loaded) {
        let c = &mut l.config;
        set(&mut l.bmp.listen, &self.bmp);
        set(&mut l.bmp.view, &self.view);
        set(&mut l.bmp.max_sessions, &self.max_sessions);
        set(&mut l.bmp.max_clock_skew, &self.max_clock_skew);
        set(&mut l.bmp.max_message, &self.max_message);
        set(&mut c.api.listen, &self.api);
        set(&mut c.policy, &self.policy);
        if self.vrps.is_some() {
            c.rpki.vrps.clone_from(&self.vrps);
        }
        set(&mut c.rpki.format, &self.vrp_format);
        c.rpki.skip_invalid |= self.skip_invalid_vrps;
        c.rpki.ignore_expires |= self.ignore_expires;
        if self.slurm.is_some() {
            c.rpki.slurm.clone_from(&self.slurm);
        }
        set_list(&mut l.mrt, &self.replay);
        if self.no_replay {
            l.mrt.clear();
        }
        set(&mut c.shutdown_timeout, &self.shutdown_timeout);
        if self.api_token_file.is_some() {
            c.api.token_file.clone_from(&self.api_token_file);
        }
        if self.state.is_some() {
            c.state.path.clone_from(&self.state);
        }
        if self.no_state {
            c.state.path = None;
        }
        c.state.new_state |= self.new_state;
        set_list(&mut c.rpki.rtr, &self.rtr);
        set_list(&mut c.rpki.directories, &self.rpki_dir);
        set_list(&mut c.rpki.tals, &self.tal);
        if self.quorum.is_some() {
            c.rpki.quorum = self.quorum;
        }
        if self.rtr_listen.is_some() {
            c.act.rtr_listen = self.rtr_listen;
        }
        if self.quarantine_listen.is_some() {
            c.act.quarantine_listen = self.quarantine_listen;
        }
        set_list(&mut c.act.quarantine_routers, &self.quarantine_router);
        if !self.bird_socket.is_empty() {
            c.act.bird = self
                .bird_socket
                .iter()
                .enumerate()
                .map(|(i, p)| BirdConfig {
                    name: format!("bird{}", i + 1),
                    socket: p.clone(),
                    reload_in: Vec::new(),
                    verify_timeout: default_verify_timeout(),
                })
                .collect();
        }
        if !self.frr_vty.is_empty() {
            c.act.frr = self
                .frr_vty
                .iter()
                .enumerate()
                .map(|(i, p)| FrrConfig {
                    name: format!("frr{}", i + 1),
                    vty_socket: p.clone(),
                    verify_timeout: default_verify_timeout(),
                })
                .collect();
        }
    }
}

/// A configuration with its feeds read, paths made absolute.
#[derive(Clone, Debug, Serialize)]
pub struct Loaded {
    pub config: Config,
    pub bmp: BmpFeed,
    pub mrt: Vec<PathBuf>,
}

impl Default for BmpFeed {
    fn default() -> Self {
        BmpFeed {
            listen: default_bmp_listen(),
            view: View::default(),
            max_sessions: default_max_sessions(),
            max_message: default_max_message(),
            initiation_timeout: default_initiation_timeout(),
            idle_timeout: Duration::ZERO,
            max_clock_skew: default_max_clock_skew(),
            max_prefixes_per_peer: default_max_prefixes_per_peer(),
            max_prefixes_per_router: default_max_prefixes_per_router(),
            max_prefixes_warn: default_max_prefixes_warn(),
            allow: Vec::new(),
        }
    }
}

fn parse<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string().trim_end().to_string(),
    })
}

fn relative(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

impl Loaded {
    /// Reads `path` and the feed files it names, and checks what can be checked without
    /// starting anything (the policy parses, files exist, one BMP feed at most).
    pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
        let mut config: Config = parse(path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        if let Some(v) = config.rpki.vrps.as_mut() {
            *v = relative(base, v);
            if !v.is_file() {
                return Err(invalid(format!("rpki.vrps: no such file: {}", v.display())));
            }
        }
        if let Some(v) = config.rpki.slurm.as_mut() {
            *v = relative(base, v);
            crate::rpki::slurm::Slurm::load(v).map_err(|e| invalid(format!("rpki.slurm: {e}")))?;
        }
        if let Some(p) = config.state.path.as_mut() {
            *p = relative(base, p);
        }
        for d in &mut config.rpki.directories {
            *d = relative(base, d);
            if !d.is_dir() {
                return Err(invalid(format!(
                    "rpki.directories: not a directory: {}",
                    d.display()
                )));
            }
        }
        for t in &mut config.rpki.tals {
            *t = relative(base, t);
        }
        crate::rpki::signed::read_tals(&config.rpki.tals)
            .map_err(|e| invalid(format!("rpki.tals: {e}")))?;
        if !config.rpki.tals.is_empty() && config.rpki.directories.is_empty() {
            return Err(invalid(
                "rpki.tals: no rpki.directories to check with them".into(),
            ));
        }
        if !(0.0..=1.0).contains(&config.rpki.max_loss) {
            return Err(invalid(format!(
                "rpki.max_loss: {} is not a share between 0 and 1",
                config.rpki.max_loss
            )));
        }
        if config.rpki.quorum == Some(0) {
            return Err(invalid("rpki.quorum: must be at least 1".into()));
        }
        let a = &config.act;
        if a.refresh == 0 || a.retry == 0 || a.expire <= a.refresh.max(a.retry) {
            return Err(invalid(format!(
                "act: refresh ({}) and retry ({}) must be more than 0 and expire ({}) more \
                 than both (RFC 8210 §6)",
                a.refresh, a.retry, a.expire
            )));
        }
        for b in config.act.bird.iter_mut() {
            b.socket = relative(base, &b.socket);
        }
        for f in config.act.frr.iter_mut() {
            f.vty_socket = relative(base, &f.vty_socket);
        }
        for k in config.alerts.signing_keys.iter_mut() {
            *k = relative(base, k);
            let text = std::fs::read_to_string(&*k)
                .map_err(|e| invalid(format!("alerts.signing_keys: {}: {e}", k.display())))?;
            crate::act::webhook::Key::parse(&text)
                .map_err(|e| invalid(format!("alerts.signing_keys: {}: {e}", k.display())))?;
        }
        for w in &config.alerts.webhook {
            if !(w.url.starts_with("http://") || w.url.starts_with("https://")) {
                return Err(invalid(format!(
                    "alerts.webhook {}: url must be http(s)",
                    w.name
                )));
            }
        }
        let a = &config.act;
        if a.quarantine_listen.is_some() && a.quarantine_routers.is_empty() {
            tracing::warn!(
                "act.quarantine_listen is set but act.quarantine_routers is empty: no router \
                 may take the quarantine feed"
            );
        }
        if config.state.checkpoint.is_zero() {
            return Err(invalid("state.checkpoint: must be more than 0".into()));
        }
        if let Some(t) = config.api.token_file.as_mut() {
            *t = relative(base, t);
            if !t.is_file() {
                return Err(invalid(format!(
                    "api.token_file: no such file: {}",
                    t.display()
                )));
            }
        }
        let policy_path = relative(base, Path::new(&config.policy));
        if policy_path.is_file() {
            config.policy = policy_path.to_string_lossy().into_owned();
        }
        crate::judge::Policy::load(&config.policy).map_err(|e| invalid(format!("policy: {e}")))?;
        let mut bmp = None;
        let mut mrt = Vec::new();
        for f in &config.feeds {
            let fp = relative(base, f);
            let feed: Feed = parse(&fp)?;
            let fbase = fp.parent().unwrap_or(Path::new("."));
            match feed {
                Feed::Bmp(b) => {
                    if bmp.is_some() {
                        return Err(invalid(format!(
                            "feeds: {}: a second BMP feed (one listener serves every router)",
                            f.display()
                        )));
                    }
                    if b.max_message < crate::ingest::bmp::COMMON_HEADER {
                        return Err(ConfigError::Invalid {
                            path: fp.clone(),
                            message: format!(
                                "max_message {} is smaller than a BMP header",
                                b.max_message
                            ),
                        });
                    }
                    if !(b.max_prefixes_warn > 0.0 && b.max_prefixes_warn <= 1.0) {
                        return Err(ConfigError::Invalid {
                            path: fp.clone(),
                            message: format!(
                                "max_prefixes_warn {} is not a share of the limit in (0, 1]",
                                b.max_prefixes_warn
                            ),
                        });
                    }
                    bmp = Some(b);
                }
                Feed::Mrt(m) => {
                    for file in m.files {
                        let p = relative(fbase, &file);
                        if !p.is_file() {
                            return Err(ConfigError::Invalid {
                                path: fp.clone(),
                                message: format!("files: no such file: {}", p.display()),
                            });
                        }
                        mrt.push(p);
                    }
                }
            }
        }
        Ok(Loaded {
            config,
            bmp: bmp.unwrap_or_default(),
            mrt,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rw-config-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// Options given on the command line replace what the file says, a list given
    /// replaces its list, and what is not given stays as the file says.
    #[test]
    fn the_command_line_overrides_the_file() {
        let d = scratch("overrides");
        write(
            &d,
            "feeds/bmp.toml",
            "type = \"bmp\"\nlisten = \"127.0.0.1:1\"\nmax_sessions = 3\n",
        );
        let conf = write(
            &d,
            "routewitness.toml",
            "feeds = [\"feeds/bmp.toml\"]\npolicy = \"strict\"\n\
             [rpki]\nrtr = [\"127.0.0.1:323\", \"127.0.0.1:324\"]\nquorum = 2\n\
             [state]\nkeep_decisions = 7\n",
        );
        let mut l = Loaded::load(&conf).unwrap();
        let o = Overrides {
            bmp: Some("127.0.0.1:2".parse().unwrap()),
            policy: Some("monitor-only".into()),
            rtr: vec!["127.0.0.1:325".into()],
            no_state: true,
            new_state: false,
            frr_vty: vec![PathBuf::from("/run/frr")],
            ..Default::default()
        };
        o.apply(&mut l);
        assert_eq!(l.bmp.listen.to_string(), "127.0.0.1:2");
        assert_eq!(l.bmp.max_sessions, 3, "not given: as the file says");
        assert_eq!(l.config.policy, "monitor-only");
        assert_eq!(l.config.rpki.rtr, ["127.0.0.1:325"]);
        assert_eq!(l.config.rpki.quorum, Some(2));
        assert_eq!(l.config.state.path, None);
        assert_eq!(l.config.state.keep_decisions, 7);
        assert_eq!(l.config.act.frr.len(), 1);
        assert_eq!(l.config.act.frr[0].name, "frr1");
        // Nothing given: the file as it is.
        let before = serde_json::to_value(Loaded::load(&conf).unwrap()).unwrap();
        let mut same = Loaded::load(&conf).unwrap();
        Overrides::default().apply(&mut same);
        assert_eq!(serde_json::to_value(same).unwrap(), before);
    }

    #[test]
    fn empty_file_is_the_defaults() {
        let d = scratch("empty");
        let l = Loaded::load(&write(&d, "routewitness.toml", "")).unwrap();
        assert_eq!(l.config.policy, "default");
        assert_eq!(l.config.api.listen.to_string(), "127.0.0.1:9179");
        assert!(l.mrt.is_empty());
        assert_eq!(l.bmp.listen.to_string(), "127.0.0.1:11019");
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let d = scratch("unknown");
        let p = write(
            &d,
            "routewitness.toml",
            "policy = \"default\"\n\n[api]\nlisten = \"127.0.0.1:1\"\nlisen = 3\n",
        );
        let e = Loaded::load(&p).unwrap_err().to_string();
        assert!(e.contains("line 5") && e.contains("lisen"), "{e}");
    }

    #[test]
    fn an_unknown_alert_type_is_refused_with_its_line() {
        let d = scratch("alert-types");
        let hook = "[[alerts.webhook]]\nname = \"noc\"\nurl = \"http://127.0.0.1:1/\"\n";
        let ok = format!("{hook}types = [\"hijack.suspected\", \"rpki.sudden_loss\"]\n");
        let l = Loaded::load(&write(&d, "ok.toml", &ok)).unwrap();
        assert_eq!(
            l.config.alerts.webhook[0].types,
            vec![
                crate::act::alerts::AlertKind::HijackSuspected,
                crate::act::alerts::AlertKind::RpkiSuddenLoss
            ]
        );
        // A typo would have muted the destination for that type without a word.
        let typo = format!("{hook}types = [\"hijack.suspect\"]\n");
        let e = Loaded::load(&write(&d, "typo.toml", &typo))
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 4") && e.contains("hijack.suspect"), "{e}");
        // A format the same.
        let teams = format!("{hook}format = \"teams\"\n");
        let l = Loaded::load(&write(&d, "teams.toml", &teams)).unwrap();
        assert_eq!(
            l.config.alerts.webhook[0].format,
            crate::act::alerts::WebhookFormat::Teams
        );
        let discord = format!("{hook}format = \"discord\"\n");
        let e = Loaded::load(&write(&d, "discord.toml", &discord))
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 4") && e.contains("discord"), "{e}");
    }

    #[test]
    fn feeds_are_read_relative_to_their_files() {
        let d = scratch("feeds");
        write(&d, "data/a.mrt", "");
        write(
            &d,
            "feeds/bmp.toml",
            "type = \"bmp\"\nlisten = \"127.0.0.1:2\"\nview = \"loc-rib\"\n",
        );
        write(
            &d,
            "feeds/demo.toml",
            "type = \"mrt\"\nfiles = [\"../data/a.mrt\"]\n",
        );
        let p = write(
            &d,
            "routewitness.toml",
            "feeds = [\"feeds/bmp.toml\", \"feeds/demo.toml\"]\n",
        );
        let l = Loaded::load(&p).unwrap();
        let b = l.bmp;
        assert_eq!(
            (b.listen.port(), b.view, b.max_sessions),
            (2, View::LocRib, 64)
        );
        assert_eq!(l.mrt, vec![d.join("feeds/../data/a.mrt")]);
        // A feed's unknown key and a missing file are errors naming the feed file.
        write(&d, "feeds/bad.toml", "type = \"bmp\"\nport = 3\n");
        let p = write(&d, "routewitness.toml", "feeds = [\"feeds/bad.toml\"]\n");
        let e = Loaded::load(&p).unwrap_err().to_string();
        assert!(e.contains("bad.toml") && e.contains("port"), "{e}");
        write(
            &d,
            "feeds/gone.toml",
            "type = \"mrt\"\nfiles = [\"nope.mrt\"]\n",
        );
        let p = write(&d, "routewitness.toml", "feeds = [\"feeds/gone.toml\"]\n");
        assert!(Loaded::load(&p)
            .unwrap_err()
            .to_string()
            .contains("nope.mrt"));
        // A policy that does not exist.
        let p = write(&d, "routewitness.toml", "policy = \"no-such\"\n");
        assert!(Loaded::load(&p).unwrap_err().to_string().contains("policy"));
    }

    /// What a SIGHUP reports as needing a restart: the keys that differ, by name.
    #[test]
    fn changed_keys_names_what_differs() {
        let d = std::env::temp_dir().join(format!("rw-config-changed-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let p = write(&d, "a.toml", "");
        let a = Loaded::load(&p).unwrap();
        assert!(changed_keys(&a, &a).is_empty());
        let p = write(
            &d,
            "b.toml",
            "shutdown_timeout = \"3s\"\n[api]\nlisten = \"127.0.0.1:1\"\n",
        );
        let b = Loaded::load(&p).unwrap();
        assert_eq!(changed_keys(&a, &b), ["api", "shutdown_timeout"]);
    }
}
