//! Acting on routers through interfaces they already have.
//!
//! - [`rtr_server`]: routewitness as the routers' RPKI cache (RFC 8210), serving the VRPs
//!   it validates with and, on a second endpoint, its quarantine as VRPs;
//! - [`quarantine`]: what that second endpoint serves, from the judge's decisions, within
//!   the caps that stop an automatic actor.

pub mod quarantine;
pub mod rtr_server;
