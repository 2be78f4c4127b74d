//! Max-prefix: how many routes one peer, and all the peers of one monitored router, may
//! have in the Adj-RIB-In (issue 18: one peer announcing 3,000,000 /32s took 449 MiB).
//!
//! What BGP speakers have done for decades (Cisco's `maximum-prefix`, BIRD's `import
//! limit`, FRR's `maximum-prefix`), minus tearing the session down, which routewitness
//! cannot do to a router it only watches: a warning when a peer (or router) crosses
//! `warn` of its limit, and at the limit its *new* routes are refused (not stored, not
//! judged, counted); what it had stays stored and judged, replacements of those routes
//! and withdrawals are taken, and once withdrawals bring it under the limit new routes
//! are taken again. Each crossing is an [`LimitEvent`] for the log, the metrics and an
//! alert. Only BMP peers are limited: a replayed MRT file is the operator's own input.

use crate::model::{Peer, PeerIdx};
use rustc_hash::FxHashMap;
use serde::Serialize;
use std::sync::Arc;

/// The limits (the BMP feed file's `max_prefixes_*`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    /// Routes (prefix and ADD-PATH path id) one peer may have; 0: no limit.
    pub per_peer: usize,
    /// Routes all the peers seen through one monitored router may have; 0: no limit.
    pub per_router: usize,
    /// The fraction of a limit at which a warning is raised, in (0, 1].
    pub warn: f64,
}

/// What a limit applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    Peer,
    Router,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Peer => "peer",
            Scope::Router => "router",
        }
    }
}

/// A crossing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Crossing {
    /// `warn` of the limit reached.
    Warning,
    /// The limit reached: new routes are refused from here.
    Reached,
    /// Back under the limit: new routes are taken again.
    Below,
}

/// One crossing of a limit, for the log, the metrics and an alert.
#[derive(Clone, Debug, Serialize)]
pub struct LimitEvent {
    pub scope: Scope,
    pub crossing: Crossing,
    /// The peer (for a router, the peer whose route crossed it).
    pub peer: Peer,
    /// The monitored router (the peers' feed).
    pub router: Arc<str>,
    pub routes: usize,
    pub limit: usize,
}

/// Routes of one peer or router against its limit.
#[derive(Clone, Copy, Debug, Default)]
struct Count {
    routes: usize,
    warned: bool,
    over: bool,
    refused: u64,
}

/// A peer or router at or past its warning, for `/v1/status`.
#[derive(Clone, Debug, Serialize)]
pub struct LimitStatus {
    pub scope: Scope,
    /// The peer (`address ASn`) or the router.
    pub name: String,
    pub router: Arc<str>,
    pub routes: usize,
    pub limit: usize,
    /// New routes refused at the limit so far.
    pub refused: u64,
    /// At the limit now (new routes refused).
    pub at_limit: bool,
}

/// The counts and the crossings not yet taken.
#[derive(Debug)]
pub(crate) struct MaxPrefix {
    limits: Limits,
    /// By peer index: its router's index (`u32::MAX`: not limited, not a BMP peer).
    router_of: Vec<u32>,
    peers: Vec<Count>,
    routers: Vec<Count>,
    router_names: Vec<Arc<str>>,
    by_name: FxHashMap<Arc<str>, u32>,
    events: Vec<LimitEvent>,
    /// New routes refused, by scope, since last taken (for the metrics).
    refused: [u64; 2],
}

impl MaxPrefix {
    pub(crate) fn new(limits: Limits) -> Self {
        MaxPrefix {
            limits,
            router_of: Vec::new(),
            peers: Vec::new(),
            routers: Vec::new(),
            router_names: Vec::new(),
            by_name: FxHashMap::default(),
            events: Vec::new(),
            refused: [0; 2],
        }
    }

    /// A peer registered under `idx`.
    pub(crate) fn peer(&mut self, idx: PeerIdx, peer: &Peer) {
        let i = idx.0 as usize;
        if self.router_of.len() <= i {
            self.router_of.resize(i + 1, u32::MAX);
            self.peers.resize(i + 1, Count::default());
        }
        self.router_of[i] = if peer.bmp {
            let next = self.router_names.len() as u32;
            let r = *self.by_name.entry(peer.feed.clone()).or_insert(next);
            if r == next {
                self.router_names.push(peer.feed.clone());
                self.routers.push(Count::default());
            }
            r
        } else {
            u32::MAX
        };
    }

