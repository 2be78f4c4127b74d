//! An RTR client (RFC 8210, and version 2 of draft-ietf-sidrops-8210bis with ASPA): the
//! RPKI data a cache (StayRTR, Routinator, rpki-client + StayRTR, Fort) serves to routers,
//! taken the way routers take it.
//!
//! Written on the PDUs rather than on the `rpki` crate's client, for one reason found in
//! the lab: StayRTR 0.5.1 (Debian) speaks version 2 with the ASPA PDU of 8210bis-10 (flags,
//! AFI and provider count after the header), the `rpki` crate reads the later layout
//! (flags in the header), and the one read as the other gives no error but a wrong ASPA
//! and an announcement read as a withdrawal. [`decode`] tells the two layouts apart (see
//! there) and reads both.
//!
//! What the client does:
//! - proposes version 2 (or the configured maximum) and falls back when the cache refuses
//!   (Error Report "Unsupported Protocol Version", or a reply in a lower version), down to
//!   version 0;
//! - Reset Query first, then Serial Queries every `refresh` (from End of Data; version 0
//!   has none: 3600 s) and on Serial Notify; Cache Reset, a changed session id, and a
//!   Serial Query the cache refuses or drops (StayRTR after a restart) go back to a Reset
//!   Query; empty deltas (StayRTR sends them) change nothing;
//! - an update is applied only whole, at End of Data;
//! - reconnects with backoff (1 s doubling to `retry`, at most 60 s) after any failure;
//! - data older than `expire` (from the last End of Data) is reported as expired; the
//!   caller decides not to use it (the daemon says so).
//!
//! [`decode`] is pure and never panics (property-tested); everything a cache sends that
//! cannot be used is an [`RtrError`] that ends the session, which is then reconnected.

use crate::model::Asn;
use crate::rpki::vrps::{Aspa, AspaAfi, Vrp};
use ipnet::IpNet;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod pdu;
pub use pdu::*;

/// The data a cache has given, as of its last End of Data. Cloning it is cheap: the
/// sets are shared, and copied only when a delta changes them while a clone is held.
#[derive(Clone, Debug, Default)]
pub struct RtrData {
    pub session: u16,
    pub serial: u32,
    pub version: u8,
    pub timing: Timing,
    sets: std::sync::Arc<Sets>,
}

#[derive(Clone, Debug, Default)]
struct Sets {
    vrps: FxHashSet<(IpNet, u8, u32)>,
    aspas: FxHashMap<(u32, Option<AspaAfi>), Vec<u32>>,
}

impl Sets {
    /// Applies one announcement or withdrawal: `Some(changed)`, `None` for PDUs that
    /// carry no payload kept here (Router Keys).
    fn push(&mut self, pdu: Pdu) -> Option<bool> {
        match pdu {
            Pdu::Prefix {
                announce,
                prefix,
                max_length,
                asn,
                ..
            } => {
                let key = (prefix, max_length, asn);
                Some(if announce {
                    self.vrps.insert(key)
                } else {
                    self.vrps.remove(&key)
                })
            }
            Pdu::Aspa {
                announce,
                customer,
                afi,
                providers,
                ..
            } => {
                let key = (customer, afi);
                Some(if announce {
                    self.aspas.insert(key, providers.clone()) != Some(providers)
                } else {
                    self.aspas.remove(&key).is_some()
                })
            }
            _ => None,
        }
    }
}

impl RtrData {
    pub fn vrp_count(&self) -> usize {
        self.sets.vrps.len()
    }

    pub fn aspa_count(&self) -> usize {
        self.sets.aspas.len()
    }

    /// The VRPs, in no particular order ([`crate::rpki::VrpIndex`] orders them itself).
    pub fn vrps(&self) -> Vec<Vrp> {
        self.sets
            .vrps
            .iter()
            .map(|&(prefix, max_length, asn)| Vrp {
                prefix,
                max_length,
                asn: Asn(asn),
                ta: None,
                expires: None,
            })
            .collect()
    }

