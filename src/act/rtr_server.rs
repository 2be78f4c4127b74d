//! An RTR server (RFC 8210 versions 0 and 1, and version 2 of draft-ietf-sidrops-8210bis
//! with ASPA): routewitness as its routers' RPKI cache.
//!
//! A [`Feed`] is a versioned set of VRPs (and ASPAs) with a session id, a serial and the
//! last deltas; [`serve`] answers routers from it. The daemon runs two:
//! - the **VRP feed**: the merged, SLURM-adjusted set it validates with, so BIRD and FRR
//!   keep their `roa_check` / `match rpki` on the data routewitness judges with;
//! - the **quarantine feed**: one VRP (prefix, its own length, origin) per held claim. A
//!   router that rejects `roa_check(quarantine, net, origin) = VALID` drops exactly the
//!   held routes (a held /24 of AS666 matches nothing longer, nothing shorter, no other
//!   origin). Releasing a claim withdraws its entry.
//!
//! What a router gets:
//! - a Reset Query: Cache Response, every entry, End of Data (versions 1-2 carry the
//!   feed's refresh / retry / expire); ASPAs only in version 2;
//! - a Serial Query for a serial the feed still has deltas from: the net change since
//!   then (an entry added and removed in between is not sent; nothing is announced twice
//!   or withdrawn unknown, RFC 8210 §5.3); for its current serial an empty answer; for
//!   another session id or a serial too old, Cache Reset (the router then resets);
//! - a Serial Notify when the serial changes, once the router has synchronised, at most
//!   once per `notify_interval` per router (RFC 8210 §8.2 asks a cache for once a minute;
//!   the daemon keeps that for the VRP feed, and notifies the quarantine feed at once,
//!   see the README);
//! - version negotiation as in RFC 8210 §7: the router's first PDU sets the version
//!   (above 2: Error Report "Unsupported Protocol Version" in version 2, then close); a
//!   later PDU in another version gets "Unexpected Protocol Version" and the close.
//!
//! Anything else a router sends (an undecodable PDU, a PDU a cache does not take) gets an
//! Error Report and the session closes; an Error Report from the router closes it. None
//! of this touches other sessions or the feed.

use crate::rpki::rtr::{code, decode, encode, Pdu, RtrError, Timing, MAX_PDU};
use crate::rpki::{Aspa, Vrp};
use ipnet::IpNet;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;
use std::collections::VecDeque;
use std::net::IpAddr;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// One VRP as served: prefix, max length, origin AS.
pub type VrpKey = (IpNet, u8, u32);

/// The highest version served.
pub const MAX_VERSION: u8 = 2;

/// Deltas kept for Serial Queries (older serials get Cache Reset).
const KEEP_DELTAS: usize = 256;
/// ... and at most this many entries in them all (a router that far behind resets).
const KEEP_ENTRIES: usize = 4_000_000;
/// Bytes written at a time while streaming a full set.
const WRITE_CHUNK: usize = 64 * 1024;

/// A change of one ASPA: customer, providers before and after (`None`: absent).
type AspaChange = (u32, Providers, Providers);
/// An ASPA's providers, `None` when it is absent.
type Providers = Option<Arc<[u32]>>;

#[derive(Debug)]
struct Delta {
    /// From this serial to the next.
    from: u32,
    vrps: Vec<(VrpKey, bool)>,
    aspas: Vec<AspaChange>,
}

#[derive(Debug, Default)]
struct FeedState {
    /// False until the first data (a router asking before gets No Data Available).
    ready: bool,
    serial: u32,
    vrps: FxHashSet<VrpKey>,
    aspas: FxHashMap<u32, Arc<[u32]>>,
    deltas: VecDeque<Delta>,
    delta_entries: usize,
    /// The sorted entries of the current serial, built at the first Reset Query after a
    /// change.
    full: Option<Full>,
}

/// Everything of one serial, sorted.
#[derive(Clone, Debug)]
struct Full {
    serial: u32,
    vrps: Arc<Vec<VrpKey>>,
    aspas: Arc<Vec<(u32, Arc<[u32]>)>>,
}

/// What a Serial Query gets.
enum Since {
    /// The net changes from the router's serial to `serial`.
    Delta {
        serial: u32,
        vrps: Vec<(VrpKey, bool)>,
        aspas: Vec<(u32, Option<Arc<[u32]>>)>,
    },
    Reset,
}

/// A router connected to a feed, for the status.
#[derive(Clone, Debug, Serialize)]
pub struct ClientStatus {
    pub address: SocketAddr,
    pub version: Option<u8>,
    /// The serial it has (from its last End of Data).
    pub serial: Option<u32>,
    pub connected_secs: u64,
    pub resets: u64,
    pub serial_queries: u64,
    pub notifies: u64,
}

/// A feed as the status shows it.
#[derive(Clone, Debug, Serialize)]
pub struct FeedStatus {
    pub name: String,
    pub session: u16,
    pub serial: u32,
    pub vrps: usize,
    pub aspas: usize,
    pub clients: Vec<ClientStatus>,
}

