//! ASPA path verification (draft-ietf-sidrops-aspa-verification): upstream verification
//! for routes from customers, lateral peers and route servers, downstream verification for
//! routes from providers.
//!
//! Notation as in the draft: AS(1) is the origin, AS(N) the neighbour that sent the route.
//! `hop(x, y)` asks whether y is an authorised provider of x: *Provider+* (x has an ASPA
//! that lists y), *Not Provider+* (x has an ASPA, y is not in it) or *No Attestation* (x has
//! no ASPA). Prepends are collapsed first; a path with an AS_SET is Invalid (the draft's
//! first step). The check that AS(N) is the sending peer's AS is left out: collectors see
//! route servers that do not prepend, and a peer's AS is checked elsewhere.
//!
//! Two kinds of path, kept apart because they mean different things:
//! - **Received from a neighbour** ([`AspaSet::verify`]: a collector's peers, a router's
//!   Adj-RIB-In). An empty AS_PATH is **Invalid**: an eBGP neighbour always prepends its
//!   own AS (RFC 4271 §5.1.2), so an empty path from one is a route nobody can vouch for,
//!   as the draft, BIRD and OpenBGPD say. A path with confederation segments is Invalid
//!   too (BIRD's reading): they never leave a confederation (RFC 5065 §5), so one from a
//!   neighbour is malformed.
//! - **Selected by the router itself** ([`AspaSet::verify_selected`]: BMP Loc-RIB, RFC
//!   9069). An empty path there is the router's own route (a static or connected network
//!   it originates): there is no hop to verify, so it is Valid; confederation segments are
//!   the router's own confederation's and are dropped.
//!
//! rtrlib and rustbgpd answer Valid for an empty path in either case; `tests/aspa_vectors.rs`
//! runs the test vectors of BIRD, OpenBGPD, rtrlib, bgpfix, rustbgpd and APNIC's demo and
//! records that one difference.

use crate::model::{AsPath, Asn, SegmentKind};
use crate::rpki::vrps::{Aspa, AspaAfi};
use rustc_hash::FxHashMap;
use serde::Serialize;

/// The answer for one hop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hop {
    ProviderPlus,
    NotProviderPlus,
    NoAttestation,
}

/// The outcome of a path verification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AspaState {
    Valid,
    Unknown,
    Invalid,
}

/// Which procedure to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Upstream,
    Downstream,
}

/// The verdict and, for Invalid, the hop that broke it: `customer`'s ASPA does not list
/// `provider` (`None` for a path with an AS_SET).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct AspaVerdict {
    pub state: AspaState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bad_hop: Option<(Asn, Asn)>,
}

struct Entry {
    providers: Box<[u32]>,
    afi: Option<AspaAfi>,
    expires: Option<i64>,
}

/// The ASPA payloads, by customer AS.
#[derive(Default)]
pub struct AspaSet {
    by_customer: FxHashMap<u32, Vec<Entry>>,
    /// One bit per `customer % 2^16` with an ASPA: most ASNs on most paths have none, and
    /// these 8 KiB answer that from L1 rather than hashing each hop (sampled on the 4.6 M
    /// event update bench: the judge's path checks went from 0.068 to 0.056 s).
    maybe: Vec<u64>,
}

impl AspaSet {
    pub fn new(aspas: &[Aspa]) -> Self {
        let mut by_customer: FxHashMap<u32, Vec<Entry>> = FxHashMap::default();
        for a in aspas {
            let mut providers: Vec<u32> = a.providers.iter().map(|p| p.0).collect();
            providers.sort_unstable();
            providers.dedup();
            by_customer.entry(a.customer.0).or_default().push(Entry {
                providers: providers.into_boxed_slice(),
                afi: a.afi,
                expires: a.expires,
            });
        }
        let mut maybe = vec![0u64; 1024];
        for c in by_customer.keys() {
            let b = (c & 0xffff) as usize;
            maybe[b / 64] |= 1 << (b % 64);
        }
        AspaSet { by_customer, maybe }
    }

    /// Has `customer` an ASPA?
    #[inline]
    fn attested(&self, customer: u32) -> bool {
        let b = (customer & 0xffff) as usize;
        self.maybe
            .get(b / 64)
            .is_some_and(|w| w & (1 << (b % 64)) != 0)
            && self.by_customer.contains_key(&customer)
    }

