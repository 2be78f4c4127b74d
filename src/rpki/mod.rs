//! RPKI: validated payloads (VRPs, ASPAs), where they come from, and route origin
//! validation (RFC 6811) over a covering-prefix index.

pub mod aspa;
pub mod index;
pub mod rov;
pub mod rtr;
pub mod vrps;

pub use aspa::{AspaSet, AspaState, AspaVerdict};
pub use index::{Cover, VrpIndex};
pub use rov::{validate, validate_in, InvalidReason, RovState};
pub use vrps::{Aspa, LoadOptions, Vrp, VrpFormat, VrpSet};