/// A versioned set served over RTR; see the module documentation.
#[derive(Debug)]
pub struct Feed {
    pub name: String,
    session: u16,
    timing: Timing,
    state: Mutex<FeedState>,
    serial_tx: watch::Sender<u32>,
    clients: Mutex<FxHashMap<u64, (Instant, ClientStatus)>>,
}

/// A session id that differs from the previous run's (RFC 8210 §5.1: a new one when
/// the cache restarts, since the deltas are not kept).
pub fn new_session_id() -> u16 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let mix = t.as_nanos() as u64 ^ (u64::from(std::process::id()) << 17);
    (mix ^ (mix >> 16) ^ (mix >> 32) ^ (mix >> 48)) as u16
}

/// The VRPs and ASPAs of `set` as served. An ASPA given per address family (the older
/// rpki-client layout) is served as one record with the providers of both families:
/// version 2's ASPA has no family, and the union makes no path invalid that either
/// family's record allows.
/// Payloads expired at `now` (Unix seconds, when given) are left out.
pub fn entries_of(
    vrps: &[Vrp],
    aspas: &[Aspa],
    now: Option<i64>,
) -> (FxHashSet<VrpKey>, FxHashMap<u32, Arc<[u32]>>) {
    let live = |e: Option<i64>| match (e, now) {
        (Some(e), Some(n)) => e >= n,
        _ => true,
    };
    let vrps = vrps
        .iter()
        .filter(|v| live(v.expires))
        .map(|v| (v.prefix.trunc(), v.max_length, v.asn.0))
        .collect();
    let mut by: FxHashMap<u32, Vec<u32>> = FxHashMap::default();
    for a in aspas.iter().filter(|a| live(a.expires)) {
        by.entry(a.customer.0)
            .or_default()
            .extend(a.providers.iter().map(|p| p.0));
    }
    let aspas = by
        .into_iter()
        .map(|(c, mut p)| {
            p.sort_unstable();
            p.dedup();
            (c, Arc::from(p))
        })
        .collect();
    (vrps, aspas)
}

