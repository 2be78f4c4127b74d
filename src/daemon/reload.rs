//! SIGHUP: the policy and the API token reloaded from their files.

use super::channels::{ControlTx, Input};
use super::Reload;
use crate::judge::Policy;
use std::sync::Arc;
use tokio::sync::{oneshot, watch};

/// Reloads the policy and the API token on SIGHUP, until shutdown.
pub(crate) async fn reload_on_sighup(
    reload: Reload,
    tx: ControlTx,
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
                    if tx.send(input).is_err() {
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
            crate::metrics::reload(outcome);
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (reload, tx, token, stop.changed().await);
    }
}

/// The policy and token the configuration names now (the file read again, the command
/// line's options over it), or why they cannot be used.
pub(crate) fn reload_files(reload: &Reload) -> Result<(Policy, Option<String>), String> {
    let mut l = match &reload.config {
        Some(path) => crate::config::Loaded::load(path).map_err(|e| e.to_string())?,
        None => reload.running.clone(),
    };
    reload.overrides.apply(&mut l);
    let (policy, token_file) = (l.config.policy.clone(), l.config.api.token_file.clone());
    // Everything else needs a restart: say what changed.
    let running = &reload.running;
    l.config.policy = running.config.policy.clone();
    l.config.api.token_file = running.config.api.token_file.clone();
    let changed = crate::config::changed_keys(running, &l);
    if let (false, Some(path)) = (changed.is_empty(), &reload.config) {
        tracing::warn!(
            "SIGHUP: {} changed in {}: that takes a restart (policy and API token \
             are reloaded now)",
            changed.join(", "),
            path.display()
        );
    }
    let policy = Policy::load(&policy).map_err(|e| format!("policy: {e}"))?;
    let token = match token_file {
        Some(f) => Some(crate::config::read_token(&f).map_err(|e| format!("API token: {e}"))?),
        None => None,
    };
    Ok((policy, token))
}