    /// The router of a limited peer.
    fn router(&self, peer: PeerIdx) -> Option<usize> {
        match self.router_of.get(peer.0 as usize) {
            Some(&r) if r != u32::MAX => Some(r as usize),
            _ => None,
        }
    }

    /// Whether `peer` is limited (a BMP peer).
    pub(crate) fn limited(&self, peer: PeerIdx) -> bool {
        self.router(peer).is_some()
    }

    /// May `peer` store one more route? `false` counts it refused (and raises the
    /// crossing the first time).
    pub(crate) fn admit(&mut self, peer: PeerIdx, who: &Peer) -> bool {
        let Some(r) = self.router(peer) else {
            return true;
        };
        let l = self.limits;
        let p = &mut self.peers[peer.0 as usize];
        let scope = if l.per_peer > 0 && p.routes >= l.per_peer {
            p.refused += 1;
            (
                Scope::Peer,
                !std::mem::replace(&mut p.over, true),
                p.routes,
                l.per_peer,
            )
        } else {
            let rc = &mut self.routers[r];
            if l.per_router > 0 && rc.routes >= l.per_router {
                rc.refused += 1;
                (
                    Scope::Router,
                    !std::mem::replace(&mut rc.over, true),
                    rc.routes,
                    l.per_router,
                )
            } else {
                return true;
            }
        };
        let (scope, first, routes, limit) = scope;
        self.refused[scope as usize] += 1;
        if first {
            self.event(scope, Crossing::Reached, who, r, routes, limit);
        }
        false
    }

    /// `peer` stored a new route.
    pub(crate) fn added(&mut self, peer: PeerIdx, who: &Peer) {
        self.step(peer, who, |c, limit, warn| {
            c.routes += 1;
            crossed_warning(c, limit, warn).then_some(Crossing::Warning)
        });
    }

    /// `peer` lost `n` routes (withdrawn, or its session went down).
    pub(crate) fn removed(&mut self, peer: PeerIdx, who: &Peer, n: usize) {
        self.step(peer, who, |c, limit, warn| {
            c.routes = c.routes.saturating_sub(n);
            back_below(c, limit, warn).then_some(Crossing::Below)
        });
    }

    /// Applies `f` to the two counts a route of `peer` is in (its own, its router's),
    /// each with its limit and the warning share; a crossing `f` returns is an event.
    fn step(
        &mut self,
        peer: PeerIdx,
        who: &Peer,
        f: impl Fn(&mut Count, usize, f64) -> Option<Crossing>,
    ) {
        let Some(r) = self.router(peer) else {
            return;
        };
        let l = self.limits;
        let counts = [
            (Scope::Peer, &mut self.peers[peer.0 as usize], l.per_peer),
            (Scope::Router, &mut self.routers[r], l.per_router),
        ];
        let crossed = counts
            .map(|(scope, c, limit)| f(c, limit, l.warn).map(|x| (scope, x, c.routes, limit)));
        for (scope, crossing, routes, limit) in crossed.into_iter().flatten() {
            self.event(scope, crossing, who, r, routes, limit);
        }
    }

    fn event(
        &mut self,
        scope: Scope,
        crossing: Crossing,
        who: &Peer,
        r: usize,
        routes: usize,
        limit: usize,
    ) {
        self.events.push(LimitEvent {
            scope,
            crossing,
            peer: who.clone(),
            router: self.router_names[r].clone(),
            routes,
            limit,
        });
    }

    /// The crossings since last taken, and the routes refused (peer, router).
    pub(crate) fn take(&mut self) -> (Vec<LimitEvent>, [u64; 2]) {
        (
            std::mem::take(&mut self.events),
            std::mem::take(&mut self.refused),
        )
    }