impl Feed {
    pub fn new(name: &str, session: u16, timing: Timing) -> Feed {
        Feed {
            name: name.to_string(),
            session,
            timing,
            state: Mutex::default(),
            serial_tx: watch::channel(0).0,
            clients: Mutex::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, FeedState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn session(&self) -> u16 {
        self.session
    }

    pub fn serial(&self) -> u32 {
        self.state().serial
    }

    /// Has data to serve (even none: an empty quarantine is data).
    pub fn set_ready(&self) {
        self.state().ready = true;
    }

    fn ready(&self) -> bool {
        self.state().ready
    }

    /// VRPs and ASPAs now.
    pub fn len(&self) -> (usize, usize) {
        let st = self.state();
        (st.vrps.len(), st.aspas.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == (0, 0)
    }

    /// Replaces the whole set; returns the new serial, or `None` when nothing changed.
    pub fn replace(
        &self,
        vrps: FxHashSet<VrpKey>,
        aspas: FxHashMap<u32, Arc<[u32]>>,
    ) -> Option<u32> {
        let mut st = self.state();
        st.ready = true;
        let mut dv: Vec<(VrpKey, bool)> = st
            .vrps
            .iter()
            .filter(|k| !vrps.contains(*k))
            .map(|&k| (k, false))
            .collect();
        dv.extend(
            vrps.iter()
                .filter(|k| !st.vrps.contains(*k))
                .map(|&k| (k, true)),
        );
        let mut da: Vec<AspaChange> = st
            .aspas
            .iter()
            .filter(|(c, p)| aspas.get(*c) != Some(*p))
            .map(|(&c, p)| (c, Some(p.clone()), aspas.get(&c).cloned()))
            .collect();
        da.extend(
            aspas
                .iter()
                .filter(|(c, _)| !st.aspas.contains_key(*c))
                .map(|(&c, p)| (c, None, Some(p.clone()))),
        );
        st.vrps = vrps;
        st.aspas = aspas;
        self.record(st, dv, da)
    }

    /// Sets each VRP present or absent (the quarantine feed's changes); returns the new
    /// serial, or `None` when nothing changed.
    pub fn update(&self, changes: impl IntoIterator<Item = (VrpKey, bool)>) -> Option<u32> {
        let mut st = self.state();
        st.ready = true;
        let mut dv = Vec::new();
        for (k, present) in changes {
            let changed = if present {
                st.vrps.insert(k)
            } else {
                st.vrps.remove(&k)
            };
            if changed {
                dv.push((k, present));
            }
        }
        self.record(st, dv, Vec::new())
    }

    fn record(
        &self,
        mut st: std::sync::MutexGuard<'_, FeedState>,
        vrps: Vec<(VrpKey, bool)>,
        aspas: Vec<AspaChange>,
    ) -> Option<u32> {
        if vrps.is_empty() && aspas.is_empty() {
            return None;
        }
        let from = st.serial;
        st.serial = from.wrapping_add(1);
        st.delta_entries += vrps.len() + aspas.len();
        st.deltas.push_back(Delta { from, vrps, aspas });
        while st.deltas.len() > KEEP_DELTAS
            || (st.delta_entries > KEEP_ENTRIES && st.deltas.len() > 1)
        {
            if let Some(d) = st.deltas.pop_front() {
                st.delta_entries -= d.vrps.len() + d.aspas.len();
            }
        }
        st.full = None;
        let serial = st.serial;
        drop(st);
        self.serial_tx.send_replace(serial);
        crate::metrics::rtr_server_serial(&self.name, serial);
        Some(serial)
    }

    /// The VRPs now, sorted, with their serial.
    pub fn vrps(&self) -> (u32, Arc<Vec<VrpKey>>) {
        let f = self.full();
        (f.serial, f.vrps)
    }

    /// Everything of the current serial.
    fn full(&self) -> Full {
        let mut st = self.state();
        if let Some(f) = &st.full {
            return f.clone();
        }
        let mut vrps: Vec<VrpKey> = st.vrps.iter().copied().collect();
        vrps.sort_unstable();
        let mut aspas: Vec<(u32, Arc<[u32]>)> =
            st.aspas.iter().map(|(&c, p)| (c, p.clone())).collect();
        aspas.sort_unstable_by_key(|a| a.0);
        let f = Full {
            serial: st.serial,
            vrps: Arc::new(vrps),
            aspas: Arc::new(aspas),
        };
        st.full = Some(f.clone());
        f
    }

    /// The net change since `serial`.
    fn since(&self, serial: u32) -> Since {
        let st = self.state();
        if serial == st.serial {
            return Since::Delta {
                serial,
                vrps: Vec::new(),
                aspas: Vec::new(),
            };
        }
        let Some(start) = st.deltas.iter().position(|d| d.from == serial) else {
            return Since::Reset;
        };
        // Per VRP: how many times it changed, and its last state (the changes of one
        // VRP alternate, so an even count is no change).
        let mut vrps: FxHashMap<VrpKey, (u32, bool)> = FxHashMap::default();
        // Per customer: its providers before the first change and after the last.
        let mut aspas: FxHashMap<u32, (Providers, Providers)> = FxHashMap::default();
        for d in st.deltas.iter().skip(start) {
            for &(k, present) in &d.vrps {
                let e = vrps.entry(k).or_insert((0, present));
                e.0 += 1;
                e.1 = present;
            }
            for (c, before, after) in &d.aspas {
                aspas.entry(*c).or_insert_with(|| (before.clone(), None)).1 = after.clone();
            }
        }
        let mut dv: Vec<(VrpKey, bool)> = vrps
            .into_iter()
            .filter(|(_, (n, _))| n % 2 == 1)
            .map(|(k, (_, p))| (k, p))
            .collect();
        dv.sort_unstable();
        let mut da: Vec<(u32, Option<Arc<[u32]>>)> = aspas
            .into_iter()
            .filter(|(_, (b, a))| b != a)
            .map(|(c, (_, a))| (c, a))
            .collect();
        da.sort_unstable_by_key(|a| a.0);
        Since::Delta {
            serial: st.serial,
            vrps: dv,
            aspas: da,
        }
    }

    pub fn status(&self) -> FeedStatus {
        let (vrps, aspas) = self.len();
        let clients = self
            .clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|(t, c)| ClientStatus {
                connected_secs: t.elapsed().as_secs(),
                ..c.clone()
            })
            .collect();
        FeedStatus {
            name: self.name.clone(),
            session: self.session,
            serial: self.serial(),
            vrps,
            aspas,
            clients,
        }
    }

    fn client_update(&self, id: u64, f: impl FnOnce(&mut ClientStatus)) {
        if let Some((_, c)) = self
            .clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(&id)
        {
            f(c);
        }
    }
}

/// Serving limits.
#[derive(Clone, Copy, Debug)]
pub struct ServeConfig {
    /// Routers connected at once (more are refused with an Error Report).
    pub max_clients: usize,
    /// Least time between two Serial Notifies to one router.
    pub notify_interval: Duration,
    /// A write that cannot go out this long (a client that asks and never reads) ends
    /// the session, so such clients cannot hold the slots.
    pub write_timeout: Duration,
}

/// Who may connect: `None` anyone, else these source addresses only.
pub type Allow = Option<Arc<[IpAddr]>>;

/// Accepts routers on `listener` until `stop` turns true.
pub async fn serve(
    listener: TcpListener,
    feed: Arc<Feed>,
    cfg: ServeConfig,
    allow: Allow,
    mut stop: watch::Receiver<bool>,
) {
    let mut next_id = 0u64;
    loop {
        let (stream, addr) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("RTR server {}: accept failed: {e}", feed.name);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        let _ = stream.set_nodelay(true);
        if let Some(allow) = &allow {
            let ip = addr.ip().to_canonical();
            if !allow.iter().any(|a| a.to_canonical() == ip) {
                crate::metrics::rtr_server_error(&feed.name, "not_allowed");
                tracing::warn!(
                    "RTR server {}: {addr} refused: not a router this feed is enabled for",
                    feed.name
                );
                refuse(stream, "this router is not enabled for this feed");
                continue;
            }
        }
        next_id += 1;
        let id = next_id;
        let full = {
            let mut clients = feed.clients.lock().unwrap_or_else(|e| e.into_inner());
            let full = clients.len() >= cfg.max_clients;
            if !full {
                clients.insert(
                    id,
                    (
                        Instant::now(),
                        ClientStatus {
                            address: addr,
                            version: None,
                            serial: None,
                            connected_secs: 0,
                            resets: 0,
                            serial_queries: 0,
                            notifies: 0,
                        },
                    ),
                );
            }
            full
        };
        if full {
            crate::metrics::rtr_server_error(&feed.name, "too_many_clients");
            tracing::warn!(
                "RTR server {}: {addr} refused, {} routers connected already",
                feed.name,
                cfg.max_clients
            );
            refuse(stream, "too many routers connected");
            continue;
        }
        let feed = feed.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            tracing::info!("RTR server {}: router {addr} connected", feed.name);
            crate::metrics::rtr_server_clients(&feed.name, 1.0);
            let r = session(stream, &feed, id, cfg, stop).await;
            crate::metrics::rtr_server_clients(&feed.name, -1.0);
            feed.clients
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
            match r {
                Ok(()) => tracing::info!("RTR server {}: router {addr} left", feed.name),
                Err(e) => {
                    crate::metrics::rtr_server_error(&feed.name, "session");
                    tracing::warn!("RTR server {}: router {addr}: {e}", feed.name)
                }
            }
        });
    }
}