    /// The ASPAs, sorted by customer.
    pub fn aspas(&self) -> Vec<Aspa> {
        let mut v: Vec<Aspa> = self
            .sets
            .aspas
            .iter()
            .map(|(&(customer, afi), providers)| {
                let mut providers: Vec<Asn> = providers.iter().copied().map(Asn).collect();
                providers.sort();
                providers.dedup();
                Aspa {
                    customer: Asn(customer),
                    providers,
                    afi,
                    expires: None,
                }
            })
            .collect();
        v.sort_by_key(|a| (a.customer, a.afi.map(|f| f as u8)));
        v
    }
}

/// What a client reports (the daemon shows it in its status).
#[derive(Clone, Debug, Default, Serialize)]
pub struct RtrStatus {
    pub cache: String,
    pub connected: bool,
    /// The version spoken (after any fall-back).
    pub version: Option<u8>,
    pub session: Option<u16>,
    pub serial: Option<u32>,
    pub vrps: usize,
    pub aspas: usize,
    /// Updates applied (End of Data), resets among them, and deltas that changed nothing.
    pub updates: u64,
    pub resets: u64,
    pub empty_deltas: u64,
    /// Announcements of what was there already and withdrawals of what was not
    /// (tolerated, counted).
    pub duplicates: u64,
    /// Seconds since the last End of Data, and whether that is past `expire`.
    pub age_s: Option<u64>,
    pub expired: bool,
    pub timing: Option<Timing>,
    pub last_error: Option<String>,
}

/// What the client hands its caller.
#[derive(Clone, Debug)]
pub enum RtrEvent {
    /// A new data set (after each End of Data that changed something, and the first).
    Data(std::sync::Arc<RtrData>),
    /// The data is older than `expire`: it must not be used any more.
    Expired,
}

/// Where the client connects and what it proposes.
#[derive(Clone, Debug)]
pub struct RtrConfig {
    /// `HOST:PORT`.
    pub cache: String,
    /// The version proposed first (at most [`MAX_VERSION`]).
    pub version: u8,
    /// How long a query may wait for its answer.
    pub timeout: Duration,
}

impl RtrConfig {
    pub fn new(cache: &str) -> Self {
        RtrConfig {
            cache: cache.to_string(),
            version: MAX_VERSION,
            timeout: Duration::from_secs(30),
        }
    }
}

/// Why a session ended.
enum End {
    /// Try again with this version.
    Downgrade(u8),
    /// The cache has no data yet: wait `retry`.
    NoData,
    Failed(RtrError),
    Stopped,
}

/// A connection's reading side: the socket, and a buffer read from `start` on (compacted
/// only when more is read, so a PDU costs no memmove of what follows it).
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
}

impl Conn {
    fn new(stream: TcpStream) -> Self {
        Conn {
            stream,
            buf: Vec::with_capacity(256 * 1024),
            start: 0,
        }
    }

    /// The next PDU, waiting at most until `deadline` (`Ok(None)`: the deadline passed).
    async fn next(
        &mut self,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<Option<Pdu>, RtrError> {
        loop {
            if let Some((pdu, n)) = decode(&self.buf[self.start..])? {
                self.start += n;
                return Ok(Some(pdu));
            }
            self.buf.drain(..self.start);
            self.start = 0;
            let had = self.buf.len();
            self.buf.resize(had + 128 * 1024, 0);
            let read = {
                let into = &mut self.buf[had..];
                match deadline {
                    Some(d) => match tokio::time::timeout_at(d, self.stream.read(into)).await {
                        Ok(r) => r,
                        Err(_) => {
                            self.buf.truncate(had);
                            return Ok(None);
                        }
                    },
                    None => self.stream.read(into).await,
                }
            };
            let read = match read {
                Ok(n) => n,
                Err(e) => {
                    self.buf.truncate(had);
                    return Err(e.into());
                }
            };
            self.buf.truncate(had + read);
            if read == 0 {
                return Err(RtrError::Io(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    if self.buf.is_empty() {
                        "the cache closed the connection"
                    } else {
                        "the cache closed the connection mid-PDU"
                    },
                )));
            }
        }
    }
}

