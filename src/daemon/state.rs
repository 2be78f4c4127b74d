//! The state thread: decisions, actions, alerts and checkpoints written to SQLite.

use super::channels::StateMsg;
use super::status::Shared;
use super::{lock, DECISIONS_KEPT};
use crate::state::{decision_key, Store};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where the state thread writes alerts: the outbox, its destinations, and the delivery
/// thread to wake.
pub(crate) struct AlertSink {
    pub(crate) place: crate::act::outbox::Place,
    pub(crate) dests: Vec<crate::act::outbox::Destination>,
    pub(crate) disabled: Arc<Mutex<Vec<bool>>>,
    pub(crate) wake: std::sync::mpsc::Sender<()>,
    /// The signing keys, for the alerts sent at once (see `Writer::alert_now`).
    pub(crate) keys: Vec<crate::act::webhook::Key>,
}

/// The destinations of the configuration.
pub(crate) fn destinations(
    a: &crate::config::AlertsConfig,
) -> Vec<crate::act::outbox::Destination> {
    a.webhook
        .iter()
        .map(|w| crate::act::outbox::Destination {
            name: w.name.clone(),
            url: w.url.clone(),
            format: w.format,
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
pub(crate) fn alert_id() -> String {
    let mut b = [0u8; 16];
    let _ = getrandom::fill(&mut b);
    let mut s = String::from("msg_");
    for x in b {
        s.push_str(&format!("{x:02x}"));
    }
    s
}

/// What waits, unwritten, while the state file cannot be written (a full disk, a
/// read-only remount): kept in memory up to a bound, in order, and written as soon as a
/// write succeeds again. While anything waits the state is *degraded*: `/v1/status` says
/// so and why, operators' holds and releases are refused (503), the pipeline does not act
/// on routers, and an alert goes out (see [`StateHealth`]).
#[derive(Default)]
pub(crate) struct Backlog {
    decisions: std::collections::VecDeque<crate::judge::Decision>,
    actions: Vec<crate::act::ActionRecord>,
    /// The latest checkpoint not written (an older one is replaced).
    checkpoint: Option<crate::judge::Saved>,
    /// Alerts the outbox could not take.
    alerts: Vec<crate::act::alerts::Alert>,
    /// Decisions dropped past the bound (the oldest first), counted.
    lost: u64,
}

/// How many decisions wait in memory at most while the state cannot be written (about
/// 100 MiB); past it the oldest are dropped, counted and logged.
pub(crate) const UNWRITTEN_MAX: usize = 200_000;

/// How often a degraded state is tried again.
const RETRY_EVERY: Duration = Duration::from_secs(1);

impl Backlog {
    fn push_decisions(&mut self, ds: Vec<crate::judge::Decision>) {
        self.decisions.extend(ds);
        while self.decisions.len() > UNWRITTEN_MAX {
            self.decisions.pop_front();
            self.lost += 1;
        }
    }

    /// Keeps `saved` as the checkpoint to write. One saved without the established
    /// claims (an operator's, which does not rewrite them) keeps the claims of the one it
    /// replaces: the pipeline does not send claims again until they change.
    fn keep_checkpoint(&mut self, mut saved: crate::judge::Saved) {
        if saved.claims.is_none() {
            saved.claims = self.checkpoint.take().and_then(|c| c.claims);
        }
        self.checkpoint = Some(saved);
    }
}

/// Whether the state file takes writes: read by the pipeline (acting, operators) and the
/// API, set by the state thread.
#[derive(Default)]
pub(crate) struct StateHealth {
    /// `detail.is_some()`, readable without the lock: the pipeline asks at every
    /// quarantine push.
    degraded: std::sync::atomic::AtomicBool,
    detail: Mutex<Option<Degraded>>,
}

/// What `/v1/status` says while the state cannot be written.
#[derive(Clone, Debug, serde::Serialize)]
pub(crate) struct Degraded {
    pub(crate) since: String,
    pub(crate) error: String,
    pub(crate) unwritten_decisions: usize,
    pub(crate) unwritten_actions: usize,
    /// Decisions dropped past the bound of [`UNWRITTEN_MAX`].
    pub(crate) lost_decisions: u64,
}

impl StateHealth {
    pub(crate) fn degraded(&self) -> bool {
        self.degraded.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Why, while degraded.
    pub(crate) fn detail(&self) -> Option<Degraded> {
        self.detail
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn set(&self, d: Option<Degraded>) {
        self.degraded
            .store(d.is_some(), std::sync::atomic::Ordering::Release);
        *self.detail.lock().unwrap_or_else(|e| e.into_inner()) = d;
    }
}

/// The state thread's own: the store, the backlog, the outbox.
struct Writer {
    store: Option<Store>,
    shared: Arc<Mutex<Shared>>,
    health: Arc<StateHealth>,
    sink: Option<AlertSink>,
    outbox: Option<crate::act::outbox::Outbox>,
    backlog: Backlog,
    /// When the state became degraded, and the first error.
    since: Option<(String, String)>,
    /// When writing what waits was last tried (at most every [`RETRY_EVERY`]: each try
    /// encodes up to 65,536 decisions).
    last_try: Instant,
}

/// The state thread: logs each batch of decisions (when there is a store) before the
/// API shows them, saves checkpoints, and forgets restored holds after the grace period;
/// when the store cannot be written, keeps what waits (see [`Backlog`]) and tries again
/// every second.
pub(crate) fn state_thread(
    store: Option<Store>,
    rx: std::sync::mpsc::Receiver<StateMsg>,
    shared: Arc<Mutex<Shared>>,
    health: Arc<StateHealth>,
    grace: Duration,
    sink: Option<AlertSink>,
) {
    let outbox = sink.as_ref().and_then(|s| {
        crate::act::outbox::Outbox::open(&s.place)
            .map_err(|e| tracing::error!("webhook outbox: cannot open: {e}"))
            .ok()
    });
    let started = Instant::now();
    let mut restored_open = !lock(&shared).restored.is_empty();
    let mut w = Writer {
        store,
        shared,
        health,
        sink,
        outbox,
        backlog: Backlog::default(),
        since: None,
        last_try: Instant::now(),
    };
    loop {
        let mut wait = if restored_open {
            grace.saturating_sub(started.elapsed())
        } else {
            Duration::from_secs(3600)
        };
        if w.since.is_some() {
            wait = wait.min(RETRY_EVERY);
        }
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
        if w.since.is_some() && w.last_try.elapsed() >= RETRY_EVERY {
            w.flush();
        }
        for m in [msg, next].into_iter().flatten() {
            w.message(m);
        }
        if restored_open && started.elapsed() >= grace {
            restored_open = false;
            let left = std::mem::take(&mut lock(&w.shared).restored).len();
            if let Some(st) = w.store.as_mut() {
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
    // Shutting down: one last try for what waits.
    if w.since.is_some() {
        w.flush();
        if w.since.is_some() {
            tracing::error!(
                "state: stopping with {} decisions and {} actions never written (the state \
                 file could not be written: {})",
                w.backlog.decisions.len(),
                w.backlog.actions.len(),
                w.since.as_ref().map_or("", |s| s.1.as_str())
            );
        }
    }
}

pub(crate) fn state_failed(what: &str, e: crate::state::StateError) {
    crate::metrics::state_error(what);
    tracing::error!("state: {what} failed: {e}");
}

impl Writer {
    fn message(&mut self, msg: StateMsg) {
        match msg {
            StateMsg::Decisions(ds) => self.decisions(ds),
            StateMsg::Alerts(alerts) => self.alerts(alerts),
            StateMsg::Actions(v) => self.actions(v),
            StateMsg::Checkpoint(saved, ack) => {
                let res = match self.store.as_mut() {
                    None => Ok(()),
                    // Behind unwritten decisions: it waits with them.
                    Some(_) if self.since.is_some() => {
                        self.backlog.keep_checkpoint(saved);
                        Err(self.why())
                    }
                    Some(st) => match st.checkpoint(&saved) {
                        Ok(()) => Ok(()),
                        Err(e) => {
                            self.backlog.keep_checkpoint(saved);
                            self.degrade("checkpoint", e);
                            Err(self.why())
                        }
                    },
                };
                if let Some(ack) = ack {
                    ack(res);
                }
            }
        }
    }

    /// Why the state is degraded.
    fn why(&self) -> String {
        self.since.as_ref().map_or_else(String::new, |(_, e)| {
            format!("the state file cannot be written: {e}")
        })
    }

    fn decisions(&mut self, ds: Vec<crate::judge::Decision>) {
        crate::metrics::decisions_written(ds.len());
        let Some(st) = self.store.as_mut() else {
            // Without a store the API reads a ring of the latest.
            let mut sh = lock(&self.shared);
            for d in ds {
                if sh.decisions.len() == DECISIONS_KEPT {
                    sh.decisions.pop_front();
                }
                sh.decisions.push_back(d);
            }
            return;
        };
        {
            let mut sh = lock(&self.shared);
            if !sh.restored.is_empty() {
                for d in &ds {
                    sh.restored.remove(&decision_key(d));
                }
            }
        }
        if self.since.is_some() {
            self.backlog.push_decisions(ds);
            self.publish();
            return;
        }
        if let Err(e) = st.write_decisions(&ds) {
            self.backlog.push_decisions(ds);
            self.degrade("decision log", e);
        }
    }

    fn actions(&mut self, mut v: Vec<crate::act::ActionRecord>) {
        if let Some(st) = self.store.as_mut() {
            if self.since.is_some() {
                self.backlog.actions.append(&mut v);
                return;
            }
            if let Err(e) = st.write_actions(&mut v) {
                self.backlog.actions.append(&mut v);
                self.degrade("audit log", e);
            }
            return;
        }
        let mut sh = lock(&self.shared);
        for mut a in v {
            sh.actions_seq += 1;
            a.seq = sh.actions_seq;
            if sh.actions.len() == DECISIONS_KEPT {
                sh.actions.pop_front();
            }
            sh.actions.push_back(a);
        }
    }

    /// Into the outbox (committed), and the delivery workers woken; kept for later when
    /// the outbox cannot be written.
    fn alerts(&mut self, alerts: Vec<crate::act::alerts::Alert>) {
        let (Some(ob), Some(s)) = (self.outbox.as_mut(), self.sink.as_ref()) else {
            return;
        };
        let disabled = s.disabled.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match ob.add(&alerts, &s.dests, &disabled) {
            Ok(_) => {
                let _ = s.wake.send(());
            }
            Err(e) => {
                crate::metrics::state_error("webhook outbox");
                tracing::error!(
                    "webhook outbox: {e}: {} alerts kept until it can be written",
                    alerts.len()
                );
                self.backlog.alerts.extend(alerts);
                self.backlog.alerts.truncate(10_000);
                if self.since.is_none() && self.store.is_some() {
                    self.degrade_with("webhook outbox", e.to_string());
                }
            }
        }
    }

    fn degrade(&mut self, what: &str, e: crate::state::StateError) {
        crate::metrics::state_error(what);
        self.degrade_with(what, e.to_string());
    }

    /// The state became degraded: said, alerted (directly, since the outbox is in the
    /// same file), and acting stops (the pipeline reads [`StateHealth`]).
    fn degrade_with(&mut self, what: &str, e: String) {
        if self.since.is_some() {
            return;
        }
        let e = format!("{what}: {e}");
        tracing::error!(
            "state degraded: {e}; decisions are kept in memory (up to {UNWRITTEN_MAX}) and \
             written when it can be written again; operators' holds and releases are \
             refused and no router is acted on meanwhile"
        );
        self.since = Some((chrono::Utc::now().to_rfc3339(), e.clone()));
        crate::metrics::state_degraded(true);
        self.publish();
        self.alert_now(true, &e);
    }

    /// Writes what waits, in order; the state is whole again once all of it is.
    fn flush(&mut self) {
        self.last_try = Instant::now();
        let Some(st) = self.store.as_mut() else {
            return;
        };
        let b = &mut self.backlog;
        let res = (|| {
            while !b.decisions.is_empty() {
                let n = b.decisions.len().min(65_536);
                st.write_decisions(&b.decisions.make_contiguous()[..n])?;
                b.decisions.drain(..n);
            }
            if !b.actions.is_empty() {
                st.write_actions(&mut b.actions)?;
                b.actions.clear();
            }
            if let Some(saved) = &b.checkpoint {
                st.checkpoint(saved)?;
                b.checkpoint = None;
            }
            Ok::<(), crate::state::StateError>(())
        })();
        if let Err(e) = res {
            tracing::debug!("state: still cannot be written: {e}");
            self.publish();
            return;
        }
        if !self.backlog.alerts.is_empty() {
            let alerts = std::mem::take(&mut self.backlog.alerts);
            self.alerts(alerts);
            if !self.backlog.alerts.is_empty() {
                self.publish();
                return;
            }
        }
        let lost = std::mem::take(&mut self.backlog.lost);
        let since = self.since.take().map(|s| s.0).unwrap_or_default();
        tracing::warn!(
            "state writable again (degraded since {since}): everything kept was written{}",
            if lost > 0 {
                format!("; {lost} decisions past the bound of {UNWRITTEN_MAX} were lost")
            } else {
                String::new()
            }
        );
        crate::metrics::state_degraded(false);
        self.health.set(None);
        self.alert_now(
            false,
            &format!("degraded since {since}, {lost} decisions lost"),
        );
    }

    /// The status while degraded.
    fn publish(&self) {
        if let Some((since, error)) = &self.since {
            self.health.set(Some(Degraded {
                since: since.clone(),
                error: error.clone(),
                unwritten_decisions: self.backlog.decisions.len(),
                unwritten_actions: self.backlog.actions.len(),
                lost_decisions: self.backlog.lost,
            }));
        }
    }

    /// The `state.degraded` alert. Degraded: delivered at once on its own thread (the
    /// outbox may be what cannot be written), and queued in the outbox as well once it
    /// can be (the same id: receivers take it once). Writable again: through the outbox.
    fn alert_now(&mut self, degraded: bool, detail: &str) {
        let Some(s) = self.sink.as_ref() else {
            return;
        };
        let mut a = crate::act::alerts::Alert::new(
            crate::act::alerts::AlertKind::StateDegraded,
            if degraded {
                crate::act::alerts::Severity::Critical
            } else {
                crate::act::alerts::Severity::Info
            },
            format!("state.degraded:{degraded}"),
            serde_json::json!({
                "summary": if degraded {
                    format!(
                        "the state file cannot be written ({detail}): decisions are kept in \
                         memory and written when it can be, operators' actions are refused \
                         and no router is acted on meanwhile"
                    )
                } else {
                    format!("the state file can be written again ({detail})")
                },
                "degraded": degraded,
            }),
        );
        a.id = alert_id();
        if degraded {
            let disabled = s.disabled.lock().unwrap_or_else(|e| e.into_inner()).clone();
            crate::act::outbox::send_now(&a, &s.dests, &disabled, &s.keys);
            self.backlog.alerts.push(a);
        } else {
            // The outbox takes it again: the usual delivery, with retries.
            self.alerts(vec![a]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::Outcome;
    use crate::state::testing::decision;

    /// Issue 18, point 5: what waits is bounded (the oldest go first, counted) and a
    /// checkpoint that waits keeps the established claims of the one it replaces.
    #[test]
    fn what_waits_is_bounded_and_keeps_the_claims_to_write() {
        let mut b = Backlog::default();
        let p = "192.0.2.0/24".parse().unwrap();
        let batch = |from: u64, n: u64| {
            (from..from + n)
                .map(|s| decision(s, p, 1, Outcome::Quarantine, 0))
                .collect::<Vec<_>>()
        };
        b.push_decisions(batch(1, UNWRITTEN_MAX as u64));
        assert_eq!(b.lost, 0);
        b.push_decisions(batch(UNWRITTEN_MAX as u64 + 1, 10));
        assert_eq!(b.decisions.len(), UNWRITTEN_MAX);
        assert_eq!(b.lost, 10);
        assert_eq!(b.decisions.front().map(|d| d.seq), Some(11));
        let saved = |claims: Option<Vec<crate::judge::SavedClaim>>, seq| crate::judge::Saved {
            started: None,
            now: None,
            seq,
            trust: Vec::new(),
            claims,
            operators: Vec::new(),
        };
        let claim = crate::judge::SavedClaim {
            prefix: p,
            origin: None,
            established: crate::model::EventTime(0),
            gone_since: None,
        };
        b.keep_checkpoint(saved(Some(vec![claim]), 1));
        // An operator's (no claims) after it: its own numbering, the claims kept.
        b.keep_checkpoint(saved(None, 2));
        let c = b.checkpoint.as_ref().unwrap();
        assert_eq!((c.seq, c.claims.as_ref().map(Vec::len)), (2, Some(1)));
        // A newer one with claims replaces them.
        b.keep_checkpoint(saved(Some(Vec::new()), 3));
        let c = b.checkpoint.as_ref().unwrap();
        assert_eq!((c.seq, c.claims.as_ref().map(Vec::len)), (3, Some(0)));
    }
}
