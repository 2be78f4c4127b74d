//! Alerts to the NOC: what routewitness saw and did, each explaining itself, deduplicated
//! per claim so one flapping hijack is one alert with updates, not a thousand.
//!
//! Types (the `type` of the payload): `hijack.suspected` (an origin or sub-prefix
//! conflict, or a squat), `route.leak` (an ASPA-invalid path), `rpki.invalid` (a route
//! held for its RPKI state), `quarantine.entered` (held by any other rule or an
//! operator), `quarantine.released`, `quarantine.expired` (the held route withdrawn),
//! `rpki.sudden_loss`, `action.failed` (a router did not do what was asked, or could not
//! be asked), `bmp.session_lost`. Severities: `critical`, `warning`, `info`.
//!
//! The payload is Standard Webhooks' `{type, timestamp, data}`; `data` carries the
//! decision as the decision log has it (prefix, origin, path, peer, every reason with
//! its VRPs / witnesses / rule, the policy hash), a one-line `summary`, and `updates`:
//! how many more times the same thing happened since the last alert of its key.

use crate::judge::{Decision, Outcome};
use ipnet::IpNet;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    #[default]
    Info,
    Warning,
    Critical,
}

/// The type of an alert (`type` in its payload, `types` in a webhook's configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub enum AlertKind {
    /// A new origin or more-specific conflicting with the holder of the space is held.
    #[serde(rename = "hijack.suspected")]
    HijackSuspected,
    /// A route held for its ASPA verification (a leak).
    #[serde(rename = "route.leak")]
    RouteLeak,
    /// A route held as RPKI-invalid.
    #[serde(rename = "rpki.invalid")]
    RpkiInvalid,
    /// A route held for another rule.
    #[serde(rename = "quarantine.entered")]
    QuarantineEntered,
    /// A held route withdrawn.
    #[serde(rename = "quarantine.expired")]
    QuarantineExpired,
    /// A held route released.
    #[serde(rename = "quarantine.released")]
    QuarantineReleased,
    /// An action on a router failed or could not be verified.
    #[serde(rename = "action.failed")]
    ActionFailed,
    /// A router's BMP session ended.
    #[serde(rename = "bmp.session_lost")]
    BmpSessionLost,
    /// A peer fell below the trust floor.
    #[serde(rename = "peer.trust_low")]
    PeerTrustLow,
    /// A BMP peer or monitored router reached its max-prefix warning or limit, or went
    /// back under it.
    #[serde(rename = "peer.max_prefix")]
    PeerMaxPrefix,
    /// The state file cannot be written (critical), or can again (info).
    #[serde(rename = "state.degraded")]
    StateDegraded,
    /// An RTR cache's data expired.
    #[serde(rename = "rpki.expired")]
    RpkiExpired,
    /// An RPKI source disagrees with the others.
    #[serde(rename = "rpki.source_disagrees")]
    RpkiSourceDisagrees,
    /// A sudden loss of VRPs is held off.
    #[serde(rename = "rpki.sudden_loss")]
    RpkiSuddenLoss,
}

impl AlertKind {
    /// Every type, in the order of the docs.
    pub const ALL: [AlertKind; 14] = [
        AlertKind::HijackSuspected,
        AlertKind::RouteLeak,
        AlertKind::RpkiInvalid,
        AlertKind::QuarantineEntered,
        AlertKind::QuarantineExpired,
        AlertKind::QuarantineReleased,
        AlertKind::ActionFailed,
        AlertKind::BmpSessionLost,
        AlertKind::PeerTrustLow,
        AlertKind::PeerMaxPrefix,
        AlertKind::StateDegraded,
        AlertKind::RpkiExpired,
        AlertKind::RpkiSourceDisagrees,
        AlertKind::RpkiSuddenLoss,
    ];

