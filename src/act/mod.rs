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
    /// `served` (in the feed), `verified` (the router shows it done), `absent` (the
    /// router has no such route), `unverified` (still accepted after the timeout),
    /// `still-filtered` (a release the router still filters, by its own policy), `done`,
    /// `failed`.
    pub result: String,
    /// From the change entering the feed to the result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

impl ActionRecord {
    pub fn new(target: &str, action: &str, result: &str) -> ActionRecord {
        ActionRecord {
            seq: 0,
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            target: target.to_string(),
            action: action.to_string(),
            prefix: None,
            origin: None,
            serial: None,
            result: result.to_string(),
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
