//! RPKI: validated payloads (VRPs, ASPAs), where they come from, and route origin
//! validation (RFC 6811) over a covering-prefix index.

pub mod aspa;
pub mod cache;
pub mod index;
pub mod rov;
pub mod rtr;
pub mod signed;
pub mod slurm;
pub mod sources;
pub mod vrps;

pub use aspa::{AspaSet, AspaState, AspaVerdict};
pub use index::{Cover, VrpIndex};
pub use rov::{validate, validate_in, InvalidReason, RovState};
pub use vrps::{Aspa, LoadOptions, Vrp, VrpFormat, VrpSet};

/// A VRP index or ASPA set as the judging code holds it: borrowed for the length of a
/// replay, or shared, so that the daemon can swap in a new one when its RPKI source
/// changes ([`crate::judge::Judge::set_rpki`]).
#[derive(Debug)]
pub enum RpkiRef<'a, T> {
    Borrowed(&'a T),
    Shared(std::sync::Arc<T>),
}

impl<T> Clone for RpkiRef<'_, T> {
    fn clone(&self) -> Self {
        match self {
            RpkiRef::Borrowed(r) => RpkiRef::Borrowed(r),
            RpkiRef::Shared(a) => RpkiRef::Shared(a.clone()),
        }
    }
}

impl<T> std::ops::Deref for RpkiRef<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        match self {
            RpkiRef::Borrowed(r) => r,
            RpkiRef::Shared(a) => a,
        }
    }
}

impl<'a, T> From<&'a T> for RpkiRef<'a, T> {
    fn from(r: &'a T) -> Self {
        RpkiRef::Borrowed(r)
    }
}

impl<T> From<std::sync::Arc<T>> for RpkiRef<'_, T> {
    fn from(a: std::sync::Arc<T>) -> Self {
        RpkiRef::Shared(a)
    }
}