/// Tells a router why it is refused (best effort) and closes.
fn refuse(mut s: TcpStream, why: &str) {
    let mut b = Vec::new();
    encode(
        &Pdu::ErrorReport {
            version: 1,
            code: code::INTERNAL_ERROR,
            text: why.into(),
        },
        &mut b,
    );
    tokio::spawn(async move {
        let _ = tokio::time::timeout(Duration::from_secs(1), s.write_all(&b)).await;
    });
}

/// One router's session.
async fn session(
    stream: TcpStream,
    feed: &Feed,
    id: u64,
    cfg: ServeConfig,
    mut stop: watch::Receiver<bool>,
) -> Result<(), RtrError> {
    let (mut rd, wr) = stream.into_split();
    let mut wr = Writer {
        wr,
        timeout: cfg.write_timeout,
    };
    let mut serials = feed.serial_tx.subscribe();
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut out: Vec<u8> = Vec::with_capacity(WRITE_CHUNK);
    let mut version: Option<u8> = None;
    // The serial the router has (after an End of Data), and when it was last notified.
    let mut has: Option<u32> = None;
    let mut notified: Option<Instant> = None;
    let mut notify_at: Option<tokio::time::Instant> = None;
    loop {
        let sleep_until = notify_at;
        tokio::select! {
            n = rd.read_buf(&mut buf) => {
                if n? == 0 {
                    return Ok(());
                }
            }
            r = serials.changed() => {
                if r.is_err() {
                    return Ok(());
                }
                if has.is_some() && notify_at.is_none() {
                    let earliest = notified.map_or_else(Instant::now, |t| t + cfg.notify_interval);
                    notify_at = Some(tokio::time::Instant::from_std(earliest.max(Instant::now())));
                }
                continue;
            }
            _ = async {
                match sleep_until {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            } => {
                notify_at = None;
                let serial = *serials.borrow_and_update();
                if let (Some(v), Some(h)) = (version, has) {
                    if h != serial {
                        encode(&Pdu::SerialNotify { version: v, session: feed.session, serial }, &mut out);
                        wr.send(&out).await?;
                        out.clear();
                        notified = Some(Instant::now());
                        feed.client_update(id, |c| c.notifies += 1);
                    }
                }
                continue;
            }
            _ = stop.changed() => return Ok(()),
        }
        // Every whole PDU read so far.
        let mut used = 0;
        loop {
            let pdu = match decode(&buf[used..]) {
                Ok(Some((pdu, n))) => {
                    used += n;
                    pdu
                }
                Ok(None) => break,
                Err(e) => {
                    let (c, why) = match &e {
                        RtrError::Protocol(_) => (code::UNSUPPORTED_PDU, e.to_string()),
                        _ => (code::CORRUPT_DATA, e.to_string()),
                    };
                    report(&mut wr, version.unwrap_or(1), c, &why).await;
                    return Err(e);
                }
            };
            let v = pdu.version();
            if version.is_none() && v <= MAX_VERSION {
                feed.client_update(id, |c| c.version = Some(v));
            }
            version = Some(session_version(&mut wr, version, v).await?);
            let query = matches!(pdu, Pdu::ResetQuery { .. } | Pdu::SerialQuery { .. });
            if query && !feed.ready() {
                report(&mut wr, v, code::NO_DATA_AVAILABLE, "no data yet").await;
                return Ok(());
            }
            match pdu {
                Pdu::ResetQuery { .. } => {
                    let full = feed.full();
                    send_full(&mut wr, &mut out, feed, v, &full).await?;
                    has = Some(full.serial);
                    feed.client_update(id, |c| {
                        c.resets += 1;
                        c.serial = has;
                    });
                    crate::metrics::rtr_server_reset(&feed.name);
                }
                Pdu::SerialQuery {
                    session, serial, ..
                } => {
                    feed.client_update(id, |c| c.serial_queries += 1);
                    if let Some(now) =
                        answer_serial_query(&mut wr, &mut out, feed, v, session, serial).await?
                    {
                        has = Some(now);
                        feed.client_update(id, |c| c.serial = has);
                    }
                }
                Pdu::ErrorReport { code: c, text, .. } => {
                    return Err(RtrError::Report { code: c, text });
                }
                other => {
                    report(
                        &mut wr,
                        v,
                        code::UNSUPPORTED_PDU,
                        "a cache takes only Reset and Serial Queries",
                    )
                    .await;
                    return Err(RtrError::Protocol(format!(
                        "router sent a PDU a cache does not take: {other:?}"
                    )));
                }
            }
            // A notify for a serial the router has now is not needed.
            if has == Some(*serials.borrow()) {
                notify_at = None;
            }
        }
        buf.drain(..used);
        if buf.len() > MAX_PDU {
            return Err(RtrError::TooLong(buf.len()));
        }
    }
}

/// The session's version after a PDU of version `v`: the first PDU sets it (a version
/// this cache does not speak is refused), later ones must keep it. Refusals are reported
/// to the router and end the session.
async fn session_version(wr: &mut Writer, version: Option<u8>, v: u8) -> Result<u8, RtrError> {
    match version {
        None if v > MAX_VERSION => {
            report(
                wr,
                MAX_VERSION,
                code::UNSUPPORTED_VERSION,
                &format!("version {v} asked; this cache speaks 0 to {MAX_VERSION}"),
            )
            .await;
            Err(RtrError::Protocol(format!("router asked for version {v}")))
        }
        None => Ok(v),
        Some(have) if have != v => {
            let why = format!("version {v} in a version {have} session");
            report(wr, have, code::UNEXPECTED_VERSION, &why).await;
            Err(RtrError::Protocol(why))
        }
        Some(have) => Ok(have),
    }
}

/// Answers a Serial Query: the changes since `serial` and End of Data (returns the
/// serial the router has now), or a Cache Reset when they are not kept or the session
/// is another (returns `None`).
async fn answer_serial_query(
    wr: &mut Writer,
    out: &mut Vec<u8>,
    feed: &Feed,
    v: u8,
    session: u16,
    serial: u32,
) -> Result<Option<u32>, RtrError> {
    let answer = if session == feed.session {
        feed.since(serial)
    } else {
        Since::Reset
    };
    match answer {
        Since::Reset => {
            encode(&Pdu::CacheReset { version: v }, out);
            wr.send(out).await?;
            out.clear();
            Ok(None)
        }
        Since::Delta {
            serial,
            vrps,
            aspas,
        } => {
            encode(
                &Pdu::CacheResponse {
                    version: v,
                    session: feed.session,
                },
                out,
            );
            for (k, present) in vrps {
                push(wr, out, prefix_pdu(v, k, present)).await?;
            }
            if v >= 2 {
                for (c, p) in aspas {
                    push(wr, out, aspa_pdu(v, c, p.as_deref())).await?;
                }
            }
            end_of_data(wr, out, feed, v, serial).await?;
            Ok(Some(serial))
        }
    }
}

/// A session's write half, each write given `timeout` to go out.
pub(crate) struct Writer {
    wr: tokio::net::tcp::OwnedWriteHalf,
    timeout: Duration,
}

impl Writer {
    async fn send(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match tokio::time::timeout(self.timeout, self.wr.write_all(buf)).await {
            Ok(r) => r,
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "the router took nothing for {}",
                    humantime::format_duration(self.timeout)
                ),
            )),
        }
    }
}

