//! Route origin validation exactly as RFC 6811 §2.
//!
//! - A VRP *covers* a route when its prefix contains the route's prefix.
//! - A covering VRP *matches* when the route's origin is not NONE, equals the VRP's AS,
//!   and the route's prefix length is at most the VRP's maxLength. An AS0 VRP never
//!   matches (RFC 6483 §4, RFC 7607).
//! - Valid: some VRP matches. Invalid: VRPs cover it but none matches. NotFound: none covers.
//!
//! Invalid is split the way operators read it (and Routinator reports it): `TooLong` when
//! a covering VRP carries the route's origin AS but a shorter maxLength, `WrongOrigin`
//! otherwise (including routes whose origin is NONE because the path ends in an AS_SET).
//!
//! VRPs carry an expiry; it is judged against the *event time* of the route, so replaying
//! 2014 routes against a 2025 snapshot does not expire everything. `at = None` ignores
//! expiry altogether.

use super::index::{Cover, VrpIndex};
use crate::model::Asn;
use ipnet::IpNet;
use serde::Serialize;
use std::fmt;

/// Why a route is RPKI-invalid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum InvalidReason {
    /// No covering VRP authorises the origin AS.
    WrongOrigin,
    /// A covering VRP authorises the origin AS, but not for a prefix this long.
    TooLong,
}

/// The RFC 6811 validation state of a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RovState {
    Valid,
    Invalid(InvalidReason),
    NotFound,
}

impl RovState {
    /// `valid`, `invalid`, `not-found`.
    pub fn name(self) -> &'static str {
        match self {
            RovState::Valid => "valid",
            RovState::Invalid(_) => "invalid",
            RovState::NotFound => "not-found",
        }
    }
    pub fn reason(self) -> Option<InvalidReason> {
        match self {
            RovState::Invalid(r) => Some(r),
            _ => None,
        }
    }
    /// Dense index for counters: valid, wrong-origin, too-long, not-found.
    pub fn slot(self) -> usize {
        match self {
            RovState::Valid => 0,
            RovState::Invalid(InvalidReason::WrongOrigin) => 1,
            RovState::Invalid(InvalidReason::TooLong) => 2,
            RovState::NotFound => 3,
        }
    }
    pub const SLOTS: [RovState; 4] = [
        RovState::Valid,
        RovState::Invalid(InvalidReason::WrongOrigin),
        RovState::Invalid(InvalidReason::TooLong),
        RovState::NotFound,
    ];
    /// The counter label of [`Self::slot`].
    pub fn label(self) -> &'static str {
        match self {
            RovState::Valid => "valid",
            RovState::Invalid(InvalidReason::WrongOrigin) => "invalid (wrong origin)",
            RovState::Invalid(InvalidReason::TooLong) => "invalid (too long)",
            RovState::NotFound => "not-found",
        }
    }
}

impl fmt::Display for RovState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Validates one route. `origin` is the RFC 6811 route origin (`None` = NONE);
/// `at` is the event time in Unix seconds (VRPs that expired before it do not count),
/// or `None` to ignore expiry.
#[inline]
pub fn validate(
    index: &VrpIndex,
    prefix: &IpNet,
    origin: Option<Asn>,
    at: Option<i64>,
) -> RovState {
    validate_in(index, index.cover(prefix), prefix.prefix_len(), origin, at)
}