    pub fn len(&self) -> usize {
        self.by_customer.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_customer.is_empty()
    }

    /// Is `provider` an authorised provider of `customer`, for `afi`, at time `at` (Unix
    /// seconds; `None`: ignore expiry)?
    pub fn hop(&self, customer: u32, provider: u32, afi: AspaAfi, at: Option<i64>) -> Hop {
        let Some(entries) = self.by_customer.get(&customer) else {
            return Hop::NoAttestation;
        };
        let mut attested = false;
        for e in entries {
            if e.afi.is_some_and(|f| f != afi)
                || at.is_some_and(|t| e.expires.is_some_and(|x| x < t))
            {
                continue;
            }
            attested = true;
            if e.providers.binary_search(&provider).is_ok() {
                return Hop::ProviderPlus;
            }
        }
        if attested {
            Hop::NotProviderPlus
        } else {
            Hop::NoAttestation
        }
    }

    /// Verifies `path` as received from a neighbour over a session of the given direction.
    pub fn verify(
        &self,
        path: &AsPath,
        direction: Direction,
        afi: AspaAfi,
        at: Option<i64>,
    ) -> AspaVerdict {
        self.verify_path(path, direction, afi, at, false)
    }

    /// Verifies `path` as the router itself selected it (its Loc-RIB): an empty path is
    /// its own route, confederation segments are its own confederation's (module docs).
    pub fn verify_selected(
        &self,
        path: &AsPath,
        direction: Direction,
        afi: AspaAfi,
        at: Option<i64>,
    ) -> AspaVerdict {
        self.verify_path(path, direction, afi, at, true)
    }

