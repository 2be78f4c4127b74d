//! BMP sessions: the listener, one task per router, and what each session saw.

use super::channels::{ControlTx, DataTx, Input};
use super::now;
use crate::ingest::bmp::{frame, BmpConverter, BmpCounts, RouterInfo, View};
use crate::ingest::PeerRegistry;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the BMP sessions share: the peer registry (so every peer of every router gets
/// one index), and what each session saw, for the status.
#[derive(Default)]
pub(crate) struct Net {
    pub(crate) registry: Mutex<PeerRegistry>,
    /// Per session, in the order they connected (connected ones, and the last
    /// [`ENDED_KEPT`] that ended), and the totals of those no longer listed.
    pub(crate) sessions: Mutex<Sessions>,
}

/// Ended sessions listed in the status (older ones only count in the totals, so a
/// router that reconnects for months does not grow the daemon).
pub(crate) const ENDED_KEPT: usize = 64;

#[derive(Default)]
pub(crate) struct Sessions {
    pub(crate) listed: Vec<SessionSeen>,
    pub(crate) dropped_counts: BmpCounts,
    pub(crate) dropped_routes: (u64, u64),
}

/// What one session saw: (session, the router, its message counts, its (announcements,
/// withdrawals)).
pub(crate) type SessionSeen = (u64, RouterInfo, BmpCounts, (u64, u64));

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

/// What every BMP session is handed: where its events and alerts go, the limits and view
/// of the configuration, the sessions' shared registry, and the stop signal.
#[derive(Clone)]
pub(crate) struct SessionCtx {
    pub(crate) data: DataTx,
    pub(crate) tx: ControlTx,
    pub(crate) cap: usize,
    pub(crate) view: View,
    pub(crate) initiation_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    /// How far a router's timestamps may be from arrival (`None`: taken as they are).
    pub(crate) max_clock_skew: Option<Duration>,
    /// The addresses routers may connect from (empty: any).
    pub(crate) allow: Arc<[ipnet::IpNet]>,
    pub(crate) net: Arc<Net>,
    pub(crate) stop: watch::Receiver<bool>,
}

/// Accepts router sessions (up to `max_sessions` open) until the stop signal.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    ctx: SessionCtx,
    max_sessions: usize,
    open: Arc<AtomicU64>,
) {
    let mut stop = ctx.stop.clone();
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
                        crate::metrics::bmp_error("accept");
                        continue;
                    }
                };
                let ip = peer.ip().to_canonical();
                if !ctx.allow.is_empty() && !ctx.allow.iter().any(|n| n.contains(&ip)) {
                    tracing::warn!("BMP session from {peer} refused: not in the feed's allow list");
                    crate::metrics::bmp_error("not_allowed");
                    drop(stream);
                    continue;
                }
                if open.load(Ordering::Relaxed) as usize >= max_sessions {
                    tracing::warn!("BMP session from {peer} refused: {max_sessions} sessions open (the cap)");
                    crate::metrics::bmp_error("session_cap");
                    drop(stream);
                    continue;
                }
                let session = next.fetch_add(1, Ordering::Relaxed);
                open.fetch_add(1, Ordering::Relaxed);
                let (ctx, open) = (ctx.clone(), open.clone());
                // Every log line of the session says which router it is about.
                let span = tracing::info_span!("bmp", router = %peer.ip(), session);
                tasks.spawn(tracing::Instrument::instrument(async move {
                    bmp_session(stream, peer, session, ctx).await;
                    open.fetch_sub(1, Ordering::Relaxed);
                }, span));
            }
        }
    }
    // Stop: every session ends (it sends its RouterGone on the way out).
    while tasks.join_next().await.is_some() {}
}

