//! The pipeline thread: the only writer of the judging state.

use super::channels::Ack;
use super::channels::{Input, StateMsg};
use super::sessions::Net;
use super::state::{alert_id, state_thread, AlertSink, StateHealth};
use super::status::{FeedStatus, Shared};
use super::{now, RunConfig, SourceSpec, DECISION_CHUNK, PUBLISH_EVERY};
use crate::act::quarantine::QuarantineSet;
use crate::act::verify::{BirdStatus, Change};
use crate::act::ActionRecord;
use crate::ingest::{mrt, IngestEvent};
use crate::judge::{Decision, Judge, OperatorAction, Policy, Saved};
use crate::model::Asn;
use crate::model::EventTime;
use crate::pipeline::{Pipeline, RovStage};
use crate::rpki::{AspaSet, VrpIndex, VrpSet};
use crate::state::{decision_key, Restored, Store};
use ipnet::IpNet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

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

/// Batches of route events judged in a row before the control channel is looked at again.
const DATA_ROUND: usize = 16;

/// What woke the pipeline thread.
enum Woke {
    Control(Option<Input>),
    Data(Option<Vec<IngestEvent>>),
    Timer,
}

/// What the pipeline thread is given at start.
pub(crate) struct Wiring {
    pub(crate) cfg: RunConfig,
    pub(crate) vrps: VrpSet,
    pub(crate) policy: Policy,
    pub(crate) shared: Arc<Mutex<Shared>>,
    pub(crate) net: Arc<Net>,
    pub(crate) bmp_addr: SocketAddr,
    pub(crate) store: Option<Store>,
    pub(crate) restored: Restored,
    pub(crate) feeds: Feeds,
    pub(crate) sink: Option<AlertSink>,
}

/// The pipeline thread: starts the state thread, then every input until the channel
/// closes (see [`Live`]).
pub(crate) fn pipeline(
    mut w: Wiring,
    mut control: mpsc::UnboundedReceiver<Input>,
    mut data: mpsc::Receiver<Vec<IngestEvent>>,
) {
    let alerting = w.sink.as_ref().map(|_| w.cfg.alerts.0.repeat);
    let state_path = w.store.as_ref().map(|s| s.path().display().to_string());
    let state_run = w.store.as_ref().map(|_| w.restored.run);
    let (to_state, state_rx) = std::sync::mpsc::sync_channel::<StateMsg>(16);
    let health = Arc::new(StateHealth::default());
    let writer = {
        let shared = w.shared.clone();
        let health = health.clone();
        let grace = w
            .cfg
            .state
            .as_ref()
            .map_or(Duration::ZERO, |s| s.restore_grace);
        let (store, sink) = (w.store.take(), w.sink.take());
        std::thread::Builder::new()
            .name("rw-state".into())
            .spawn(move || state_thread(store, state_rx, shared, health, grace, sink))
    };
    let writer = match writer {
        Ok(w) => w,
        Err(e) => {
            tracing::error!("cannot start the state thread: {e}");
            return;
        }
    };
    let place = StatePlace {
        to_state,
        path: state_path,
        run: state_run,
        health,
    };
    let restored = w.restored.saved.is_some();
    let mut live = Live::new(w, place, alerting);
    live.replay_demo(restored);
    live.publish(true);
    live.run(&mut control, &mut data);
    drop(live);
    let _ = writer.join();
}

/// Where the state thread is, and which state file and run it writes.
pub(crate) struct StatePlace {
    to_state: std::sync::mpsc::SyncSender<StateMsg>,
    path: Option<String>,
    run: Option<i64>,
    /// Whether the state file takes writes (the state thread says).
    pub(crate) health: Arc<StateHealth>,
}

impl Live {
    /// The state file (`None`: in memory).
    pub(crate) fn state_path(&self) -> Option<String> {
        self.state.path.clone()
    }

    /// This run's number in the state file.
    pub(crate) fn state_run(&self) -> Option<i64> {
        self.state.run
    }
}

