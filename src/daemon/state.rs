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

/// The state thread: logs each batch of decisions (when there is a store) before the
/// API shows them, saves checkpoints, and forgets restored holds after the grace period.
pub(crate) fn state_thread(
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
                            crate::metrics::state_error("webhook outbox");
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

pub(crate) fn state_failed(what: &str, e: crate::state::StateError) {
    crate::metrics::state_error(what);
    tracing::error!("state: {what} failed: {e}");
}

pub(crate) fn state_message(msg: StateMsg, store: &mut Option<Store>, shared: &Mutex<Shared>) {
    match msg {
        StateMsg::Decisions(ds) => {
            if let Some(st) = store.as_mut() {
                if let Err(e) = st.write_decisions(&ds) {
                    state_failed("decision log", e);
                }
            }
            crate::metrics::decisions_written(ds.len());
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
