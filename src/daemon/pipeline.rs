//! The pipeline thread: the only writer of the judging state.

use super::channels::{Input, StateMsg};
use super::sessions::Net;
use super::state::{alert_id, state_thread, AlertSink};
use super::status::{ActStatus, FeedStatus, Shared, Status};
use super::{lock, now, RunConfig, SourceSpec, DECISION_CHUNK, PUBLISH_EVERY};
use crate::act::quarantine::QuarantineSet;
use crate::act::verify::{BirdStatus, Change};
use crate::act::ActionRecord;
use crate::ingest::bmp::BmpCounts;
use crate::ingest::{mrt, IngestEvent};
use crate::judge::{Decision, Judge, Policy};
use crate::model::Asn;
use crate::pipeline::{Pipeline, RovStage};
use crate::rpki::{AspaSet, VrpIndex, VrpSet};
use crate::state::{decision_key, Restored, Store};
use rustc_hash::FxHashSet;
use std::cell::RefCell;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The RTR feeds the daemon serves (see [`crate::act::rtr_server`]), and where each
/// change of the quarantine goes to be verified.
#[derive(Clone, Default)]
pub(crate) struct Feeds {
    pub(crate) rpki: Option<Arc<crate::act::rtr_server::Feed>>,
    pub(crate) quarantine: Option<Arc<crate::act::rtr_server::Feed>>,
    pub(crate) changes: Option<tokio::sync::broadcast::Sender<Arc<Change>>>,
    pub(crate) birds: Vec<Arc<Mutex<BirdStatus>>>,
    pub(crate) frrs: Vec<Arc<Mutex<crate::act::frr::FrrStatus>>>,
}