    /// The type's name (`hijack.suspected`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::HijackSuspected => "hijack.suspected",
            AlertKind::RouteLeak => "route.leak",
            AlertKind::RpkiInvalid => "rpki.invalid",
            AlertKind::QuarantineEntered => "quarantine.entered",
            AlertKind::QuarantineExpired => "quarantine.expired",
            AlertKind::QuarantineReleased => "quarantine.released",
            AlertKind::ActionFailed => "action.failed",
            AlertKind::BmpSessionLost => "bmp.session_lost",
            AlertKind::PeerTrustLow => "peer.trust_low",
            AlertKind::PeerMaxPrefix => "peer.max_prefix",
            AlertKind::StateDegraded => "state.degraded",
            AlertKind::RpkiExpired => "rpki.expired",
            AlertKind::RpkiSourceDisagrees => "rpki.source_disagrees",
            AlertKind::RpkiSuddenLoss => "rpki.sudden_loss",
        }
    }
}

impl std::fmt::Display for AlertKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One alert.
#[derive(Clone, Debug, Serialize)]
pub struct Alert {
    /// Its id (the `webhook-id`, the receivers' idempotency key).
    #[serde(skip)]
    pub id: String,
    #[serde(rename = "type")]
    pub kind: AlertKind,
    #[serde(skip)]
    pub severity: Severity,
    pub timestamp: String,
    pub data: serde_json::Value,
    /// What deduplicates it (type and claim, or type and subject).
    #[serde(skip)]
    pub key: String,
    #[serde(skip)]
    pub prefix: Option<IpNet>,
}

fn now_text() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Alert {
    pub fn new(kind: AlertKind, severity: Severity, key: String, data: serde_json::Value) -> Alert {
        Alert {
            id: String::new(),
            kind,
            severity,
            timestamp: now_text(),
            data,
            key,
            prefix: None,
        }
    }

    /// The alert a decision raises, if any (holds and their ends): its type, severity
    /// and dedupe key, without building its payload (cheap: most are deduplicated).
    pub fn classify(d: &Decision) -> Option<(AlertKind, Severity, String)> {
        let (was, is) = (d.previous.is_held(), d.outcome.is_held());
        let has = |p: &str| d.reasons.iter().any(|r| r.rule.starts_with(p));
        let (kind, severity) = if is && !was {
            if has("conflicts.") {
                (AlertKind::HijackSuspected, Severity::Critical)
            } else if has("aspa") {
                (AlertKind::RouteLeak, Severity::Warning)
            } else if has("rpki.") {
                (AlertKind::RpkiInvalid, Severity::Warning)
            } else {
                (AlertKind::QuarantineEntered, Severity::Info)
            }
        } else if was && !is {
            if d.outcome == Outcome::Withdrawn {
                (AlertKind::QuarantineExpired, Severity::Info)
            } else {
                (AlertKind::QuarantineReleased, Severity::Info)
            }
        } else {
            return None;
        };
        let origin = d
            .origin
            .map_or_else(|| "AS_SET".to_string(), |o| o.0.to_string());
        Some((kind, severity, format!("{kind}:{}:{origin}", d.prefix)))
    }

    /// Says how many times the same happened since the last alert of its key (when
    /// any did).
    pub fn set_updates(&mut self, updates: u64) {
        if updates > 0 {
            if let Some(m) = self.data.as_object_mut() {
                m.insert("updates".into(), updates.into());
            }
        }
    }

    /// The alert of a decision that [`Self::classify`] gave `kind`, `severity`, `key`.
    pub fn of_decision(
        d: &Decision,
        (kind, severity, key): (AlertKind, Severity, String),
    ) -> Alert {
        let mut data = serde_json::to_value(d).unwrap_or_default();
        if let Some(m) = data.as_object_mut() {
            m.insert("summary".into(), d.explanation().into());
        }
        let mut a = Alert::new(kind, severity, key, data);
        a.prefix = Some(d.prefix);
        a
    }
}

/// Deduplication: an alert of a key already sent within `repeat` is not sent again; it
/// is counted, and the next one sent carries the count (`data.updates`).
#[derive(Debug)]
pub struct Dedupe {
    repeat: Duration,
    seen: FxHashMap<String, (Instant, u64)>,
    pub suppressed: u64,
}

impl Dedupe {
    pub fn new(repeat: Duration) -> Dedupe {
        Dedupe {
            repeat,
            seen: FxHashMap::default(),
            suppressed: 0,
        }
    }

