//! Acting on routers through interfaces they already have.
//!
//! - [`rtr_server`]: routewitness as the routers' RPKI cache (RFC 8210), serving the VRPs
//!   it validates with and, on a second endpoint, its quarantine as VRPs;
//! - [`quarantine`]: what that second endpoint serves, from the judge's decisions, within
//!   the caps that stop an automatic actor;
//! - [`router_config`]: the router configuration that takes those feeds;
//! - [`bird`], [`verify`]: BIRD's control socket, and each change verified there;
//! - [`frr`]: the quarantine applied on FRR through vtysh, and verified there;
//! - [`alerts`], [`outbox`], [`webhook`]: alerts to the NOC, their durable delivery, and
//!   their Standard Webhooks signatures (ed25519 `v1a`, HMAC `v1`).

pub mod alerts;
pub mod bird;
pub mod frr;
pub mod outbox;
pub mod quarantine;
pub mod router_config;
pub mod rtr_server;
pub mod verify;
pub mod webhook;

use ipnet::IpNet;
use serde::Serialize;

/// One action on a router, or its verification: a row of the audit log (`GET
/// /v1/actions`, the `actions` table of the state).
/// What came of an action on a router (`result` in the audit log and the metrics).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActionResult {
    /// In the feed the router takes.
    Served,
    /// The router shows it done.
    Verified,
    /// The router has no such route.
    Absent,
    /// Still accepted after the timeout: an alert.
    Unverified,
    /// A release the router still filters, by its own policy.
    StillFiltered,
    /// Done (a reload).
    Done,
    /// Could not be done: an alert.
    Failed,
}

impl ActionResult {
    /// The name in the audit log and the metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionResult::Served => "served",
            ActionResult::Verified => "verified",
            ActionResult::Absent => "absent",
            ActionResult::Unverified => "unverified",
            ActionResult::StillFiltered => "still-filtered",
            ActionResult::Done => "done",
            ActionResult::Failed => "failed",
        }
    }

    /// Unverified or failed: the operator must hear of it.
    pub fn is_failure(self) -> bool {
        matches!(self, ActionResult::Unverified | ActionResult::Failed)
    }
}

impl std::fmt::Display for ActionResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ActionRecord {
    /// Position in the log, from 1 (set when it is written).
    pub seq: u64,
    /// When (wall clock, RFC 3339).
    pub time: String,
    /// Where: `rtr:quarantine` (the feed), `bird:NAME`.
    pub target: String,
    /// `quarantine`, `release`, `reload-in`.
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<IpNet>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<u32>,
    /// The quarantine feed's serial that carried it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<u32>,
    /// What came of it.
    pub result: ActionResult,
    /// From the change entering the feed to the result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

impl ActionRecord {
    pub fn new(target: &str, action: &str, result: ActionResult) -> ActionRecord {
        ActionRecord {
            seq: 0,
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            target: target.to_string(),
            action: action.to_string(),
            prefix: None,
            origin: None,
            serial: None,
            result,
            latency_ms: None,
            detail: String::new(),
        }
    }

    /// About the claim `key` (a quarantine feed entry) carried by `serial`.
    pub fn claim(mut self, key: rtr_server::VrpKey, serial: u32) -> ActionRecord {
        self.prefix = Some(key.0);
        self.origin = Some(key.2);
        self.serial = Some(serial);
        self
    }
}