/// The client's state across sessions.
pub struct RtrClient {
    cfg: RtrConfig,
    data: Option<RtrData>,
    /// The cache refused or dropped our Serial Query (StayRTR answers the serial of a
    /// session it no longer knows with Error Report 0 "Session ID mismatch" and closes):
    /// the next query is a Reset Query.
    force_reset: bool,
    updated: Option<Instant>,
    pub status: RtrStatus,
}

impl RtrClient {
    pub fn new(cfg: RtrConfig) -> Self {
        RtrClient {
            status: RtrStatus {
                cache: cfg.cache.clone(),
                ..RtrStatus::default()
            },
            cfg: RtrConfig {
                version: cfg.version.min(MAX_VERSION),
                ..cfg
            },
            data: None,
            force_reset: false,
            updated: None,
        }
    }

    fn expired(&self) -> bool {
        match (&self.data, self.updated) {
            (Some(d), Some(at)) => at.elapsed() > Duration::from_secs(u64::from(d.timing.expire)),
            _ => false,
        }
    }

    fn refresh_status(&mut self) {
        let s = &mut self.status;
        if let Some(d) = &self.data {
            s.version = Some(d.version);
            s.session = Some(d.session);
            s.serial = Some(d.serial);
            s.vrps = d.vrp_count();
            s.aspas = d.aspa_count();
            s.timing = Some(d.timing);
        }
        s.age_s = self.updated.map(|u| u.elapsed().as_secs());
        let expired = match (&self.data, self.updated) {
            (Some(d), Some(at)) => at.elapsed() > Duration::from_secs(u64::from(d.timing.expire)),
            _ => false,
        };
        s.expired = expired;
    }