/// The pipeline thread: every event through ROV, the Adj-RIB-In and the judge.
#[allow(clippy::too_many_arguments)]
pub(crate) fn pipeline(
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
pub(crate) fn pipeline_loop(
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
            crate::metrics::alerts_raised(alerts.len());
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
    let pending: RefCell<Vec<Decision>> = RefCell::default();
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
    let judge = Judge::new(policy, &index, &aspa, cfg.honour_expires, rpki_serial);
    let mut pipe = Pipeline::new(vec![judge], cfg.honour_expires, true);
    let was_restored = restored.saved.is_some();
    if let (Some(saved), Some(j)) = (restored.saved, pipe.judge_mut()) {
        j.restore(saved, now(), |p| rov.intern_prefix(p));
    }
    let mut claims_saved = pipe.judges().first().map(|j| j.claims_version());
    let mut last_checkpoint = Instant::now();
    let checkpoint_every = cfg
        .state
        .as_ref()
        .map_or(Duration::from_secs(3600), |s| s.checkpoint);
    // Saves the judge (its claims only when they changed); `ack` once committed.
    let mut checkpoint = |pipe: &Pipeline, ack: Option<Box<dyn FnOnce() + Send>>| {
        let Some(j) = pipe.judges().first() else {
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
    let mut handle = |events: &mut Vec<IngestEvent>, rov: &mut RovStage, pipe: &mut Pipeline| {
        // In bulk, as the replay does: the table look-ups overlap.
        verdicts.clear();
        rov.annotate_all(events, &mut verdicts);
        if let Err(e) = pipe.handle_all(events, &verdicts, &mut *pending.borrow_mut()) {
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
        handle(&mut events, &mut rov, &mut pipe);
    }
    let replayed = replay.len();
    if replayed > 0 {
        checkpoint(&pipe, None);
        tracing::info!(
            "replayed {replayed} MRT files ({replay_ann} announcements, {replay_wd} \
             withdrawals) in {:.1} s; judging BMP now",
            t0.elapsed().as_secs_f64()
        );
    }

    let mut last_publish = Instant::now() - PUBLISH_EVERY;
    let publish = |pipe: &Pipeline, force: bool, last: &mut Instant| {
        if !force && last.elapsed() < PUBLISH_EVERY {
            return;
        }
        *last = Instant::now();
        let judge: Option<&Judge> = pipe.judges().first();
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
            routes_stored: pipe.routes_stored(),
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
        crate::metrics::routes(status.routes_stored, status.peers, ann, wd);
        let s = &status.judge;
        for (outcome, v) in [
            ("quarantine", s.quarantined),
            ("reject", s.rejected),
            ("release", s.released),
            ("withdrawn_while_held", s.withdrawn_while_held),
        ] {
            crate::metrics::decisions_by_outcome(outcome, v);
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
            crate::metrics::bmp_messages_by_type(kind, v);
        }
        let mut sh = lock(&shared);
        sh.status = status;
        sh.trust = trust;
    };
    publish(&pipe, true, &mut last_publish);

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
                        handle(&mut events, &mut rov, &mut pipe);
                    }
                    handle(&mut evs, &mut rov, &mut pipe);
                }
                Input::Routes {
                    prefix,
                    origin,
                    reply,
                } => {
                    // Answer after everything received before the question.
                    handle(&mut events, &mut rov, &mut pipe);
                    let pid = rov.prefix_id(&prefix);
                    let mut claims = match (pid, pipe.judges().first()) {
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
                    handle(&mut events, &mut rov, &mut pipe);
                    let held = pipe.judges().first().map(|j| j.held()).unwrap_or_default();
                    let _ = reply.send(held);
                }
                Input::Operator {
                    prefix,
                    origin,
                    action,
                    note,
                    reply,
                } => {
                    handle(&mut events, &mut rov, &mut pipe);
                    let done = match (rov.prefix_id(&prefix), pipe.judge_mut()) {
                        (Some(pid), Some(j)) => j.operator(pid, origin, action, &note, now()),
                        _ => None,
                    };
                    // The decisions it made, logged like any other; the answer waits
                    // until they and the override are committed.
                    let _ = pipe.drain(&mut *pending.borrow_mut());
                    send_decisions();
                    tracing::info!("operator {action:?} of {prefix} origin {origin:?} ({note}): {done:?} routes");
                    checkpoint(
                        &pipe,
                        Some(Box::new(move || {
                            let _ = reply.send(done);
                        })),
                    );
                }
                Input::Policy { policy, reply } => {
                    handle(&mut events, &mut rov, &mut pipe);
                    let before = pipe.judges().first().map_or(0, |j| j.stats().decisions);
                    quarantine.borrow_mut().set_acting(policy.act);
                    if let Some(j) = pipe.judge_mut() {
                        j.set_policy(*policy, now());
                    }
                    let _ = pipe.drain(&mut *pending.borrow_mut());
                    send_decisions();
                    let after = pipe.judges().first().map_or(0, |j| j.stats().decisions);
                    let _ = reply.send((after - before) as usize);
                }
                Input::Rpki {
                    index,
                    aspa,
                    serial,
                    description,
                } => {
                    // Everything received before is judged with the old set first.
                    handle(&mut events, &mut rov, &mut pipe);
                    let before = pipe.judges().first().map_or(0, |j| j.stats().decisions);
                    rov.set_index(index.clone());
                    let changed = pipe.set_rpki(index, aspa, serial, now());
                    let _ = pipe.drain(&mut *pending.borrow_mut());
                    send_decisions();
                    let after = pipe.judges().first().map_or(0, |j| j.stats().decisions);
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
                    handle(&mut events, &mut rov, &mut pipe);
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
        handle(&mut events, &mut rov, &mut pipe);
        if last_checkpoint.elapsed() >= checkpoint_every {
            checkpoint(&pipe, None);
            last_checkpoint = Instant::now();
        }
        // Idle (nothing waiting): the snapshot may be fresher than every 200 ms.
        let idle = rx.is_empty() && last_publish.elapsed() >= Duration::from_millis(10);
        publish(&pipe, idle, &mut last_publish);
    }
    handle(&mut events, &mut rov, &mut pipe);
    checkpoint(&pipe, None);
    publish(&pipe, true, &mut last_publish);
}

/// The feeds a new run serves: the RPKI feed holds the data loaded at start, unless it
/// comes from RTR caches (then routers hear No Data Available until the first set); the
/// quarantine feed starts empty (and ready).
pub(crate) fn new_feeds(cfg: &RunConfig, vrps: &VrpSet, rpki: bool, quarantine: bool) -> Feeds {
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
pub(crate) fn act_on(
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
        crate::metrics::quarantine_changed(added, released);
        tracing::debug!("quarantine feed serial {serial}: {added} added, {released} released");
    }
    let (held, served) = q.sizes();
    crate::metrics::quarantine(held, served, q.tripped().is_some());
    if let Some(t) = q.tripped() {
        if !was {
            tracing::error!(
                "acting STOPPED: {}; no more routes are quarantined at routers ({} held claims \
                 waiting; releases still go out) until POST /v1/act/resume (alert)",
                t.reason,
                t.waiting
            );
        }
    }
    records
}
