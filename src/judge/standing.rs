//! A claim's **standing**: does its origin have a right to the space, or is it contradicting
//! who holds it? The answer to the *lying origin* question, kept apart from the *lying
//! observer* question (independent witnesses, in [`super::engine`]): many observers
//! carrying a route shows that it propagates, never that it is true.
//!
//! What the judge learns from the paths themselves (no registry, no RPKI needed):
//!
//! - **Links at the origin**: for every route it propagates, the AS just before the
//!   origin (its *upstream* on that path, prepends collapsed) with the time the link
//!   `(upstream, origin)` was first seen. Only the last link of each path is kept: it is
//!   what says who carries an origin's routes (its providers and peers), and what a
//!   forged-origin hijack forges. Links of held routes are never learned, so a hijack
//!   cannot make itself a history ("only count history that was never held").
//! - **Relationships** between a new origin N and a holder H, each from evidence at least
//!   `standing.link_age` older than the claim (so a hijacker cannot plant it along with
//!   the hijack):
//!   - *customer*: H was seen just before N on N's routes (H is N's upstream);
//!   - *customer's customer*: an upstream of N has H as its own upstream (PA space
//!     delegated through a reseller);
//!   - *provider*: N was seen just before H on H's routes (a provider originating its
//!     customer's space, e.g. a static customer, or a stripped private AS);
//!   - *sibling*: N and H both held one other prefix at once (a MOAS both had standing
//!     in: anycast, a merger, two ASes of one organisation);
//!   - *transit*: H is on the new route's own path before N: the holder itself carries
//!     the new origin's route (judged on the path that arrives, no age needed: H's own
//!     routers propagated it).
//!
//!   - *shared small upstream*: both are seen behind one upstream that carries fewer
//!     than `standing.small_upstream` origins (a regional network or one organisation's
//!     edge; measured on route-views2 2008-02-24: it excuses 199 of 1,139 false holds and
//!     1 of 3,000 random attacker/victim pairs).
//!
//! What is **not** taken as a relationship: a shared large upstream (two customers of one
//! transit provider are unrelated; a hijacker and its victim often share a tier-1), the
//! number of peers carrying the claim, and how long a held claim has lasted.

use crate::model::EventTime;
use rustc_hash::FxHashMap;
use serde::Serialize;
use smallvec::SmallVec;

/// Why a new origin is taken as related to a holder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Relation {
    /// The holder is the new origin's upstream.
    Customer,
    /// The holder is an upstream of one of the new origin's upstreams.
    CustomersCustomer,
    /// The new origin is the holder's upstream.
    Provider,
    /// The new origin and the holder held another prefix together.
    Sibling,
    /// Both are customers of one small upstream (a regional network: its customers are
    /// often one organisation's).
    SharedSmallUpstream,
    /// The holder is on the new route's path, before the new origin.
    Transit,
    /// For the same prefix only (a MOAS): the upstream that carries the new route is a
    /// known upstream of the holder too, and of the new origin. A provider that accepts
    /// from one customer the prefix another customer holds is where multi-homed
    /// organisations, anycast and static routes show; as a score it is weak evidence,
    /// enough to watch a MOAS rather than hold it, never a more-specific (TRUTH's
    /// scoring: −1 takes a MOAS from 8 to 7, a sub-MOAS stays at 8).
    SharedUpstream,
}

impl Relation {
    pub fn name(self) -> &'static str {
        match self {
            Relation::Customer => "customer",
            Relation::CustomersCustomer => "customer's customer",
            Relation::Provider => "provider",
            Relation::Sibling => "sibling",
            Relation::SharedSmallUpstream => "shared small upstream",
            Relation::Transit => "transit",
            Relation::SharedUpstream => "shared upstream carrying it",
        }
    }
}

/// The links seen at the origins of propagated routes.
#[derive(Default)]
pub struct Links {
    /// Upstreams of each origin AS, with when each link was first seen.
    up: FxHashMap<u32, SmallVec<[(u32, EventTime); 4]>>,
    /// How many origins each AS was seen as the upstream of (a transit's size).
    customers: FxHashMap<u32, u32>,
    /// Pairs of origins (lower first) that held one prefix together, first seen.
    siblings: FxHashMap<(u32, u32), EventTime>,
    /// ASes seen anywhere on a path but at its end: networks that give transit.
    transit: rustc_hash::FxHashSet<u32>,
}

impl Links {
    /// Records the link (upstream, origin) at time `t` (kept with its first sighting).
    /// Returns whether the link is new.
    pub fn note(&mut self, upstream: u32, origin: u32, t: EventTime) -> bool {
        if upstream == origin {
            return false;
        }
        let ups = self.up.entry(origin).or_default();
        if ups.iter().any(|&(u, _)| u == upstream) {
            return false;
        }
        ups.push((upstream, t));
        *self.customers.entry(upstream).or_default() += 1;
        true
    }

    /// Records that origins `a` and `b` both have standing on one prefix at `t`.
    pub fn note_siblings(&mut self, a: u32, b: u32, t: EventTime) {
        if a != b {
            self.siblings.entry((a.min(b), a.max(b))).or_insert(t);
        }
    }

    /// Records the ASes that carry a propagated path (all but its origin) as transit.
    pub fn note_transit(&mut self, asns: &[u32]) {
        if let Some((_, carriers)) = asns.split_last() {
            for &a in carriers {
                self.transit.insert(a);
            }
        }
    }

    /// Was `asn` ever seen carrying another AS's route?
    pub fn is_transit(&self, asn: u32) -> bool {
        self.transit.contains(&asn)
    }

