//! Acting on routers through interfaces they already have.
//!
//! - [`rtr_server`]: routewitness as the routers' RPKI cache (RFC 8210), serving the VRPs
//!   it validates with and, on a second endpoint, its quarantine as VRPs;
//! - [`quarantine`]: what that second endpoint serves, from the judge's decisions, within
//!   the caps that stop an automatic actor;
//! - [`router_config`]: the router configuration that takes those feeds.

pub mod quarantine;
pub mod router_config;
pub mod rtr_server;