/// The pipeline thread's state: ROV, the Adj-RIB-In and the judge ([`Pipeline`]), the
/// quarantine it acts through, alerts, checkpoints and the API's snapshot. One method per
/// kind of [`Input`]; it is the only writer of all of it.
pub(crate) struct Live {
    pub(crate) cfg: RunConfig,
    pub(crate) shared: Arc<Mutex<Shared>>,
    pub(crate) net: Arc<Net>,
    pub(crate) bmp_addr: SocketAddr,
    pub(crate) state: StatePlace,
    pub(crate) act_feeds: Feeds,
    /// The repeat interval of alerts, when webhooks are configured.
    pub(crate) alerting: Option<Duration>,
    /// Alerts deduplicated per type and claim.
    pub(crate) dedupe: crate::act::alerts::Dedupe,
    /// What the quarantine feed serves (see crate::act::quarantine), from every decision
    /// and the holds restored from the state.
    pub(crate) quarantine: QuarantineSet<(String, std::net::IpAddr, Asn, u32)>,
    restore_ends: Instant,
    restore_over: bool,
    /// The quarantine changed while the state could not be written: not pushed yet.
    acting_held_back: bool,
    /// What the status says about the RPKI data (it changes with an RTR source).
    pub(crate) rpki_now: (String, Option<u64>),
    rov: RovStage<'static>,
    pub(crate) pipe: Pipeline<'static>,
    /// The judge's decisions, paths and VRPs filled in, waiting for [`Self::send_decisions`].
    pending: Vec<Decision>,
    /// Events read here (the demo feed), waiting to be judged.
    events: Vec<IngestEvent>,
    verdicts: Vec<crate::pipeline::Verdict>,
    claims_saved: Option<u64>,
    last_checkpoint: Instant,
    checkpoint_every: Duration,
    pub(crate) started: String,
    /// The demo feed's announcements and withdrawals, and its files' status.
    pub(crate) replayed: (u64, u64),
    pub(crate) replayed_files: usize,
    pub(crate) feeds: Vec<FeedStatus>,
    pub(crate) last_publish: Instant,
}

impl Live {
    /// The live state of a new run, from the wiring (its store and alert sink already
    /// handed to the state thread).
    fn new(w: Wiring, state: StatePlace, alerting: Option<Duration>) -> Live {
        let Wiring {
            cfg,
            vrps,
            policy,
            shared,
            net,
            bmp_addr,
            restored,
            feeds: act_feeds,
            ..
        } = w;
        let index = Arc::new(VrpIndex::new(&vrps));
        let aspa = Arc::new(AspaSet::new(&vrps.aspas));
        let rpki_serial = vrps
            .source
            .as_ref()
            .and_then(|s| s.generated)
            .and_then(|g| u64::try_from(g).ok());
        let caps = crate::act::quarantine::Caps {
            max_total: cfg.act.max_quarantined,
            max_per_minute: cfg.act.max_quarantined_per_minute,
        };
        let mut quarantine = QuarantineSet::new(caps, policy.act);
        if act_feeds.quarantine.is_some() {
            for h in &restored.quarantine {
                let (id, peer, asn, path) = h.key();
                quarantine.restore(
                    (id.to_string(), peer, asn, path),
                    h.route.prefix,
                    h.route.origin.map(|a| a.0),
                );
            }
        }
        let mut rov = RovStage::new(index.clone(), cfg.honour_expires);
        let judge = Judge::new(policy, index, aspa, cfg.honour_expires, rpki_serial);
        let mut pipe = Pipeline::new(vec![judge], cfg.honour_expires, true);
        let l = cfg.max_prefixes;
        if l.per_peer > 0 || l.per_router > 0 {
            pipe.set_limits(l);
        }
        if let (Some(mut saved), Some(j)) = (restored.saved, pipe.judge_mut()) {
            let at = now();
            not_ahead(&mut saved, at, cfg.max_clock_skew);
            j.restore(saved, at, |p| rov.intern_prefix(p));
        }
        let claims_saved = pipe.judges().first().map(|j| j.claims_version());
        let grace = cfg
            .state
            .as_ref()
            .map_or(Duration::ZERO, |s| s.restore_grace);
        let checkpoint_every = cfg
            .state
            .as_ref()
            .map_or(Duration::from_secs(3600), |s| s.checkpoint);
        let mut live = Live {
            rpki_now: (cfg.rpki_description.clone(), rpki_serial),
            dedupe: crate::act::alerts::Dedupe::new(alerting.unwrap_or(Duration::from_secs(3600))),
            restore_ends: Instant::now() + grace,
            restore_over: false,
            acting_held_back: false,
            rov,
            pipe,
            pending: Vec::new(),
            events: Vec::with_capacity(1024),
            verdicts: Vec::with_capacity(1024),
            claims_saved,
            last_checkpoint: Instant::now(),
            checkpoint_every,
            started: chrono::Utc::now().to_rfc3339(),
            replayed: (0, 0),
            replayed_files: 0,
            feeds: Vec::new(),
            last_publish: Instant::now() - PUBLISH_EVERY,
            quarantine,
            cfg,
            shared,
            net,
            bmp_addr,
            state,
            act_feeds,
            alerting,
        };
        live.push_quarantine();
        live
    }