    /// The peers and routers at or past their warning, for `/v1/status`.
    pub(crate) fn status(&self, peers: &[Peer]) -> Vec<LimitStatus> {
        let mut out = Vec::new();
        for (i, c) in self.peers.iter().enumerate() {
            if c.warned || c.over || c.refused > 0 {
                let r = self.router_of[i];
                out.push(LimitStatus {
                    scope: Scope::Peer,
                    name: peers.get(i).map_or_else(String::new, |p| p.to_string()),
                    router: self
                        .router_names
                        .get(r as usize)
                        .cloned()
                        .unwrap_or_else(|| Arc::from("")),
                    routes: c.routes,
                    limit: self.limits.per_peer,
                    refused: c.refused,
                    at_limit: c.over,
                });
            }
        }
        for (r, c) in self.routers.iter().enumerate() {
            if c.warned || c.over || c.refused > 0 {
                out.push(LimitStatus {
                    scope: Scope::Router,
                    name: self.router_names[r].to_string(),
                    router: self.router_names[r].clone(),
                    routes: c.routes,
                    limit: self.limits.per_router,
                    refused: c.refused,
                    at_limit: c.over,
                });
            }
        }
        out
    }
}

/// Whether `c` just reached `warn` of `limit` (once, until it falls back under).
fn crossed_warning(c: &mut Count, limit: usize, warn: f64) -> bool {
    if limit == 0 || c.warned {
        return false;
    }
    let at = ((limit as f64) * warn).ceil() as usize;
    c.warned = c.routes >= at.max(1);
    c.warned
}

/// Whether `c`, at its limit, just fell back under it (new routes taken again); a
/// warning is raised again once it is back under the warning threshold.
fn back_below(c: &mut Count, limit: usize, warn: f64) -> bool {
    if limit == 0 {
        return false;
    }
    if c.warned && c.routes < ((limit as f64) * warn).ceil() as usize {
        c.warned = false;
    }
    if c.over && c.routes < limit {
        c.over = false;
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Asn;

    fn peer(n: u8, feed: &str) -> Peer {
        Peer {
            feed: Arc::from(feed),
            addr: std::net::IpAddr::from([192, 0, 2, n]),
            asn: Asn(64500 + u32::from(n)),
            bgp_id: None,
            loc_rib: false,
            bmp: true,
        }
    }

    #[test]
    fn a_peer_is_warned_then_refused_then_taken_again_and_its_router_too() {
        let mut m = MaxPrefix::new(Limits {
            per_peer: 10,
            per_router: 15,
            warn: 0.8,
        });
        let (a, b) = (peer(1, "r1"), peer(2, "r1"));
        m.peer(PeerIdx(0), &a);
        m.peer(PeerIdx(1), &b);
        // Offers `n` new routes of peer `i`; (taken, crossings, refused).
        let offer = |m: &mut MaxPrefix, i: u32, who: &Peer, n: usize| {
            let mut taken = 0;
            for _ in 0..n {
                if m.admit(PeerIdx(i), who) {
                    m.added(PeerIdx(i), who);
                    taken += 1;
                }
            }
            let (ev, refused) = m.take();
            let kinds: Vec<_> = ev.iter().map(|e| (e.scope, e.crossing)).collect();
            (taken, kinds, refused)
        };
        let (taken, kinds, refused) = offer(&mut m, 0, &a, 12);
        assert_eq!(taken, 10);
        assert_eq!(
            kinds,
            [
                (Scope::Peer, Crossing::Warning),
                (Scope::Peer, Crossing::Reached)
            ]
        );
        assert_eq!(refused, [2, 0]);
        // The router's limit: 5 more from b, then refused.
        let (taken, kinds, refused) = offer(&mut m, 1, &b, 8);
        assert_eq!(taken, 5);
        assert_eq!(
            kinds,
            [
                (Scope::Router, Crossing::Warning),
                (Scope::Router, Crossing::Reached)
            ]
        );
        assert_eq!(refused, [0, 3]);
        // a withdraws 2: both limits are left, new routes are taken again.
        m.removed(PeerIdx(0), &a, 2);
        let (_, kinds, _) = offer(&mut m, 0, &a, 0);
        assert_eq!(
            kinds,
            [
                (Scope::Peer, Crossing::Below),
                (Scope::Router, Crossing::Below)
            ]
        );
        assert!(m.admit(PeerIdx(0), &a));
        let st = m.status(&[a.clone(), b.clone()]);
        assert_eq!(st.len(), 2, "{st:?}");
        // An MRT peer is not limited.
        let mut mrt = peer(3, "collector");
        mrt.bmp = false;
        m.peer(PeerIdx(2), &mrt);
        assert!(!m.limited(PeerIdx(2)));
        assert_eq!(offer(&mut m, 2, &mrt, 100).0, 100);
    }
}