/// [`validate`] for a prefix of length `len` whose [`Cover`] is already known.
#[inline]
pub fn validate_in(
    index: &VrpIndex,
    cover: Cover,
    len: u8,
    origin: Option<Asn>,
    at: Option<i64>,
) -> RovState {
    let mut covered = false;
    let mut valid = false;
    let mut origin_listed = false;
    index.for_each_in_cover(cover, |_, p| {
        if let Some(t) = at {
            if p.expires < t {
                return;
            }
        }
        covered = true;
        if p.asn != Asn::ZERO && Some(p.asn) == origin {
            if len <= p.max_length {
                valid = true;
            } else {
                origin_listed = true;
            }
        }
    });
    if valid {
        RovState::Valid
    } else if !covered {
        RovState::NotFound
    } else if origin_listed {
        RovState::Invalid(InvalidReason::TooLong)
    } else {
        RovState::Invalid(InvalidReason::WrongOrigin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpki::vrps::Vrp;

    fn vrp(p: &str, max: u8, asn: u32, expires: Option<i64>) -> Vrp {
        Vrp {
            prefix: p.parse().unwrap(),
            max_length: max,
            asn: Asn(asn),
            ta: None,
            expires,
        }
    }

    fn check(idx: &VrpIndex, p: &str, origin: Option<u32>, at: Option<i64>) -> RovState {
        validate(idx, &p.parse().unwrap(), origin.map(Asn), at)
    }

    fn index() -> VrpIndex {
        VrpIndex::from_vrps(vec![
            vrp("192.0.2.0/24", 24, 64500, None),
            vrp("198.51.100.0/22", 23, 64501, None),
            vrp("198.51.100.0/24", 24, 64502, None),
            vrp("203.0.113.0/24", 24, 0, None),
            vrp("2001:db8::/32", 48, 64503, None),
            vrp("2001:db8:ffff::/48", 48, 64504, None),
            vrp("100.64.0.0/16", 16, 64505, Some(1_000)),
        ])
    }

    use InvalidReason::*;
    use RovState::*;

    #[test]
    fn valid_exact_and_within_max_length() {
        let idx = index();
        assert_eq!(check(&idx, "192.0.2.0/24", Some(64500), None), Valid);
        assert_eq!(check(&idx, "198.51.102.0/23", Some(64501), None), Valid);
        assert_eq!(check(&idx, "2001:db8:1::/48", Some(64503), None), Valid);
    }

    #[test]
    fn max_length_edge() {
        let idx = index();
        assert_eq!(check(&idx, "198.51.100.0/23", Some(64501), None), Valid);
        assert_eq!(
            check(&idx, "198.51.101.0/24", Some(64501), None),
            Invalid(TooLong)
        );
        assert_eq!(
            check(&idx, "2001:db8:1::/49", Some(64503), None),
            Invalid(TooLong)
        );
    }

    #[test]
    fn wrong_origin_and_uncovered() {
        let idx = index();
        assert_eq!(
            check(&idx, "192.0.2.0/24", Some(64999), None),
            Invalid(WrongOrigin)
        );
        assert_eq!(check(&idx, "192.0.3.0/24", Some(64500), None), NotFound);
        // covering but not matching: a /16 around the /24 VRP covers nothing
        assert_eq!(check(&idx, "192.0.0.0/16", Some(64500), None), NotFound);
        assert_eq!(check(&idx, "2001:db9::/32", Some(64503), None), NotFound);
    }

    #[test]
    fn several_covering_vrps_any_match_wins() {
        let idx = index();
        // 198.51.100.0/24 is covered by the /22 (AS64501, max 23) and the /24 (AS64502)
        assert_eq!(check(&idx, "198.51.100.0/24", Some(64502), None), Valid);
        assert_eq!(
            check(&idx, "198.51.100.0/24", Some(64501), None),
            Invalid(TooLong)
        );
        assert_eq!(
            check(&idx, "198.51.100.0/24", Some(7), None),
            Invalid(WrongOrigin)
        );
        assert_eq!(check(&idx, "2001:db8:ffff::/48", Some(64503), None), Valid);
    }

    #[test]
    fn as_set_origin_never_matches() {
        let idx = index();
        assert_eq!(
            check(&idx, "192.0.2.0/24", None, None),
            Invalid(WrongOrigin)
        );
        assert_eq!(check(&idx, "192.0.3.0/24", None, None), NotFound);
    }

    #[test]
    fn as0_vrp_covers_but_never_matches() {
        let idx = index();
        assert_eq!(
            check(&idx, "203.0.113.0/24", Some(0), None),
            Invalid(WrongOrigin)
        );
        assert_eq!(
            check(&idx, "203.0.113.0/24", Some(64500), None),
            Invalid(WrongOrigin)
        );
    }

    #[test]
    fn expiry_is_judged_at_event_time() {
        let idx = index();
        assert_eq!(check(&idx, "100.64.0.0/16", Some(64505), Some(999)), Valid);
        assert_eq!(
            check(&idx, "100.64.0.0/16", Some(64505), Some(1_000)),
            Valid
        );
        assert_eq!(
            check(&idx, "100.64.0.0/16", Some(64505), Some(1_001)),
            NotFound
        );
        assert_eq!(check(&idx, "100.64.0.0/16", Some(1), Some(1_001)), NotFound);
        assert_eq!(check(&idx, "100.64.0.0/16", Some(64505), None), Valid);
    }
}