    /// The demo feed first: MRT through the same registry, converter-free; not when the
    /// judge was restored (an earlier run judged it, and the state says what it learned).
    fn replay_demo(&mut self, restored: bool) {
        let t0 = Instant::now();
        if restored && !self.cfg.replay.is_empty() {
            tracing::info!(
                "not replaying the {} MRT files of the demo feed: an earlier run judged them, \
                 and the state restored says what it learned",
                self.cfg.replay.len()
            );
            return;
        }
        let files: Vec<PathBuf> = self.cfg.replay.clone();
        for path in &files {
            let read = {
                let mut registry = self.net.registry.lock().unwrap_or_else(|e| e.into_inner());
                let events = &mut self.events;
                mrt::read_file(path, &mut registry, None, |ev| events.push(ev))
            };
            match read {
                Ok(s) => {
                    self.replayed.0 += s.announcements;
                    self.replayed.1 += s.withdrawals;
                    self.feeds.push(FeedStatus::Mrt {
                        file: path.display().to_string(),
                        announcements: s.announcements,
                        withdrawals: s.withdrawals,
                    });
                }
                Err(e) => tracing::warn!("{}: cannot replay: {e}", path.display()),
            }
            self.judge_waiting();
        }
        self.replayed_files = files.len();
        if !files.is_empty() {
            self.checkpoint(None);
            tracing::info!(
                "replayed {} MRT files ({} announcements, {} withdrawals) in {:.1} s; \
                 judging BMP now",
                files.len(),
                self.replayed.0,
                self.replayed.1,
                t0.elapsed().as_secs_f64()
            );
        }
    }