    /// Whether `a` goes out now (its `updates` set); `now` is passed in.
    pub fn admit(&mut self, a: &mut Alert, now: Instant) -> bool {
        match self.admit_key(&a.key, now) {
            Some(updates) => {
                a.set_updates(updates);
                true
            }
            None => false,
        }
    }

    /// Whether an alert of `key` goes out now: `Some(times suppressed since the last)`.
    pub fn admit_key(&mut self, key: &str, now: Instant) -> Option<u64> {
        if self.seen.len() > 100_000 {
            let repeat = self.repeat;
            self.seen
                .retain(|_, (t, _)| now.duration_since(*t) < repeat);
        }
        match self.seen.get_mut(key) {
            Some((t, n)) if now.duration_since(*t) < self.repeat => {
                *n += 1;
                self.suppressed += 1;
                None
            }
            Some((t, n)) => {
                let updates = *n;
                *t = now;
                *n = 0;
                Some(updates)
            }
            None => {
                self.seen.insert(key.to_string(), (now, 0));
                Some(0)
            }
        }
    }
}

/// What a webhook destination takes (`format` in `[[alerts.webhook]]`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// The Standard Webhooks payload (the alert as JSON).
    #[default]
    Json,
    /// A chat message: `{text}`.
    Slack,
    /// As Slack.
    Mattermost,
    /// A Microsoft Teams MessageCard.
    Teams,
}

/// The body for a destination's `format`: the generic JSON payload, or a chat message
/// (Slack and Mattermost take `{text}`, Microsoft Teams a MessageCard).
pub fn body(a: &Alert, format: WebhookFormat) -> String {
    let line = a
        .data
        .get("summary")
        .and_then(|s| s.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| a.data.to_string());
    let title = format!(
        "routewitness {} ({}): {line}",
        a.kind,
        match a.severity {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    );
    match format {
        WebhookFormat::Slack | WebhookFormat::Mattermost => {
            serde_json::json!({ "text": title }).to_string()
        }
        WebhookFormat::Teams => serde_json::json!({
            "@type": "MessageCard",
            "@context": "https://schema.org/extensions",
            "summary": format!("routewitness {}", a.kind),
            "title": format!("routewitness {}", a.kind),
            "text": line,
        })
        .to_string(),
        WebhookFormat::Json => serde_json::to_string(a).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_alert_per_key_and_repeat_with_its_count() {
        let mut d = Dedupe::new(Duration::from_secs(60));
        let t = Instant::now();
        let mk = || {
            Alert::new(
                crate::act::alerts::AlertKind::HijackSuspected,
                Severity::Critical,
                "k".into(),
                serde_json::json!({}),
            )
        };
        let mut a = mk();
        assert!(d.admit(&mut a, t));
        for _ in 0..5 {
            assert!(!d.admit(&mut mk(), t + Duration::from_secs(1)));
        }
        let mut later = mk();
        assert!(d.admit(&mut later, t + Duration::from_secs(61)));
        assert_eq!(later.data["updates"], 5);
        assert_eq!(d.suppressed, 5);
    }

    #[test]
    fn chat_formats_carry_the_summary() {
        let a = Alert::new(
            crate::act::alerts::AlertKind::RouteLeak,
            Severity::Warning,
            "k".into(),
            serde_json::json!({"summary": "1.2.3.0/24 AS1 held: ASPA invalid"}),
        );
        let slack: serde_json::Value =
            serde_json::from_str(&body(&a, WebhookFormat::Slack)).unwrap();
        assert!(slack["text"]
            .as_str()
            .unwrap()
            .contains("route.leak (warning): 1.2.3.0/24"));
        let teams: serde_json::Value =
            serde_json::from_str(&body(&a, WebhookFormat::Teams)).unwrap();
        assert_eq!(teams["@type"], "MessageCard");
        let json: serde_json::Value = serde_json::from_str(&body(&a, WebhookFormat::Json)).unwrap();
        assert_eq!(json["type"], "route.leak");
        assert!(json["timestamp"].is_string() && json["data"].is_object());
    }
}