/// One router's BMP session: frames, decodes, sends; ends on EOF, a framing error, or
/// shutdown, and then tells the pipeline the router is gone.
pub(crate) async fn bmp_session(
    mut stream: TcpStream,
    peer: SocketAddr,
    session: u64,
    ctx: SessionCtx,
) {
    let SessionCtx {
        data,
        tx,
        cap,
        view,
        initiation_timeout,
        idle_timeout,
        max_clock_skew,
        net,
        mut stop,
        ..
    } = ctx;
    let connected = tokio::time::Instant::now();
    let mut spoke = false;
    let name = peer.to_string();
    tracing::info!("BMP session from {name}");
    let _ = stream.set_nodelay(true);
    // This router's messages become route events here, on the session's task: the
    // pipeline thread only judges.
    let mut conv = BmpConverter::new(view).with_max_skew(max_clock_skew);
    // The session is named by address and port; the router, whose peers keep their
    // index (and trust) when it reconnects, by its address.
    let router = conv.router(&name, &peer.ip().to_string());
    net.update(session, &conv);
    // By the router's address only: a router that reconnects (from a new port) keeps its
    // one series, 0 while it is away, which is what an alerting rule wants to see.
    // (A series is never removed: one that vanished could not fire `== 0`.)
    crate::metrics::bmp_session_up(&peer.ip().to_string(), true);
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut start = 0usize;
    let mut logged_skip = false;
    let mut skewed = 0;
    let messages = crate::metrics::bmp_messages();
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
        if matches!(frame(&buf[start..], cap), Ok(Some(_))) {
            events.reserve(last_batch);
        }
        let f = conv.frame_all(
            router,
            &buf[start..],
            cap,
            received,
            &mut registry,
            &mut |e| events.push(e),
        );
        start += f.used;
        messages.increment(f.messages);
        if conv.counts.clock_skewed > skewed {
            crate::metrics::bmp_clock_skewed(conv.counts.clock_skewed - skewed);
            skewed = conv.counts.clock_skewed;
        }
        for e in &f.skipped {
            crate::metrics::bmp_error(e.kind);
            if !logged_skip {
                tracing::warn!(
                    "BMP from {name}: message skipped ({e}); further skips only counted"
                );
                logged_skip = true;
            }
        }
        if let Some(e) = f.broken {
            crate::metrics::bmp_error(e.kind());
            broken = Some(format!("session dropped: {e}"));
        }
        if start > 0 {
            net.update(session, &conv);
        }
        if !events.is_empty() {
            last_batch = events.len().next_power_of_two();
            if data.send(events).await.is_err() {
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
        spoke |= f.messages > 0;
        // Until its first message, the session has `initiation_timeout`; then, silent,
        // `idle_timeout` (when set).
        let deadline = if !spoke {
            Some((
                connected + initiation_timeout,
                "no BMP message",
                initiation_timeout,
            ))
        } else if !idle_timeout.is_zero() {
            Some((
                tokio::time::Instant::now() + idle_timeout,
                "silent",
                idle_timeout,
            ))
        } else {
            None
        };
        let read = tokio::select! {
            r = stream.read_buf(&mut buf) => r,
            _ = stop.changed() => break 'session "shutting down".to_string(),
            _ = async {
                match deadline {
                    Some((at, ..)) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => {
                let (_, what, after) = deadline.unwrap_or((connected, "silent", idle_timeout));
                crate::metrics::bmp_error(if spoke { "idle_timeout" } else { "initiation_timeout" });
                break 'session format!(
                    "{what} for {}: dropped",
                    humantime::format_duration(after)
                );
            }
        };
        match read {
            Ok(0) if buf.is_empty() => break "closed by the router".to_string(),
            Ok(0) => {
                crate::metrics::bmp_error("truncated_at_close");
                break format!(
                    "closed by the router mid-message ({} bytes left)",
                    buf.len()
                );
            }
            Ok(_) => {}
            Err(e) => {
                crate::metrics::bmp_error("read");
                break format!("read failed: {e}");
            }
        }
    };
    tracing::info!("BMP session from {name} ended: {why}");
    crate::metrics::bmp_session_up(&peer.ip().to_string(), false);
    // The router's routes go with its session, unless the daemon is stopping: then they
    // did not go anywhere, it stopped watching, and the state keeps them held as they are
    // (as it would after a kill -9).
    if !*stop.borrow() {
        let alert = crate::act::alerts::Alert::new(
            crate::act::alerts::AlertKind::BmpSessionLost,
            crate::act::alerts::Severity::Warning,
            format!("bmp.session_lost:{name}"),
            serde_json::json!({
                "summary": format!("BMP session from {name} lost: {why}; its routes are withdrawn"),
                "router": name,
                "reason": why,
            }),
        );
        let _ = tx.send(Input::Alerts(vec![alert]));
        let mut events = Vec::new();
        conv.router_gone(router, now(), &mut |e| events.push(e));
        net.update(session, &conv);
        let _ = data.send(events).await;
    } else {
        net.gone(session);
    }
}