    /// Runs until `stop` turns true: connects, keeps the data current, reconnects.
    /// `event` gets every new data set and the expiry; `status` is called whenever the
    /// status changes.
    pub async fn run(
        &mut self,
        mut event: impl FnMut(RtrEvent),
        mut status: impl FnMut(&RtrStatus),
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut version = self.cfg.version;
        let mut backoff = Duration::from_secs(1);
        let mut told_expired = false;
        loop {
            if *stop.borrow() {
                return;
            }
            let connected = tokio::select! {
                c = tokio::time::timeout(self.cfg.timeout, TcpStream::connect(&self.cfg.cache)) => c,
                _ = stop.changed() => return,
            };
            let end = match connected {
                Ok(Ok(stream)) => {
                    let _ = stream.set_nodelay(true);
                    self.status.connected = true;
                    self.status.last_error = None;
                    status(&self.status);
                    let mut conn = Conn::new(stream);
                    let updates = self.status.updates;
                    let end = self
                        .session(&mut conn, version, &mut event, &mut status, &mut stop)
                        .await;
                    // A session that ended before answering anything: if it was asked
                    // for a serial, ask for everything next time (see `force_reset`).
                    if self.status.updates == updates && matches!(end, End::Failed(_)) {
                        self.force_reset = true;
                    }
                    self.status.connected = false;
                    end
                }
                Ok(Err(e)) => End::Failed(RtrError::Io(e)),
                Err(_) => End::Failed(RtrError::Timeout(self.cfg.timeout)),
            };
            let wait = match end {
                End::Stopped => return,
                End::Downgrade(v) => {
                    tracing::info!(
                        "RTR {}: the cache refuses version {version}; trying {v}",
                        self.cfg.cache
                    );
                    version = v;
                    // A new version starts afresh: its data may differ (ASPA).
                    Duration::ZERO
                }
                End::NoData => {
                    let retry = self
                        .data
                        .as_ref()
                        .map_or(Timing::default().retry, |d| d.timing.retry);
                    tracing::info!("RTR {}: the cache has no data yet", self.cfg.cache);
                    Duration::from_secs(u64::from(retry).clamp(1, 60))
                }
                End::Failed(e) => {
                    tracing::warn!("RTR {}: {e}; reconnecting in {:?}", self.cfg.cache, backoff);
                    self.status.last_error = Some(e.to_string());
                    let w = backoff;
                    let cap = self
                        .data
                        .as_ref()
                        .map_or(60, |d| u64::from(d.timing.retry).clamp(1, 60));
                    backoff = (backoff * 2).min(Duration::from_secs(cap));
                    w
                }
            };
            if self.data.is_some() && self.status.connected {
                backoff = Duration::from_secs(1);
            }
            self.refresh_status();
            if self.expired() && !told_expired {
                told_expired = true;
                tracing::warn!(
                    "RTR {}: the data is older than its expire interval: no longer used",
                    self.cfg.cache
                );
                event(RtrEvent::Expired);
            }
            if !self.expired() {
                told_expired = false;
            }
            status(&self.status);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// One connection: queries and answers until it fails or `stop`.
    async fn session(
        &mut self,
        conn: &mut Conn,
        version: u8,
        event: &mut impl FnMut(RtrEvent),
        status: &mut impl FnMut(&RtrStatus),
        stop: &mut tokio::sync::watch::Receiver<bool>,
    ) -> End {
        // Serial Query when the data we hold was spoken in this version, else Reset.
        let state = self
            .data
            .as_ref()
            .filter(|d| d.version == version && !self.force_reset)
            .map(|d| (d.session, d.serial));
        let mut reset = state.is_none();
        if let Err(e) = conn.stream.write_all(&encode_query(version, state)).await {
            return End::Failed(e.into());
        }
        let mut awaiting = Some(tokio::time::Instant::now() + self.cfg.timeout);
        let mut next_refresh: Option<tokio::time::Instant> = None;
        let mut receiving = false;
        // A reset's answer is built as it arrives (the hashing overlaps the wait for the
        // cache); a delta's is kept until End of Data, then applied whole.
        let mut pending: Vec<Pdu> = Vec::new();
        let mut building: Option<Sets> = None;
        let mut session_id: Option<u16> = self.data.as_ref().map(|d| d.session);
        loop {
            let deadline = awaiting.or(next_refresh);
            let pdu = tokio::select! {
                p = conn.next(deadline) => p,
                _ = stop.changed() => return End::Stopped,
            };
            let pdu = match pdu {
                Ok(Some(p)) => p,
                Ok(None) => {
                    if awaiting.is_some() {
                        return End::Failed(RtrError::Timeout(self.cfg.timeout));
                    }
                    // Refresh: ask for what changed.
                    let Some(d) = &self.data else {
                        return End::Failed(RtrError::Protocol("refresh without data".into()));
                    };
                    let q = encode_query(version, Some((d.session, d.serial)));
                    if let Err(e) = conn.stream.write_all(&q).await {
                        return End::Failed(e.into());
                    }
                    awaiting = Some(tokio::time::Instant::now() + self.cfg.timeout);
                    next_refresh = None;
                    continue;
                }
                Err(e) => {
                    tell_cache(conn, version, &e).await;
                    return End::Failed(e);
                }
            };
            if let Pdu::ErrorReport {
                code: c,
                text,
                version: v,
            } = &pdu
            {
                return self.reported(version, *c, *v, text);
            }
            if pdu.version() != version {
                // A cache answering in a lower version to our first query: speak it.
                if pdu.version() < version && self.status.updates == 0 && !receiving {
                    return End::Downgrade(pdu.version());
                }
                return End::Failed(RtrError::Protocol(format!(
                    "version {} PDU in a version {version} session",
                    pdu.version()
                )));
            }
            match pdu {
                Pdu::CacheResponse { session, .. } => {
                    if !reset && session_id.is_some_and(|s| s != session) {
                        // A cache that restarted: its serials mean something else now.
                        tracing::info!("RTR {}: new session id {session}: reset", self.cfg.cache);
                        reset = true;
                        let _ = conn.stream.write_all(&encode_query(version, None)).await;
                        continue;
                    }
                    session_id = Some(session);
                    receiving = true;
                    pending.clear();
                    building = reset.then(|| {
                        let n = self.data.as_ref().map_or(0, |d| d.vrp_count());
                        Sets {
                            vrps: FxHashSet::with_capacity_and_hasher(n, Default::default()),
                            aspas: FxHashMap::default(),
                        }
                    });
                }
                Pdu::Prefix { .. } | Pdu::Aspa { .. } | Pdu::RouterKey { .. } if receiving => {
                    match building.as_mut() {
                        Some(b) => {
                            if b.push(pdu) == Some(false) {
                                self.status.duplicates += 1;
                            }
                        }
                        None => pending.push(pdu),
                    }
                }
                Pdu::EndOfData {
                    session,
                    serial,
                    timing,
                    ..
                } if receiving => {
                    let changed = self.apply(
                        building.take(),
                        version,
                        (session, serial),
                        timing,
                        &mut pending,
                    );
                    receiving = false;
                    reset = false;
                    awaiting = None;
                    next_refresh = Some(self.updated_now(changed, event, status));
                }
                Pdu::CacheReset { .. } => {
                    reset = true;
                    receiving = false;
                    if let Err(e) = conn.stream.write_all(&encode_query(version, None)).await {
                        return End::Failed(e.into());
                    }
                    awaiting = Some(tokio::time::Instant::now() + self.cfg.timeout);
                }
                Pdu::SerialNotify { .. } => {
                    if !receiving && awaiting.is_none() {
                        if let Some(d) = &self.data {
                            let q = encode_query(version, Some((d.session, d.serial)));
                            if let Err(e) = conn.stream.write_all(&q).await {
                                return End::Failed(e.into());
                            }
                            awaiting = Some(tokio::time::Instant::now() + self.cfg.timeout);
                        }
                    }
                }
                other => {
                    return End::Failed(RtrError::Protocol(format!(
                        "unexpected {other:?} (not inside a response)"
                    )));
                }
            }
        }
    }

    /// The session's end for an Error Report from the cache (`c`, in version `v`).
    fn reported(&mut self, version: u8, c: u16, v: u8, text: &str) -> End {
        match c {
            code::UNSUPPORTED_VERSION if version > 0 => End::Downgrade(v.min(version - 1)),
            code::NO_DATA_AVAILABLE => End::NoData,
            _ => {
                // Whatever the cache disliked, the next session starts afresh.
                self.force_reset = true;
                End::Failed(RtrError::Report {
                    code: c,
                    text: text.to_string(),
                })
            }
        }
    }

    /// After an End of Data: the status (first: whoever gets the data sees the status
    /// that goes with it), the data when it `changed`; returns when to refresh.
    fn updated_now(
        &mut self,
        changed: bool,
        event: &mut impl FnMut(RtrEvent),
        status: &mut impl FnMut(&RtrStatus),
    ) -> tokio::time::Instant {
        self.updated = Some(Instant::now());
        let refresh = self.data.as_ref().map_or(3600, |d| d.timing.refresh);
        self.refresh_status();
        status(&self.status);
        if changed {
            if let Some(d) = &self.data {
                event(RtrEvent::Data(std::sync::Arc::new(d.clone())));
            }
        }
        tokio::time::Instant::now() + Duration::from_secs(u64::from(refresh.max(1)))
    }

    /// Applies a whole response (`built`: a reset's new sets; else the `pending` delta);
    /// returns whether the data changed.
    fn apply(
        &mut self,
        built: Option<Sets>,
        version: u8,
        (session, serial): (u16, u32),
        timing: Option<Timing>,
        pending: &mut Vec<Pdu>,
    ) -> bool {
        let reset = built.is_some();
        if reset {
            self.force_reset = false;
        }
        let first = self.data.is_none();
        let mut data = self.data.take().unwrap_or_default();
        let mut changed = reset || first;
        if let Some(b) = built {
            data.sets = std::sync::Arc::new(b);
        } else if !pending.is_empty() {
            // Copies the sets only if a consumer still holds the previous ones.
            let sets = std::sync::Arc::make_mut(&mut data.sets);
            for pdu in pending.drain(..) {
                match sets.push(pdu) {
                    Some(true) => changed = true,
                    Some(false) => self.status.duplicates += 1,
                    None => {}
                }
            }
        }
        data.session = session;
        data.serial = serial;
        data.version = version;
        data.timing = timing.unwrap_or_default();
        self.data = Some(data);
        self.status.updates += 1;
        self.status.resets += u64::from(reset);
        self.status.empty_deltas += u64::from(!changed);
        changed
    }
}

/// Tells the cache why its data ends the session, as RFC 8210 §12 asks (for what it
/// sent that cannot be read; nothing for a timeout or a closed connection).
async fn tell_cache(conn: &mut Conn, version: u8, e: &RtrError) {
    let code = match e {
        RtrError::Protocol(_) => code::UNSUPPORTED_PDU,
        RtrError::Malformed(_) | RtrError::TooLong(_) => code::CORRUPT_DATA,
        _ => return,
    };
    let _ = conn
        .stream
        .write_all(&encode_error(version, code, &e.to_string()))
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipnet::{Ipv4Net, Ipv6Net};
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn header(version: u8, kind: u8, session: u16, len: u32) -> Vec<u8> {
        let mut v = vec![version, kind];
        v.extend_from_slice(&session.to_be_bytes());
        v.extend_from_slice(&len.to_be_bytes());
        v
    }

    #[test]
    fn both_aspa_layouts_read_the_same() {
        // StayRTR 0.5.1 (8210bis-10), from the lab capture: customer 65002, providers
        // 65001 and 65003, IPv4, announced.
        let mut d10 = header(2, 11, 0, 24);
        d10.extend_from_slice(&[1, 0, 0, 2]);
        for a in [65002u32, 65001, 65003] {
            d10.extend_from_slice(&a.to_be_bytes());
        }
        // The later layout (flags in the header).
        let mut later = header(2, 11, 0x0100, 20);
        for a in [65002u32, 65001, 65003] {
            later.extend_from_slice(&a.to_be_bytes());
        }
        let (a, n) = decode(&d10).unwrap().unwrap();
        assert_eq!(n, 24);
        assert_eq!(
            a,
            Pdu::Aspa {
                version: 2,
                announce: true,
                customer: 65002,
                afi: Some(AspaAfi::Ipv4),
                providers: vec![65001, 65003]
            }
        );
        let (b, _) = decode(&later).unwrap().unwrap();
        assert_eq!(
            b,
            Pdu::Aspa {
                version: 2,
                announce: true,
                customer: 65002,
                afi: None,
                providers: vec![65001, 65003]
            }
        );
    }

    #[test]
    fn queries_round_trip_and_short_input_waits() {
        let q = encode_query(1, Some((7, 42)));
        assert_eq!(
            decode(&q).unwrap().unwrap().0,
            Pdu::SerialQuery {
                version: 1,
                session: 7,
                serial: 42
            }
        );
        assert_eq!(
            decode(&encode_query(2, None)).unwrap().unwrap().0,
            Pdu::ResetQuery { version: 2 }
        );
        assert!(decode(&q[..11]).unwrap().is_none());
        let e = encode_error(1, code::CORRUPT_DATA, "bad");
        assert_eq!(
            decode(&e).unwrap().unwrap().0,
            Pdu::ErrorReport {
                version: 1,
                code: 0,
                text: "bad".into()
            }
        );
        // Length shorter than the header, over the cap, a bad prefix length.
        assert!(decode(&header(1, 3, 0, 4)).is_err());
        assert!(decode(&header(1, 3, 0, 1 << 20)).is_err());
        let mut p = header(1, 4, 0, 20);
        p.extend_from_slice(&[1, 33, 33, 0, 10, 0, 0, 0, 0, 0, 0, 1]);
        assert!(decode(&p).is_err());
    }

    proptest! {
        /// Whatever a cache sends, decoding returns (a PDU, more-needed, or an error) and
        /// never reads past what it says it used.
        #[test]
        fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(Some((_, n))) = decode(&bytes) {
                prop_assert!(n >= 8 && n <= bytes.len());
            }
        }

        /// Valid prefix PDUs with random fields: decoded to what was encoded.
        #[test]
        /// What the server sends is what the client reads (every PDU type the server
        /// writes, every version, both ASPA flags).
        #[test]
        fn encoded_pdus_decode_to_themselves(
            kind in 0u8..7, version in 0u8..=2, session in any::<u16>(), serial in any::<u32>(),
            v6 in any::<bool>(), addr in any::<u128>(), plen in 0u8..=128, extra in 0u8..=128,
            asn in any::<u32>(), announce in any::<bool>(),
            providers in prop::collection::vec(any::<u32>(), 1..20),
            timing in any::<(u32, u32, u32)>(), text in "[ -~]{0,40}",
        ) {
            let top = if v6 { 128 } else { 32 };
            let plen = plen % (top + 1);
            let prefix = if v6 {
                IpNet::V6(Ipv6Net::new(Ipv6Addr::from(addr), plen).unwrap().trunc())
            } else {
                IpNet::V4(Ipv4Net::new(Ipv4Addr::from(addr as u32), plen).unwrap().trunc())
            };
            let pdu = match kind {
                0 => Pdu::SerialNotify { version, session, serial },
                1 => Pdu::CacheResponse { version, session },
                2 => Pdu::CacheReset { version },
                3 => Pdu::EndOfData {
                    version, session, serial,
                    timing: (version > 0).then_some(Timing {
                        refresh: timing.0, retry: timing.1, expire: timing.2,
                    }),
                },
                4 => Pdu::Prefix {
                    version, announce, prefix,
                    max_length: plen + extra % (top - plen + 1), asn,
                },
                5 => Pdu::Aspa {
                    version: 2, announce, customer: asn, afi: None,
                    providers: if announce { providers } else { Vec::new() },
                },
                _ => Pdu::ErrorReport { version, code: session % 9, text },
            };
            let mut b = Vec::new();
            encode(&pdu, &mut b);
            let (back, n) = decode(&b).unwrap().unwrap();
            prop_assert_eq!(n, b.len());
            prop_assert_eq!(back, pdu);
        }

        fn prefix_pdus_decode_to_what_was_sent(
            v6 in any::<bool>(), addr in any::<u128>(), plen in 0u8..=128, extra in 0u8..=128,
            asn in any::<u32>(), announce in any::<bool>(), version in 0u8..=2,
        ) {
            let top = if v6 { 128 } else { 32 };
            let plen = plen % (top + 1);
            let max = plen + extra % (top - plen + 1);
            let mut b = header(version, if v6 { 6 } else { 4 }, 0, if v6 { 32 } else { 20 });
            b.extend_from_slice(&[u8::from(announce), plen, max, 0]);
            if v6 {
                b.extend_from_slice(&addr.to_be_bytes());
            } else {
                b.extend_from_slice(&(addr as u32).to_be_bytes());
            }
            b.extend_from_slice(&asn.to_be_bytes());
            let (pdu, n) = decode(&b).unwrap().unwrap();
            prop_assert_eq!(n, b.len());
            match pdu {
                Pdu::Prefix { announce: a, prefix, max_length, asn: s, .. } => {
                    prop_assert_eq!(a, announce);
                    prop_assert_eq!(prefix.prefix_len(), plen);
                    prop_assert_eq!(max_length, max);
                    prop_assert_eq!(s, asn);
                }
                other => prop_assert!(false, "{:?}", other),
            }
        }
    }
}