fn prefix_pdu(version: u8, (prefix, max_length, asn): VrpKey, announce: bool) -> Pdu {
    Pdu::Prefix {
        version,
        announce,
        prefix,
        max_length,
        asn,
    }
}

fn aspa_pdu(version: u8, customer: u32, providers: Option<&[u32]>) -> Pdu {
    Pdu::Aspa {
        version,
        announce: providers.is_some(),
        customer,
        afi: None,
        providers: providers.map(<[u32]>::to_vec).unwrap_or_default(),
    }
}

/// Adds `pdu` to `out`, writing `out` when it is full.
async fn push(wr: &mut Writer, out: &mut Vec<u8>, pdu: Pdu) -> std::io::Result<()> {
    encode(&pdu, out);
    if out.len() >= WRITE_CHUNK {
        wr.send(out).await?;
        out.clear();
    }
    Ok(())
}

async fn end_of_data(
    wr: &mut Writer,
    out: &mut Vec<u8>,
    feed: &Feed,
    version: u8,
    serial: u32,
) -> std::io::Result<()> {
    encode(
        &Pdu::EndOfData {
            version,
            session: feed.session,
            serial,
            timing: Some(feed.timing),
        },
        out,
    );
    wr.send(out).await?;
    out.clear();
    Ok(())
}