    /// Every input until both channels close, then a last checkpoint and snapshot.
    /// Control and queries first: all of those waiting before each batch of route events,
    /// so an operator's request waits for one batch at most, never behind the queue.
    fn run(
        &mut self,
        control: &mut mpsc::UnboundedReceiver<Input>,
        data: &mut mpsc::Receiver<Vec<IngestEvent>>,
    ) {
        // Waiting on both channels at once needs a runtime; this thread's own, small one.
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                tracing::error!("the pipeline thread cannot wait on its channels: {e}");
                return;
            }
        };
        let (mut control_open, mut data_open) = (true, true);
        while control_open || data_open {
            while let Ok(c) = control.try_recv() {
                self.input(c);
            }
            // A few batches in bulk while nothing else asks (the judge's tables stay warm).
            let mut batches = 0;
            while batches < DATA_ROUND && control.is_empty() {
                match data.try_recv() {
                    Ok(mut evs) => {
                        self.events(&mut evs);
                        batches += 1;
                    }
                    Err(_) => break,
                }
            }
            if batches == 0 && control.is_empty() {
                // Nothing waiting: sleep until either channel has something, or the
                // snapshot is due.
                let woke = rt.block_on(async {
                    tokio::select! {
                        biased;
                        c = control.recv(), if control_open => Woke::Control(c),
                        d = data.recv(), if data_open => Woke::Data(d),
                        _ = tokio::time::sleep(PUBLISH_EVERY) => Woke::Timer,
                    }
                });
                match woke {
                    Woke::Control(Some(c)) => self.input(c),
                    Woke::Control(None) => control_open = false,
                    Woke::Data(Some(mut evs)) => self.events(&mut evs),
                    Woke::Data(None) => data_open = false,
                    Woke::Timer => {}
                }
            }
            self.after_inputs(control.is_empty() && data.is_empty());
        }
        self.judge_waiting();
        self.checkpoint(None);
        self.publish(true);
    }

    /// One input.
    pub(crate) fn input(&mut self, input: Input) {
        match input {
            Input::Routes {
                prefix,
                origin,
                reply,
            } => {
                let _ = reply.send(self.routes(prefix, origin));
            }
            Input::Held { reply } => {
                self.judge_waiting();
                let held = self
                    .pipe
                    .judges()
                    .first()
                    .map(|j| j.held())
                    .unwrap_or_default();
                let _ = reply.send(held);
            }
            Input::Operator {
                prefix,
                origin,
                action,
                note,
                reply,
            } => self.operator(prefix, origin, action, &note, reply),
            Input::Policy { policy, reply } => {
                let _ = reply.send(self.set_policy(*policy));
            }
            Input::Rpki {
                index,
                aspa,
                serial,
                description,
            } => self.set_rpki(index, aspa, serial, description),
            Input::Actions(v) => self.actions(v),
            Input::Alerts(v) => self.raise(v),
            Input::ActResume { reply } => {
                self.judge_waiting();
                let was = self.quarantine.resume();
                self.push_quarantine();
                tracing::warn!("acting resumed by an operator (it was stopped: {was})");
                let _ = reply.send(was);
            }
        }
    }

    /// After a round of inputs: the restored holds' grace, checkpoints, the snapshot.
    fn after_inputs(&mut self, nothing_waiting: bool) {
        if self.acting_held_back && !self.state.health.degraded() {
            tracing::info!("state writable again: acting on routers resumes");
            self.push_quarantine();
        }
        if !self.restore_over && Instant::now() >= self.restore_ends {
            self.restore_over = true;
            self.quarantine.forget_restored();
            self.push_quarantine();
        }
        self.judge_waiting();
        if self.last_checkpoint.elapsed() >= self.checkpoint_every {
            self.checkpoint(None);
            self.last_checkpoint = Instant::now();
        }
        // Idle (nothing waiting): the snapshot may be fresher than every 200 ms.
        let idle = nothing_waiting && self.last_publish.elapsed() >= Duration::from_millis(10);
        self.publish(idle);
    }

    /// Route events from a router session, judged where they lie (appending them to one
    /// vector copied every event once more); what came before them first.
    pub(crate) fn events(&mut self, evs: &mut Vec<IngestEvent>) {
        self.judge_waiting();
        self.judge(evs);
    }

    /// Judges the events read here and not judged yet.
    fn judge_waiting(&mut self) {
        if !self.events.is_empty() {
            let mut evs = std::mem::take(&mut self.events);
            self.judge(&mut evs);
            self.events = evs;
        }
    }

    /// Judges `evs` (in bulk, as the replay does: the table look-ups overlap) and empties
    /// it; the decisions go out.
    fn judge(&mut self, evs: &mut Vec<IngestEvent>) {
        self.verdicts.clear();
        self.rov.annotate_all(evs, &mut self.verdicts);
        if let Err(e) = self.pipe.handle_all(evs, &self.verdicts, &mut self.pending) {
            tracing::error!("recording decisions failed: {e}");
        }
        evs.clear();
        self.limit_crossings();
        self.send_decisions();
    }

    /// Max-prefix: each crossing is logged and alerted, refused routes counted.
    fn limit_crossings(&mut self) {
        let (events, refused) = self.pipe.take_limit_events();
        for (scope, n) in [("peer", refused[0]), ("router", refused[1])] {
            if n > 0 {
                crate::metrics::routes_refused(scope, n);
            }
        }
        if events.is_empty() {
            return;
        }
        for e in &events {
            tracing::warn!("{}", super::publish::max_prefix_text(e));
        }
        let alerts = events.iter().map(super::publish::max_prefix).collect();
        self.raise(alerts);
    }

    /// The claims on `prefix` (of `origin` only, when given), as `/v1/routes` shows them.
    pub(crate) fn routes(&mut self, prefix: IpNet, origin: Option<Asn>) -> serde_json::Value {
        self.judge_waiting();
        let pid = self.rov.prefix_id(&prefix);
        let mut claims = match (pid, self.pipe.judges().first()) {
            (Some(pid), Some(j)) => j.claims_of(pid),
            _ => Vec::new(),
        };
        if origin.is_some() {
            claims.retain(|c| c.origin == origin);
        }
        let claims = serde_json::to_value(claims).unwrap_or_default();
        serde_json::json!({ "prefix": prefix, "claims": claims })
    }

    /// An operator holds or releases a claim. The decisions it made are logged like any
    /// other; the answer waits until they and the override are committed.
    fn operator(
        &mut self,
        prefix: IpNet,
        origin: Option<Asn>,
        action: OperatorAction,
        note: &str,
        reply: oneshot::Sender<Result<Option<usize>, String>>,
    ) {
        // Durable before acknowledged: nothing is taken that cannot be recorded.
        if let Some(d) = self.state.health.detail() {
            let _ = reply.send(Err(format!(
                "the state file cannot be written ({}): the {action:?} is not applied; \
                 see /v1/status",
                d.error
            )));
            return;
        }
        self.judge_waiting();
        let done = match (self.rov.prefix_id(&prefix), self.pipe.judge_mut()) {
            (Some(pid), Some(j)) => j.operator(pid, origin, action, note, now()),
            _ => None,
        };
        self.drain();
        tracing::info!(
            "operator {action:?} of {prefix} origin {origin:?} ({note}): {done:?} routes"
        );
        // Committed before the answer; the established claims (hundreds of thousands of
        // rows, changing all the time under a live stream) wait for the next periodic
        // checkpoint: the override is what must not be lost.
        self.checkpoint_without_claims(Box::new(move |res: Result<(), String>| {
            let _ = reply.send(res.map(|()| done).map_err(|e| {
                format!(
                    "{e}: the {action:?} is applied in memory and will be written when the \
                     state can be (retried every second); see /v1/status"
                )
            }));
        }));
    }

    /// A new policy (SIGHUP): the judge re-judges what it holds. Returns the decisions
    /// that made.
    pub(crate) fn set_policy(&mut self, policy: Policy) -> usize {
        self.judge_waiting();
        let before = self.decisions_made();
        self.quarantine.set_acting(policy.act);
        if let Some(j) = self.pipe.judge_mut() {
            j.set_policy(policy, now());
        }
        self.drain();
        (self.decisions_made() - before) as usize
    }

    /// A new RPKI data set: everything received before is judged with the old set first,
    /// then everything held is re-judged against the new one.
    fn set_rpki(
        &mut self,
        index: Arc<VrpIndex>,
        aspa: Arc<AspaSet>,
        serial: Option<u64>,
        description: String,
    ) {
        self.judge_waiting();
        let before = self.decisions_made();
        self.rov.set_index(index.clone());
        let changed = self.pipe.set_rpki(index, aspa, serial, now());
        self.drain();
        tracing::info!(
            "RPKI: {description}; {changed} claims changed state, {} decisions",
            self.decisions_made() - before
        );
        self.rpki_now = (description, serial);
    }

    /// Actions and verifications done outside the pipeline: logged; a failed or
    /// unverified one is an alert.
    fn actions(&mut self, v: Vec<ActionRecord>) {
        use crate::act::alerts::{Alert, Severity};
        let failed = v
            .iter()
            .filter(|a| a.result.is_failure())
            .map(|a| {
                Alert::new(
                    crate::act::alerts::AlertKind::ActionFailed,
                    Severity::Critical,
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
            .collect();
        self.raise(failed);
        let _ = self.state.to_state.send(StateMsg::Actions(v));
    }

    /// Decisions the judge has taken so far.
    fn decisions_made(&self) -> u64 {
        self.pipe
            .judges()
            .first()
            .map_or(0, |j| j.stats().decisions)
    }

    /// Takes the judge's decisions made outside [`Self::judge`] and sends them.
    fn drain(&mut self) {
        let _ = self.pipe.drain(&mut self.pending);
        self.send_decisions();
    }

    /// The decisions waiting: their alerts (when webhooks are configured), the quarantine,
    /// then the state thread.
    fn send_decisions(&mut self) {
        // The next batch's vector sized like this one's: pushing ~1,000 decisions into an
        // empty vector reallocates and copies them ten times.
        let n = self.pending.len();
        let ds = std::mem::replace(&mut self.pending, Vec::with_capacity(n));
        // Peers fallen below the trust floor in what was just judged: alerts now.
        let fallen = self
            .pipe
            .judge_mut()
            .map(|j| j.take_fallen())
            .unwrap_or_default();
        if !fallen.is_empty() {
            let alerts = fallen.iter().map(super::publish::trust_low).collect();
            self.raise(alerts);
        }
        if self.alerting.is_some() {
            // The dedupe first: a payload is built only for the alerts that go out.
            use crate::act::alerts::Alert;
            let now = Instant::now();
            let dd = &mut self.dedupe;
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
            self.send_alerts(out);
        }
        if self.act_feeds.quarantine.is_some() && !ds.is_empty() {
            for d in &ds {
                self.quarantine.decision(d, || decision_key(d));
            }
            self.push_quarantine();
        }
        // In chunks, so the channel bounds the decisions in flight (16 x 8,192), and
        // sending blocks while the state thread is behind: back-pressure up to the
        // routers. (Each decision moves once.)
        if ds.len() <= DECISION_CHUNK {
            if !ds.is_empty() {
                let _ = self.state.to_state.send(StateMsg::Decisions(ds));
            }
            return;
        }
        let mut all = ds.into_iter();
        loop {
            let chunk: Vec<Decision> = all.by_ref().take(DECISION_CHUNK).collect();
            if chunk.is_empty() {
                break;
            }
            let _ = self.state.to_state.send(StateMsg::Decisions(chunk));
        }
    }

    /// Alerts admitted by the dedupe: numbered and handed to the state thread.
    fn send_alerts(&self, mut alerts: Vec<crate::act::alerts::Alert>) {
        for a in alerts.iter_mut() {
            a.id = alert_id();
        }
        if !alerts.is_empty() {
            crate::metrics::alerts_raised(alerts.len());
            let _ = self.state.to_state.send(StateMsg::Alerts(alerts));
        }
    }

    /// Alerts raised (when webhooks are configured), through the dedupe.
    pub(crate) fn raise(&mut self, mut alerts: Vec<crate::act::alerts::Alert>) {
        if self.alerting.is_none() {
            return;
        }
        let now = Instant::now();
        alerts.retain_mut(|a| self.dedupe.admit(a, now));
        self.send_alerts(alerts);
    }

    /// The quarantine's changes to its feed (and the verifiers); the audit log's rows.
    fn push_quarantine(&mut self) {
        // No router action on decisions that are not recorded: while the state cannot be
        // written the quarantine waits (its latest set goes out once it can).
        if self.state.health.degraded() {
            self.acting_held_back = true;
            return;
        }
        self.acting_held_back = false;
        if let Some(f) = &self.act_feeds.quarantine {
            let records = act_on(&mut self.quarantine, f, self.act_feeds.changes.as_ref());
            if !records.is_empty() {
                let _ = self.state.to_state.send(StateMsg::Actions(records));
            }
        }
    }

    /// Saves the judge's trust, operators and clock, not its claims; `ack` once committed.
    fn checkpoint_without_claims(&mut self, ack: Ack) {
        match self.pipe.judges().first() {
            Some(j) => {
                let saved = j.save(false);
                let _ = self
                    .state
                    .to_state
                    .send(StateMsg::Checkpoint(saved, Some(ack)));
            }
            None => ack(Ok(())),
        }
    }

    /// Saves the judge (its claims only when they changed); `ack` once committed.
    fn checkpoint(&mut self, ack: Option<Ack>) {
        let Some(j) = self.pipe.judges().first() else {
            if let Some(ack) = ack {
                ack(Ok(()));
            }
            return;
        };
        let v = j.claims_version();
        let saved = j.save(self.claims_saved != Some(v));
        self.claims_saved = Some(v);
        let _ = self.state.to_state.send(StateMsg::Checkpoint(saved, ack));
    }
}

/// A saved judge whose clock is ahead of this machine's by more than `skew` (a router's
/// clock moved it there before the skew check, or this machine's clock was wrong) takes
/// this machine's: time only goes forward, so restoring it would keep every timer
/// (confirmation, hold-down, forgetting) wrong for good.
fn not_ahead(saved: &mut Saved, at: EventTime, skew: Duration) {
    let skew = if skew.is_zero() {
        crate::config::default_max_clock_skew()
    } else {
        skew
    };
    let limit = EventTime(at.0.saturating_add(i64::try_from(skew.as_micros()).unwrap_or(i64::MAX)));
    if let Some(t) = saved.now.filter(|&t| t > limit) {
        tracing::warn!(
            "state: the saved judge's clock ({}) is {} s ahead of this machine's; \
             restored at this machine's time",
            t.secs(),
            t.secs() - at.secs()
        );
        saved.now = Some(at);
        if let Some(claims) = saved.claims.as_mut() {
            for c in claims {
                c.established = c.established.min(at);
                c.gone_since = c.gone_since.map(|g| g.min(at));
            }
        }
    }
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
                    crate::act::ActionResult::Served,
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

#[cfg(test)]
mod tests {
    use super::super::lock;
    use super::*;
    use crate::ingest::bmp::View;
    use std::sync::mpsc::Receiver;

    #[test]
    fn a_saved_clock_ahead_of_this_machine_is_not_restored() {
        let saved = |now: i64| Saved {
            started: None,
            now: Some(EventTime::from_secs(now)),
            seq: 7,
            trust: Vec::new(),
            claims: Some(vec![crate::judge::SavedClaim {
                prefix: "192.0.2.0/24".parse().unwrap(),
                origin: None,
                established: EventTime::from_secs(now),
                gone_since: None,
            }]),
            operators: Vec::new(),
        };
        let at = EventTime::from_secs(1_800_000_000);
        let skew = Duration::from_secs(300);
        // 2100: this machine's time instead, and no claim established in the future.
        let mut s = saved(4_102_444_800);
        not_ahead(&mut s, at, skew);
        assert_eq!(s.now, Some(at));
        assert_eq!(s.claims.as_ref().unwrap()[0].established, at);
        // Within the skew, or behind: as saved.
        for secs in [1_800_000_200, 1_700_000_000] {
            let mut s = saved(secs);
            not_ahead(&mut s, at, skew);
            assert_eq!(s.now, Some(EventTime::from_secs(secs)));
        }
    }

    fn cfg() -> RunConfig {
        RunConfig {
            bmp: "127.0.0.1:0".parse().unwrap(),
            api: "127.0.0.1:0".parse().unwrap(),
            view: View::PrePolicy,
            max_sessions: 1,
            max_message: 1 << 20,
            api_max_connections: 4,
            initiation_timeout: Duration::from_secs(30),
            idle_timeout: Duration::ZERO,
            max_clock_skew: crate::config::default_max_clock_skew(),
            max_prefixes: crate::pipeline::Limits {
                per_peer: 0,
                per_router: 0,
                warn: 0.9,
            },
            bmp_allow: Vec::new(),
            replay: Vec::new(),
            shutdown_timeout: Duration::from_secs(1),
            honour_expires: false,
            rpki_description: "one VRP".into(),
            api_token: None,
            state: None,
            reload: super::super::Reload {
                config: None,
                overrides: Default::default(),
                running: crate::cli::default_config(),
            },
            rpki: None,
            act: Default::default(),
            alerts: (Default::default(), Vec::new()),
        }
    }

    /// A pipeline thread's state without the thread, sockets or state file: the state
    /// thread's messages come out of the receiver.
    fn live() -> (Live, Receiver<StateMsg>) {
        live_with(|_, _| Feeds::default())
    }

    /// [`live`] serving the feeds `feeds` makes.
    fn live_with(feeds: impl FnOnce(&RunConfig, &VrpSet) -> Feeds) -> (Live, Receiver<StateMsg>) {
        let vrps = crate::pipeline::testing::one_roa();
        let feeds = feeds(&cfg(), &vrps);
        let mut policy = Policy::builtin_default();
        policy.warmup = Duration::ZERO;
        let w = Wiring {
            cfg: cfg(),
            vrps,
            policy,
            shared: Arc::default(),
            net: Arc::default(),
            bmp_addr: "127.0.0.1:0".parse().unwrap(),
            store: None,
            restored: Restored::default(),
            feeds,
            sink: None,
        };
        let (to_state, rx) = std::sync::mpsc::sync_channel(1024);
        let place = StatePlace {
            to_state,
            path: None,
            run: None,
            health: Arc::default(),
        };
        (Live::new(w, place, None), rx)
    }

    fn invalid_route() -> Vec<IngestEvent> {
        use crate::pipeline::testing::{peer_event, route};
        vec![
            peer_event(0, 64500),
            route(0, 0, "192.0.2.0/24", Some(&[64500, 65002])),
        ]
    }

    fn held_decisions(rx: &Receiver<StateMsg>) -> usize {
        rx.try_iter()
            .map(|m| match m {
                StateMsg::Decisions(ds) => ds.iter().filter(|d| d.outcome.is_held()).count(),
                _ => 0,
            })
            .sum()
    }

    /// With the data queue full (64 batches waiting), an alert sent on the control
    /// channel is neither dropped nor queued behind them: it reaches the state thread
    /// before any of their decisions.
    #[test]
    fn an_alert_is_not_lost_or_queued_behind_a_full_data_queue() {
        let (mut live, rx) = live();
        live.alerting = Some(Duration::from_secs(3600));
        let (data_tx, mut data) = mpsc::channel(64);
        for i in 0..64u32 {
            let mut evs = invalid_route();
            if let IngestEvent::Route(r) = &mut evs[1] {
                r.prefix = format!("192.0.2.{}/32", i).parse().unwrap();
            }
            data_tx.try_send(evs).expect("room for 64 batches");
        }
        assert!(
            data_tx.try_send(invalid_route()).is_err(),
            "the data queue is full"
        );
        let (control_tx, mut control) = mpsc::unbounded_channel();
        let alert = crate::act::alerts::Alert::new(
            crate::act::alerts::AlertKind::RpkiExpired,
            crate::act::alerts::Severity::Warning,
            "rpki.expired:test".into(),
            serde_json::json!({"summary": "test"}),
        );
        control_tx.send(Input::Alerts(vec![alert])).unwrap();
        drop((data_tx, control_tx));
        live.run(&mut control, &mut data);
        let kinds: Vec<&str> = rx
            .try_iter()
            .map(|m| match m {
                StateMsg::Alerts(a) if a.iter().any(|a| a.key == "rpki.expired:test") => "alert",
                StateMsg::Decisions(_) => "decisions",
                _ => "other",
            })
            .collect();
        let alert_at = kinds.iter().position(|k| *k == "alert");
        let first_decisions = kinds.iter().position(|k| *k == "decisions");
        assert!(alert_at.is_some(), "the alert was lost: {kinds:?}");
        assert!(
            alert_at < first_decisions,
            "queued behind the data: {kinds:?}"
        );
    }

    #[test]
    fn events_are_judged_and_their_decisions_go_to_the_state_thread() {
        let (mut live, rx) = live();
        live.events(&mut invalid_route());
        assert_eq!(held_decisions(&rx), 1);
        let routes = live.routes("192.0.2.0/24".parse().unwrap(), None);
        assert_eq!(
            routes["claims"].as_array().map(Vec::len),
            Some(1),
            "{routes}"
        );
        live.publish(true);
        let status = lock(&live.shared).status.clone();
        assert_eq!(status.held_routes, 1);
        assert_eq!(status.routes_stored, 1);
    }

    /// Issue 18, point 5: while the state cannot be written an operator's action is
    /// refused with the reason (nothing applied, nothing to lose), and one whose commit
    /// fails is answered with the failure, never as done.
    #[test]
    fn an_operator_action_is_refused_or_failed_while_the_state_cannot_be_written() {
        let (mut live, rx) = live();
        live.events(&mut invalid_route());
        let _ = held_decisions(&rx);
        live.state.health.set(Some(full_disk()));
        let mut answer = release(&mut live);
        let why = answer.try_recv().unwrap().unwrap_err();
        assert!(
            why.contains("disk is full") && why.contains("not applied"),
            "{why}"
        );
        assert_eq!(rx.try_iter().count(), 0, "nothing went to the state thread");
        live.publish(true);
        assert_eq!(lock(&live.shared).status.held_routes, 1, "not released");
        // Writable again, but the commit fails: answered with the failure.
        live.state.health.set(None);
        let mut answer = release(&mut live);
        for m in rx.try_iter() {
            if let StateMsg::Checkpoint(_, Some(ack)) = m {
                ack(Err(
                    "the state file cannot be written: disk I/O error".into()
                ));
            }
        }
        let why = answer.try_recv().unwrap().unwrap_err();
        assert!(why.contains("I/O error"), "{why}");
    }

    /// The operator's release of the test claim (192.0.2.0/24 AS65002); its answer.
    fn release(live: &mut Live) -> oneshot::Receiver<Result<Option<usize>, String>> {
        let (reply, answer) = oneshot::channel();
        live.input(Input::Operator {
            prefix: "192.0.2.0/24".parse().unwrap(),
            origin: Some(Asn(65002)),
            action: OperatorAction::Release,
            note: "unit".into(),
            reply,
        });
        answer
    }

    /// What the state thread says of a full disk.
    fn full_disk() -> super::super::state::Degraded {
        super::super::state::Degraded {
            since: "now".into(),
            error: "database or disk is full".into(),
            unwritten_decisions: 1,
            unwritten_actions: 0,
            lost_decisions: 0,
        }
    }

    /// Issue 18, point 5: no router is acted on while the state cannot be written; the
    /// quarantine's latest set goes out once it can.
    #[test]
    fn acting_waits_while_the_state_cannot_be_written() {
        let (mut live, rx) = live_with(|cfg, vrps| new_feeds(cfg, vrps, false, true));
        live.state.health.set(Some(full_disk()));
        live.events(&mut invalid_route());
        let actions = |rx: &Receiver<StateMsg>| {
            rx.try_iter()
                .filter(|m| matches!(m, StateMsg::Actions(_)))
                .count()
        };
        assert_eq!(
            actions(&rx),
            0,
            "acted while the state could not be written"
        );
        let served = |live: &Live| live.act_feeds.quarantine.as_ref().unwrap().status().vrps;
        assert_eq!(served(&live), 0);
        live.state.health.set(None);
        live.after_inputs(true);
        assert_eq!(actions(&rx), 1);
        assert_eq!(served(&live), 1);
    }

    #[test]
    fn an_operator_release_is_answered_once_the_state_has_committed_it() {
        let (mut live, rx) = live();
        live.events(&mut invalid_route());
        let _ = held_decisions(&rx);
        let mut answer = release(&mut live);
        // Not before the checkpoint that carries the override is committed.
        assert!(answer.try_recv().is_err());
        let mut acked = false;
        for m in rx.try_iter() {
            if let StateMsg::Checkpoint(_, Some(ack)) = m {
                ack(Ok(()));
                acked = true;
            }
        }
        assert!(acked, "the release's checkpoint went to the state thread");
        assert_eq!(answer.try_recv().ok(), Some(Ok(Some(1))));
        live.publish(true);
        assert_eq!(lock(&live.shared).status.held_routes, 0);
    }

    #[test]
    fn a_new_policy_takes_over_and_monitor_only_stops_acting() {
        let (mut live, rx) = live();
        live.events(&mut invalid_route());
        let _ = held_decisions(&rx);
        live.publish(true);
        let before = lock(&live.shared).status.clone();
        assert!(before.act.acting);
        live.set_policy(Policy::load("monitor-only").unwrap());
        live.publish(true);
        let after = lock(&live.shared).status.clone();
        assert_eq!(after.policy, "monitor-only");
        assert_ne!(after.policy_hash, before.policy_hash);
        assert!(!after.act.acting);
    }
}
