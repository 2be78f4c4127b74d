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

/// One alert.
#[derive(Clone, Debug, Serialize)]
pub struct Alert {
    /// Its id (the `webhook-id`, the receivers' idempotency key).
    #[serde(skip)]
    pub id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
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
    pub fn new(
        kind: &'static str,
        severity: Severity,
        key: String,
        data: serde_json::Value,
    ) -> Alert {
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

    /// The alert a decision raises, if any: holds and their ends.
    pub fn of_decision(d: &Decision) -> Option<Alert> {
        let (was, is) = (d.previous.is_held(), d.outcome.is_held());
        let rules: Vec<&str> = d.reasons.iter().map(|r| r.rule.as_ref()).collect();
        let (kind, severity) = if is && !was {
            if rules.iter().any(|r| r.starts_with("conflicts.")) {
                ("hijack.suspected", Severity::Critical)
            } else if rules.iter().any(|r| r.starts_with("aspa")) {
                ("route.leak", Severity::Warning)
            } else if rules.iter().any(|r| r.starts_with("rpki.")) {
                ("rpki.invalid", Severity::Warning)
            } else {
                ("quarantine.entered", Severity::Info)
            }
        } else if was && !is {
            if d.outcome == Outcome::Withdrawn {
                ("quarantine.expired", Severity::Info)
            } else {
                ("quarantine.released", Severity::Info)
            }
        } else {
            return None;
        };
        let origin = d
            .origin
            .map_or_else(|| "AS_SET".to_string(), |o| o.0.to_string());
        let mut data = serde_json::to_value(d).unwrap_or_default();
        if let Some(m) = data.as_object_mut() {
            m.insert("summary".into(), d.explanation().into());
        }
        let mut a = Alert::new(
            kind,
            severity,
            format!("{kind}:{}:{origin}", d.prefix),
            data,
        );
        a.prefix = Some(d.prefix);
        Some(a)
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
        if self.seen.len() > 100_000 {
            let repeat = self.repeat;
            self.seen
                .retain(|_, (t, _)| now.duration_since(*t) < repeat);
        }
        match self.seen.get_mut(&a.key) {
            Some((t, n)) if now.duration_since(*t) < self.repeat => {
                *n += 1;
                self.suppressed += 1;
                false
            }
            Some((t, n)) => {
                if let Some(m) = a.data.as_object_mut() {
                    m.insert("updates".into(), (*n).into());
                }
                *t = now;
                *n = 0;
                true
            }
            None => {
                self.seen.insert(a.key.clone(), (now, 0));
                true
            }
        }
    }
}

/// The body for a destination's `format`: the generic JSON payload, or a chat message
/// (Slack and Mattermost take `{text}`, Microsoft Teams a MessageCard).
pub fn body(a: &Alert, format: &str) -> String {
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
        "slack" | "mattermost" => serde_json::json!({ "text": title }).to_string(),
        "teams" => serde_json::json!({
            "@type": "MessageCard",
            "@context": "https://schema.org/extensions",
            "summary": format!("routewitness {}", a.kind),
            "title": format!("routewitness {}", a.kind),
            "text": line,
        })
        .to_string(),
        _ => serde_json::to_string(a).unwrap_or_default(),
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
                "hijack.suspected",
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
            "route.leak",
            Severity::Warning,
            "k".into(),
            serde_json::json!({"summary": "1.2.3.0/24 AS1 held: ASPA invalid"}),
        );
        let slack: serde_json::Value = serde_json::from_str(&body(&a, "slack")).unwrap();
        assert!(slack["text"]
            .as_str()
            .unwrap()
            .contains("route.leak (warning): 1.2.3.0/24"));
        let teams: serde_json::Value = serde_json::from_str(&body(&a, "teams")).unwrap();
        assert_eq!(teams["@type"], "MessageCard");
        let json: serde_json::Value = serde_json::from_str(&body(&a, "json")).unwrap();
        assert_eq!(json["type"], "route.leak");
        assert!(json["timestamp"].is_string() && json["data"].is_object());
    }
}