async fn send_full(
    wr: &mut Writer,
    out: &mut Vec<u8>,
    feed: &Feed,
    version: u8,
    full: &Full,
) -> std::io::Result<()> {
    encode(
        &Pdu::CacheResponse {
            version,
            session: feed.session,
        },
        out,
    );
    for &k in full.vrps.iter() {
        // Encoded in place (no Pdu per VRP): a full set is 700k of them.
        encode(&prefix_pdu(version, k, true), out);
        if out.len() >= WRITE_CHUNK {
            wr.send(out).await?;
            out.clear();
        }
    }
    if version >= 2 {
        for (c, p) in full.aspas.iter() {
            push(wr, out, aspa_pdu(version, *c, Some(p))).await?;
        }
    }
    end_of_data(wr, out, feed, version, full.serial).await
}

/// Sends an Error Report (best effort: the session is closing).
async fn report(wr: &mut Writer, version: u8, c: u16, text: &str) {
    let mut b = Vec::new();
    encode(
        &Pdu::ErrorReport {
            version,
            code: c,
            text: text.into(),
        },
        &mut b,
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), wr.wr.write_all(&b)).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpki::rtr::{encode_query, RtrClient, RtrConfig, RtrEvent};

    fn k(p: &str, max: u8, asn: u32) -> VrpKey {
        (p.parse().unwrap(), max, asn)
    }

    fn net_change(feed: &Feed, from: u32) -> Vec<(VrpKey, bool)> {
        match feed.since(from) {
            Since::Delta { vrps, .. } => vrps,
            Since::Reset => panic!("reset for {from}"),
        }
    }

    #[test]
    fn serial_queries_get_the_net_change() {
        let feed = Feed::new("t", 7, Timing::default());
        let a = k("192.0.2.0/24", 24, 65001);
        let b = k("2001:db8::/32", 48, 65002);
        assert_eq!(feed.update([(a, true)]), Some(1));
        assert_eq!(feed.update([(a, true)]), None, "no change, no serial");
        assert_eq!(feed.update([(b, true), (a, false)]), Some(2));
        assert_eq!(feed.update([(a, true)]), Some(3));
        // From 1: a went and came back (no change), b is new.
        assert_eq!(net_change(&feed, 1), vec![(b, true)]);
        // From 2: a is new.
        assert_eq!(net_change(&feed, 2), vec![(a, true)]);
        // From 0: both new.
        assert_eq!(net_change(&feed, 0), vec![(a, true), (b, true)]);
        assert!(net_change(&feed, 3).is_empty());
        assert!(matches!(feed.since(99), Since::Reset));
        // replace: withdraws what is gone, announces what is new, and ASPAs.
        let mut aspas = FxHashMap::default();
        aspas.insert(65002, Arc::from(vec![65001]));
        let s = feed.replace([b].into_iter().collect(), aspas.clone());
        assert_eq!(s, Some(4));
        assert_eq!(net_change(&feed, 3), vec![(a, false)]);
        aspas.insert(65002, Arc::from(vec![65001, 65003]));
        feed.replace([b].into_iter().collect(), aspas);
        match feed.since(3) {
            Since::Delta { aspas, .. } => {
                assert_eq!(aspas.len(), 1);
                assert_eq!(aspas[0].1.as_deref(), Some(&[65001, 65003][..]));
            }
            Since::Reset => panic!(),
        }
        match feed.since(4) {
            Since::Delta { vrps, aspas, .. } => {
                assert!(vrps.is_empty());
                assert_eq!(aspas[0].1.as_deref(), Some(&[65001, 65003][..]));
            }
            Since::Reset => panic!(),
        }
    }

    async fn start(feed: Arc<Feed>, notify: Duration) -> (SocketAddr, watch::Sender<bool>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (tx, rx) = watch::channel(false);
        let cfg = ServeConfig {
            max_clients: 2,
            notify_interval: notify,
            write_timeout: Duration::from_secs(30),
        };
        tokio::spawn(serve(l, feed, cfg, None, rx));
        (addr, tx)
    }

    /// PDUs read until (and with) the first End of Data, Cache Reset, Error Report or
    /// Serial Notify.
    async fn answer(s: &mut TcpStream, buf: &mut Vec<u8>) -> Vec<Pdu> {
        let mut out = Vec::new();
        loop {
            while let Some((pdu, n)) = decode(buf).unwrap() {
                buf.drain(..n);
                let last = matches!(
                    pdu,
                    Pdu::EndOfData { .. }
                        | Pdu::CacheReset { .. }
                        | Pdu::ErrorReport { .. }
                        | Pdu::SerialNotify { .. }
                );
                out.push(pdu);
                if last {
                    return out;
                }
            }
            let n = tokio::time::timeout(Duration::from_secs(5), s.read_buf(buf))
                .await
                .expect("an answer within 5 s")
                .unwrap();
            if n == 0 {
                return out;
            }
        }
    }

    /// A new session's answer to `query`.
    async fn first_answer(addr: SocketAddr, query: &[u8]) -> Vec<Pdu> {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(query).await.unwrap();
        answer(&mut s, &mut Vec::new()).await
    }

    /// Issue 18, point 3: a client that sends a Reset Query and never reads holds its
    /// slot only until a write has waited `write_timeout`; then a router gets the whole
    /// set. (Before, 64 such clients held every slot for good, and a real `rtrdump` got
    /// nothing.)
    #[tokio::test]
    async fn a_client_that_never_reads_does_not_hold_its_slot() {
        let feed = Arc::new(Feed::new("t", 42, Timing::default()));
        // Enough to fill both sockets' buffers many times over (~4 MB of PDUs).
        feed.update((0..200_000u32).map(|i| {
            let a = std::net::Ipv4Addr::from(0x0a00_0000 + (i << 8));
            (
                (IpNet::new(a.into(), 24).unwrap(), 24, 65000 + i % 100),
                true,
            )
        }));
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (_stop, rx) = watch::channel(false);
        let cfg = ServeConfig {
            max_clients: 1,
            notify_interval: Duration::from_secs(60),
            write_timeout: Duration::from_secs(1),
        };
        tokio::spawn(serve(l, feed, cfg, None, rx));
        let reset = crate::rpki::rtr::encode_query(1, None);
        let mut idle = TcpStream::connect(addr).await.unwrap();
        idle.write_all(&reset).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let got = first_answer(addr, &reset).await;
        let prefixes = got
            .iter()
            .filter(|p| matches!(p, Pdu::Prefix { .. }))
            .count();
        assert_eq!(prefixes, 200_000, "{:?}", got.last());
        assert!(matches!(got.last(), Some(Pdu::EndOfData { .. })));
        drop(idle);
    }

    #[tokio::test]
    async fn routers_reset_get_notified_and_query_serials() {
        let feed = Arc::new(Feed::new("t", 42, Timing::default()));
        let a = k("192.0.2.0/24", 24, 65001);
        let b = k("198.51.100.0/24", 24, 65002);
        feed.update([(a, true)]);
        let mut aspas = FxHashMap::default();
        aspas.insert(65002, Arc::from(vec![65001]));
        feed.replace([a].into_iter().collect(), aspas);
        let (addr, _stop) = start(feed.clone(), Duration::ZERO).await;
        let mut s = TcpStream::connect(addr).await.unwrap();
        let mut buf = Vec::new();

        // Version 1: no ASPA.
        s.write_all(&encode_query(1, None)).await.unwrap();
        let r = answer(&mut s, &mut buf).await;
        assert_eq!(r.len(), 3, "{r:?}");
        assert_eq!(
            r[0],
            Pdu::CacheResponse {
                version: 1,
                session: 42
            }
        );
        assert_eq!(r[1], prefix_pdu(1, a, true));
        assert!(matches!(
            r[2],
            Pdu::EndOfData {
                version: 1,
                session: 42,
                serial: 2,
                timing: Some(_)
            }
        ));

        // A change: the router is told, asks, and gets only the change.
        feed.update([(b, true)]);
        let r = answer(&mut s, &mut buf).await;
        assert_eq!(
            r,
            vec![Pdu::SerialNotify {
                version: 1,
                session: 42,
                serial: 3
            }]
        );
        s.write_all(&encode_query(1, Some((42, 2)))).await.unwrap();
        let r = answer(&mut s, &mut buf).await;
        assert_eq!(r[1..], [prefix_pdu(1, b, true), r[2].clone()]);
        assert!(matches!(r[2], Pdu::EndOfData { serial: 3, .. }));

        // A serial it cannot have, and another session: Cache Reset.
        for q in [
            encode_query(1, Some((42, 77))),
            encode_query(1, Some((41, 3))),
        ] {
            s.write_all(&q).await.unwrap();
            assert_eq!(
                answer(&mut s, &mut buf).await,
                vec![Pdu::CacheReset { version: 1 }]
            );
        }
        // Another version in this session: refused and closed.
        s.write_all(&encode_query(2, None)).await.unwrap();
        let r = answer(&mut s, &mut buf).await;
        assert!(
            matches!(
                &r[0],
                Pdu::ErrorReport {
                    code: code::UNEXPECTED_VERSION,
                    ..
                }
            ),
            "{r:?}"
        );
        assert!(answer(&mut s, &mut buf).await.is_empty(), "closed");

        // Version 2 gets the ASPA; version 3 is refused in version 2.
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(&encode_query(2, None)).await.unwrap();
        let r = answer(&mut s, &mut buf).await;
        assert_eq!(r.len(), 5, "{r:?}");
        assert_eq!(r[3], aspa_pdu(2, 65002, Some(&[65001])));
        let r = first_answer(addr, &encode_query(3, None)).await;
        assert!(
            matches!(
                &r[0],
                Pdu::ErrorReport {
                    version: 2,
                    code: code::UNSUPPORTED_VERSION,
                    ..
                }
            ),
            "{r:?}"
        );
        // Garbage: Corrupt Data, closed; the other router's session goes on.
        let r = first_answer(addr, &[1, 2, 0, 0, 0, 0, 0, 3]).await;
        assert!(
            matches!(
                &r[0],
                Pdu::ErrorReport {
                    code: code::CORRUPT_DATA,
                    ..
                }
            ),
            "{r:?}"
        );
        feed.update([(a, false)]);
        let r = answer(&mut s, &mut buf).await;
        assert_eq!(
            r,
            vec![Pdu::SerialNotify {
                version: 2,
                session: 42,
                serial: 4
            }]
        );
        assert_eq!(feed.status().clients.len(), 1, "{:?}", feed.status());
    }

    #[tokio::test]
    async fn a_feed_without_data_says_so() {
        let feed = Arc::new(Feed::new("t", 3, Timing::default()));
        let (addr, _stop) = start(feed.clone(), Duration::ZERO).await;
        let r = first_answer(addr, &encode_query(2, None)).await;
        assert!(
            matches!(
                &r[0],
                Pdu::ErrorReport {
                    code: code::NO_DATA_AVAILABLE,
                    ..
                }
            ),
            "{r:?}"
        );
        // Ready with nothing in it: an empty answer.
        feed.set_ready();
        let r = first_answer(addr, &encode_query(2, None)).await;
        assert_eq!(r.len(), 2, "{r:?}");
    }

    #[tokio::test]
    async fn notifies_are_spaced_by_the_interval() {
        let feed = Arc::new(Feed::new("t", 1, Timing::default()));
        feed.set_ready();
        let (addr, _stop) = start(feed.clone(), Duration::from_millis(400)).await;
        let mut s = TcpStream::connect(addr).await.unwrap();
        let mut buf = Vec::new();
        s.write_all(&encode_query(1, None)).await.unwrap();
        answer(&mut s, &mut buf).await;
        let t = Instant::now();
        feed.update([(k("192.0.2.0/24", 24, 1), true)]);
        assert!(matches!(
            answer(&mut s, &mut buf).await[0],
            Pdu::SerialNotify { serial: 1, .. }
        ));
        assert!(t.elapsed() < Duration::from_millis(300));
        // Two more changes soon after: one notify, for the last serial, after the interval.
        feed.update([(k("192.0.2.0/24", 24, 2), true)]);
        feed.update([(k("192.0.2.0/24", 24, 3), true)]);
        let r = answer(&mut s, &mut buf).await;
        assert_eq!(
            r,
            vec![Pdu::SerialNotify {
                version: 1,
                session: 1,
                serial: 3
            }]
        );
        assert!(
            t.elapsed() >= Duration::from_millis(390),
            "{:?}",
            t.elapsed()
        );
    }

    async fn next<T>(rx: &mut tokio::sync::mpsc::UnboundedReceiver<T>) -> T {
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("within 5 s")
            .expect("a value")
    }

    /// The daemon's own RTR client takes the server's data, ASPA included, and follows
    /// its changes.
    #[tokio::test]
    async fn the_rtr_client_follows_the_server() {
        let feed = Arc::new(Feed::new("t", 9, Timing::default()));
        let mut vrps = FxHashSet::default();
        for i in 0..5000u32 {
            vrps.insert((
                IpNet::V4(ipnet::Ipv4Net::new((0x0a00_0000 + (i << 8)).into(), 24).unwrap()),
                24,
                64_500 + i % 7,
            ));
        }
        let mut aspas = FxHashMap::default();
        aspas.insert(64_500, Arc::from(vec![64_501, 64_502]));
        feed.replace(vrps.clone(), aspas);
        let (addr, _stop) = start(feed.clone(), Duration::ZERO).await;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let (_cstop, cstop_rx) = watch::channel(false);
        let mut client = RtrClient::new(RtrConfig::new(&addr.to_string()));
        tokio::spawn(async move {
            client
                .run(
                    move |e| {
                        if let RtrEvent::Data(d) = e {
                            let _ = tx.send(d);
                        }
                    },
                    |_| {},
                    cstop_rx,
                )
                .await
        });
        let d = next(&mut rx).await;
        assert_eq!((d.version, d.vrp_count(), d.aspa_count()), (2, 5000, 1));
        let got: FxHashSet<VrpKey> = d
            .vrps()
            .iter()
            .map(|v| (v.prefix, v.max_length, v.asn.0))
            .collect();
        assert_eq!(got, vrps);
        let gone = *vrps.iter().next().unwrap();
        feed.update([(gone, false)]);
        let d = next(&mut rx).await;
        assert_eq!((d.serial, d.vrp_count()), (feed.serial(), 4999));
        assert_eq!(feed.status().clients[0].serial_queries, 1);
    }
}