    /// When the link (upstream, origin) was first seen, if it was.
    pub fn first_seen(&self, upstream: u32, origin: u32) -> Option<EventTime> {
        self.up
            .get(&origin)?
            .iter()
            .find(|&&(u, _)| u == upstream)
            .map(|&(_, t)| t)
    }

    /// The upstreams of `origin` first seen at or before `before`.
    fn upstreams(&self, origin: u32, before: EventTime) -> impl Iterator<Item = u32> + '_ {
        self.up
            .get(&origin)
            .into_iter()
            .flatten()
            .filter(move |&&(_, t)| t <= before)
            .map(|&(u, _)| u)
    }

    /// Upstreams known for `origin` (any time).
    pub fn upstream_count(&self, origin: u32) -> usize {
        self.up.get(&origin).map_or(0, |v| v.len())
    }

    /// Origins `asn` was seen as the upstream of.
    pub fn customer_count(&self, asn: u32) -> u32 {
        self.customers.get(&asn).copied().unwrap_or(0)
    }

    /// How the new origin `n` is related to the holder `h`, from links first seen at or
    /// before `before`; `path` is the new route's path (origin last), where the holder
    /// carrying it shows a relationship without any age.
    pub fn related(
        &self,
        n: u32,
        h: u32,
        before: EventTime,
        path: Option<&[u32]>,
        small_upstream: u32,
    ) -> Option<Relation> {
        if let Some(p) = path {
            // Every AS before the origin (the last one) on the path.
            if p.len() > 1 && p[..p.len() - 1].contains(&h) {
                return Some(Relation::Transit);
            }
        }
        if self.upstreams(n, before).any(|u| u == h) {
            return Some(Relation::Customer);
        }
        if self.upstreams(h, before).any(|u| u == n) {
            return Some(Relation::Provider);
        }
        if self
            .siblings
            .get(&(n.min(h), n.max(h)))
            .is_some_and(|&t| t <= before)
        {
            return Some(Relation::Sibling);
        }
        if self
            .upstreams(n, before)
            .any(|u| self.upstreams(u, before).any(|uu| uu == h))
        {
            return Some(Relation::CustomersCustomer);
        }
        if small_upstream > 0
            && self.upstreams(n, before).any(|u| {
                self.customer_count(u) < small_upstream
                    && self.upstreams(h, before).any(|uh| uh == u)
            })
        {
            return Some(Relation::SharedSmallUpstream);
        }
        None
    }
}

impl Links {
    /// [`Relation::SharedUpstream`]: the AS before the origin on `path` has been an
    /// upstream of both `n` and `h` since `before`.
    pub fn shared_upstream(&self, n: u32, h: u32, before: EventTime, path: &[u32]) -> bool {
        let [.., u, last] = path else { return false };
        *last == n
            && self.upstreams(n, before).any(|x| x == *u)
            && self.upstreams(h, before).any(|x| x == *u)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> EventTime {
        EventTime::from_secs(s)
    }

    #[test]
    fn relationships_come_from_links_older_than_the_claim() {
        let mut l = Links::default();
        assert!(l.note(3491, 17557, t(0)));
        assert!(!l.note(3491, 17557, t(5)), "a link is new once");
        assert_eq!(l.first_seen(3491, 17557), Some(t(0)));
        l.note(3549, 36561, t(10));
        l.note(1239, 3549, t(10));
        // Customer: the holder is the new origin's upstream.
        assert_eq!(
            l.related(36561, 3549, t(100), None, 0),
            Some(Relation::Customer)
        );
        // Provider: the new origin is the holder's upstream.
        assert_eq!(
            l.related(3549, 36561, t(100), None, 0),
            Some(Relation::Provider)
        );
        // Customer's customer.
        assert_eq!(
            l.related(36561, 1239, t(100), None, 0),
            Some(Relation::CustomersCustomer)
        );
        // Unrelated, and too recent evidence does not count.
        assert_eq!(l.related(17557, 36561, t(100), None, 0), None);
        assert_eq!(l.related(36561, 3549, t(5), None, 0), None);
        // The holder on the new route's own path.
        assert_eq!(
            l.related(64512, 36561, t(0), Some(&[3356, 36561, 64512]), 0),
            Some(Relation::Transit)
        );
        // The origin itself at the end of the path is not "on the path before it".
        assert_eq!(l.related(17557, 17557, t(0), Some(&[17557]), 0), None);
        // Siblings, once their shared prefix is old enough.
        l.note_siblings(36561, 64501, t(50));
        assert_eq!(
            l.related(64501, 36561, t(100), None, 0),
            Some(Relation::Sibling)
        );
        assert_eq!(l.related(64501, 36561, t(49), None, 0), None);
        // A shared upstream is no relationship, unless it is a small one.
        l.note(3491, 64500, t(0));
        assert_eq!(l.related(17557, 64500, t(100), None, 0), None);
        assert_eq!(l.related(17557, 64500, t(100), None, 2), None, "3491 has 2");
        assert_eq!(
            l.related(17557, 64500, t(100), None, 3),
            Some(Relation::SharedSmallUpstream)
        );
        assert_eq!(l.customer_count(3491), 2);
        assert_eq!(l.upstream_count(36561), 1);
        // The upstream carrying the new route serves both, for long enough: a MOAS the
        // judge watches (the engine asks only for exact-prefix conflicts).
        assert!(l.shared_upstream(17557, 64500, t(100), &[701, 3491, 17557]));
        assert!(
            !l.shared_upstream(17557, 64500, t(-1), &[701, 3491, 17557]),
            "too recent"
        );
        assert!(
            !l.shared_upstream(17557, 64500, t(100), &[3491, 701, 17557]),
            "701 carries it, and serves neither"
        );
        assert!(!l.shared_upstream(17557, 36561, t(100), &[3491, 17557]));
    }
}