    fn verify_path(
        &self,
        path: &AsPath,
        direction: Direction,
        afi: AspaAfi,
        at: Option<i64>,
        selected: bool,
    ) -> AspaVerdict {
        let valid = AspaVerdict {
            state: AspaState::Valid,
            bad_hop: None,
        };
        let invalid = AspaVerdict {
            state: AspaState::Invalid,
            bad_hop: None,
        };
        // Only a hop from an AS with an ASPA can be "Not Provider+": with none on the path
        // the answer is Valid or Unknown, found in one pass without copying the path. Most
        // paths have none (measured: ~0.1 s less CPU on the judging thread over the 4.6 M
        // event update bench).
        let mut attested = false;
        let mut distinct = 0usize;
        let mut last = None;
        for (kind, seg) in path.segments() {
            match kind {
                SegmentKind::Sequence => {
                    for a in seg {
                        if last != Some(*a) {
                            distinct += 1;
                            last = Some(*a);
                            attested |= self.attested(*a);
                        }
                    }
                }
                SegmentKind::Set => return invalid,
                SegmentKind::ConfedSequence | SegmentKind::ConfedSet if !selected => {
                    return invalid
                }
                SegmentKind::ConfedSequence | SegmentKind::ConfedSet => {}
            }
        }
        if distinct == 0 && !selected {
            return invalid;
        }
        let trivially_valid =
            distinct <= 1 || (direction == Direction::Downstream && distinct <= 2);
        if trivially_valid {
            return valid;
        }
        if !attested {
            return AspaVerdict {
                state: AspaState::Unknown,
                bad_hop: None,
            };
        }
        // AS(1) = origin first: reverse the path, collapse prepends.
        let mut asns: Vec<u32> = Vec::with_capacity(distinct);
        for (kind, seg) in path.segments() {
            if kind == SegmentKind::Sequence {
                asns.extend_from_slice(seg);
            }
        }
        asns.reverse();
        asns.dedup();
        let n = asns.len();
        let hop = |i: usize, j: usize| self.hop(asns[i], asns[j], afi, at);
        // Up ramp from the origin: AS(i+1) a provider of AS(i).
        let mut max_up = n;
        let mut min_up = n;
        let mut up_break = None;
        for i in 0..n - 1 {
            match hop(i, i + 1) {
                Hop::ProviderPlus => {}
                Hop::NoAttestation => min_up = min_up.min(i + 1),
                Hop::NotProviderPlus => {
                    min_up = min_up.min(i + 1);
                    max_up = i + 1;
                    up_break = Some((Asn(asns[i]), Asn(asns[i + 1])));
                    break;
                }
            }
        }
        if direction == Direction::Upstream {
            return if max_up < n {
                AspaVerdict {
                    state: AspaState::Invalid,
                    bad_hop: up_break,
                }
            } else if min_up < n {
                AspaVerdict {
                    state: AspaState::Unknown,
                    bad_hop: None,
                }
            } else {
                valid
            };
        }
        // Down ramp from the neighbour: AS(j-1) a provider of AS(j).
        let mut max_down = n;
        let mut min_down = n;
        let mut down_break = None;
        for j in (1..n).rev() {
            match hop(j, j - 1) {
                Hop::ProviderPlus => {}
                Hop::NoAttestation => min_down = min_down.min(n - j),
                Hop::NotProviderPlus => {
                    min_down = min_down.min(n - j);
                    max_down = n - j;
                    down_break = Some((Asn(asns[j]), Asn(asns[j - 1])));
                    break;
                }
            }
        }
        if max_up + max_down < n {
            AspaVerdict {
                state: AspaState::Invalid,
                bad_hop: up_break.or(down_break),
            }
        } else if min_up + min_down < n {
            AspaVerdict {
                state: AspaState::Unknown,
                bad_hop: None,
            }
        } else {
            valid
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(entries: &[(u32, &[u32])]) -> AspaSet {
        AspaSet::new(
            &entries
                .iter()
                .map(|(c, ps)| Aspa {
                    customer: Asn(*c),
                    providers: ps.iter().map(|p| Asn(*p)).collect(),
                    afi: None,
                    expires: None,
                })
                .collect::<Vec<_>>(),
        )
    }

    fn verify(s: &AspaSet, path: &[u32], d: Direction) -> AspaVerdict {
        // `path` as on the wire: neighbour first, origin last.
        s.verify(&AsPath::sequence(path), d, AspaAfi::Ipv4, None)
    }

    #[test]
    fn upstream_valid_unknown_invalid() {
        // 1 -> 2 -> 3 all attested: 2 provides for 1, 3 for 2.
        let s = set(&[(1, &[2]), (2, &[3]), (3, &[0])]);
        assert_eq!(
            verify(&s, &[3, 2, 1], Direction::Upstream).state,
            AspaState::Valid
        );
        assert_eq!(
            verify(&s, &[3, 3, 2, 1, 1], Direction::Upstream).state,
            AspaState::Valid
        );
        // 2 lists only 3 as its provider: sending to 4 is a leak.
        let v = verify(&s, &[4, 2, 1], Direction::Upstream);
        assert_eq!(
            (v.state, v.bad_hop),
            (AspaState::Invalid, Some((Asn(2), Asn(4))))
        );
        // 2 has no ASPA here: unknown, not invalid.
        let only_1 = set(&[(1, &[2])]);
        assert_eq!(
            verify(&only_1, &[3, 2, 1], Direction::Upstream).state,
            AspaState::Unknown
        );
        // No ASPA on the path at all: unknown (the early exit).
        assert_eq!(
            verify(&only_1, &[8, 9, 7], Direction::Upstream).state,
            AspaState::Unknown
        );
        // 1 sends to 5, which 1 does not list: a leak.
        let v = verify(&s, &[5, 1], Direction::Upstream);
        assert_eq!(
            (v.state, v.bad_hop),
            (AspaState::Invalid, Some((Asn(1), Asn(5))))
        );
        assert_eq!(
            verify(&s, &[1], Direction::Upstream).state,
            AspaState::Valid
        );
    }

    #[test]
    fn downstream_allows_one_peak_and_catches_a_valley() {
        // Up 1 -> 2 -> 3 (providers), then down 3 -> 4 -> 5 (5's provider is 4, 4's is 3).
        let s = set(&[(1, &[2]), (2, &[3]), (5, &[4]), (4, &[3])]);
        assert_eq!(
            verify(&s, &[5, 4, 3, 2, 1], Direction::Downstream).state,
            AspaState::Valid
        );
        // A valley: 1 -> 2 (up), then 2 leaks to 6 which is not its provider, 6 -> 5 down?
        // 2 lists only 3, and 5 lists only 4: up ramp stops at 2, down ramp stops at 5.
        let v = verify(&s, &[5, 6, 2, 1], Direction::Downstream);
        assert_eq!(v.state, AspaState::Invalid);
        assert_eq!(v.bad_hop, Some((Asn(2), Asn(6))));
        // Paths of two ASes are always valid downstream.
        assert_eq!(
            verify(&s, &[9, 1], Direction::Downstream).state,
            AspaState::Valid
        );
        // Without attestations in the middle: unknown, not invalid.
        let s = set(&[(1, &[2])]);
        assert_eq!(
            verify(&s, &[7, 8, 2, 1], Direction::Downstream).state,
            AspaState::Unknown
        );
    }

    #[test]
    fn as_set_is_invalid_and_afi_and_expiry_apply() {
        let s = set(&[(1, &[2])]);
        let p = AsPath::from_segments([
            (SegmentKind::Sequence, &[2u32][..]),
            (SegmentKind::Set, &[1u32, 7][..]),
        ]);
        assert_eq!(
            s.verify(&p, Direction::Upstream, AspaAfi::Ipv4, None).state,
            AspaState::Invalid
        );
        let s = AspaSet::new(&[Aspa {
            customer: Asn(1),
            providers: vec![Asn(2)],
            afi: Some(AspaAfi::Ipv6),
            expires: Some(100),
        }]);
        assert_eq!(s.hop(1, 3, AspaAfi::Ipv4, None), Hop::NoAttestation);
        assert_eq!(s.hop(1, 3, AspaAfi::Ipv6, Some(50)), Hop::NotProviderPlus);
        assert_eq!(s.hop(1, 3, AspaAfi::Ipv6, Some(150)), Hop::NoAttestation);
        assert_eq!(s.hop(1, 2, AspaAfi::Ipv6, None), Hop::ProviderPlus);
    }

    /// The draft's procedure written out plainly (ramps computed hop by hop), against
    /// which the optimised `verify` (early exits) must agree on every path.
    fn reference(s: &AspaSet, path: &[u32], d: Direction) -> AspaState {
        let mut asns: Vec<u32> = path.iter().rev().copied().collect();
        asns.dedup();
        let n = asns.len();
        if n == 0 {
            // An empty path from a neighbour (module docs).
            return AspaState::Invalid;
        }
        let hop = |x: u32, y: u32| s.hop(x, y, AspaAfi::Ipv4, None);
        let ramp = |ok: &dyn Fn(Hop) -> bool, up: bool| -> usize {
            let mut len = 1;
            while len < n {
                let (a, b) = if up {
                    (asns[len - 1], asns[len])
                } else {
                    (asns[n - len], asns[n - len - 1])
                };
                if !ok(hop(a, b)) {
                    break;
                }
                len += 1;
            }
            len
        };
        let not_npp = |h: Hop| h != Hop::NotProviderPlus;
        let pp = |h: Hop| h == Hop::ProviderPlus;
        let (max_up, min_up) = (ramp(&not_npp, true), ramp(&pp, true));
        match d {
            Direction::Upstream if n <= 1 => AspaState::Valid,
            Direction::Upstream if max_up < n => AspaState::Invalid,
            Direction::Upstream if min_up < n => AspaState::Unknown,
            Direction::Upstream => AspaState::Valid,
            Direction::Downstream if n <= 2 => AspaState::Valid,
            Direction::Downstream => {
                let (max_down, min_down) = (ramp(&not_npp, false), ramp(&pp, false));
                if max_up + max_down < n {
                    AspaState::Invalid
                } else if min_up + min_down < n {
                    AspaState::Unknown
                } else {
                    AspaState::Valid
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn verify_agrees_with_the_plain_procedure(
            aspas in proptest::collection::vec(
                (1u32..8, proptest::collection::vec(0u32..8, 0..4)), 0..6),
            path in proptest::collection::vec(1u32..8, 0..8),
            downstream in proptest::bool::ANY,
        ) {
            let entries: Vec<(u32, &[u32])> =
                aspas.iter().map(|(c, p)| (*c, p.as_slice())).collect();
            let s = set(&entries);
            let d = if downstream { Direction::Downstream } else { Direction::Upstream };
            proptest::prop_assert_eq!(
                verify(&s, &path, d).state,
                reference(&s, &path, d),
                "path {:?} {:?}", path, d
            );
        }
    }
}
