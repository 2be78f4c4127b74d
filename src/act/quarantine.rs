//! What the quarantine feed serves: one VRP (prefix, its own length, origin) per claim
//! with at least one held route, kept from the judge's decisions on the pipeline thread.
//!
//! - A route is counted while its decision says Quarantine or Reject (both mean "do not
//!   use it"); its claim is served while any of its routes is counted. A claim with no
//!   single origin (an AS_SET at the end of the path) cannot be a VRP: counted apart
//!   (`unservable`) and left to the router's own checks.
//! - Routes held at the last stop (see the daemon's state) are counted from the start,
//!   so a restart does not release what was held; each is dropped when its route is
//!   judged again or when the restore grace ends.
//! - Nothing is served while the policy does not act (`monitor-only`).
//! - **Caps** (the safety of an automatic actor): at most `max_total` claims served and
//!   at most `max_per_minute` added in any minute. A change beyond either *stops acting*:
//!   no claim is added until an operator resumes (`POST /v1/act/resume`); releases still
//!   go out, since they only give the router back its own choice. The trip is logged as
//!   an error (the alert) and shown in the status and metrics.
//!
//! Pure (no clock read): time comes in as an `Instant` argument.

use super::rtr_server::VrpKey;
use crate::judge::Decision;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;
use std::collections::VecDeque;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Caps on what the quarantine feed may take (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Caps {
    pub max_total: usize,
    pub max_per_minute: usize,
}

impl Default for Caps {
    fn default() -> Self {
        Caps {
            max_total: 10_000,
            max_per_minute: 1_000,
        }
    }
}

/// Why acting stopped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Tripped {
    pub reason: String,
    /// Claims held but not served because of it.
    pub waiting: usize,
}

/// The quarantine as the feed should serve it; `K` names a restored route.
#[derive(Debug)]
pub struct QuarantineSet<K> {
    caps: Caps,
    acting: bool,
    /// Held routes per claim.
    counts: FxHashMap<VrpKey, u32>,
    /// Claims served now.
    served: FxHashSet<VrpKey>,
    /// Claims whose count changed since the last flush.
    touched: FxHashSet<VrpKey>,
    /// Routes held at the last stop, not judged again yet.
    restored: FxHashMap<K, VrpKey>,
    /// Claims added in the last minute: when, how many.
    added: VecDeque<(Instant, usize)>,
    tripped: Option<String>,
    /// Held routes whose claim has no single origin.
    pub unservable: u64,
}

impl<K: Hash + Eq> QuarantineSet<K> {
    pub fn new(caps: Caps, acting: bool) -> Self {
        QuarantineSet {
            caps,
            acting,
            counts: FxHashMap::default(),
            served: FxHashSet::default(),
            touched: FxHashSet::default(),
            restored: FxHashMap::default(),
            added: VecDeque::new(),
            tripped: None,
            unservable: 0,
        }
    }

    fn count(&mut self, k: VrpKey, up: bool) {
        let c = self.counts.entry(k).or_insert(0);
        if up {
            *c += 1;
        } else {
            *c = c.saturating_sub(1);
        }
        if *c == 0 {
            self.counts.remove(&k);
        }
        self.touched.insert(k);
    }

    /// A route held at the last stop.
    pub fn restore(&mut self, key: K, prefix: ipnet::IpNet, origin: Option<u32>) {
        let Some(o) = origin else {
            self.unservable += 1;
            return;
        };
        let k = (prefix, prefix.prefix_len(), o);
        if self.restored.insert(key, k).is_none() {
            self.count(k, true);
        }
    }

    /// The restore grace is over: what was not judged again is no longer held.
    pub fn forget_restored(&mut self) {
        for (_, k) in std::mem::take(&mut self.restored) {
            self.count(k, false);
        }
    }

    /// One decision of the judge; `key` names its route (as [`Self::restore`] does).
    pub fn decision(&mut self, d: &Decision, key: impl FnOnce() -> K) {
        if !self.restored.is_empty() {
            if let Some(k) = self.restored.remove(&key()) {
                self.count(k, false);
            }
        }
        let (was, is) = (d.previous.is_held(), d.outcome.is_held());
        if was == is {
            return;
        }
        let Some(origin) = d.origin else {
            if is {
                self.unservable += 1;
            }
            return;
        };
        self.count((d.prefix, d.prefix.prefix_len(), origin.0), is);
    }

    /// The policy acts or not (a reload): all claims are looked at again.
    pub fn set_acting(&mut self, acting: bool) {
        if acting != self.acting {
            self.acting = acting;
            self.touch_all();
        }
    }

    /// An operator resumes acting after a trip.
    pub fn resume(&mut self) -> bool {
        let was = self.tripped.take().is_some();
        self.added.clear();
        self.touch_all();
        was
    }

    fn touch_all(&mut self) {
        self.touched.extend(self.counts.keys().copied());
        self.touched.extend(self.served.iter().copied());
    }

    pub fn acting(&self) -> bool {
        self.acting
    }

    pub fn tripped(&self) -> Option<Tripped> {
        self.tripped.as_ref().map(|r| Tripped {
            reason: r.clone(),
            waiting: self.counts.len() - self.served.len().min(self.counts.len()),
        })
    }

    /// Claims held now, served now.
    pub fn sizes(&self) -> (usize, usize) {
        (self.counts.len(), self.served.len())
    }

    /// The changes for the feed since the last flush: (claim, served). Releases first,
    /// then additions within the caps; an addition beyond them trips acting (see the
    /// module documentation) and is kept for a resume.
    pub fn flush(&mut self, now: Instant) -> Vec<(VrpKey, bool)> {
        if self.touched.is_empty() {
            return Vec::new();
        }
        let mut touched: Vec<VrpKey> = self.touched.drain().collect();
        touched.sort_unstable();
        let mut out = Vec::new();
        let mut adds = Vec::new();
        for k in touched {
            let want = self.acting && self.counts.contains_key(&k);
            let has = self.served.contains(&k);
            if has && !want {
                self.served.remove(&k);
                out.push((k, false));
            } else if want && !has {
                adds.push(k);
            }
        }
        while self
            .added
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) >= Duration::from_secs(60))
        {
            self.added.pop_front();
        }
        if !adds.is_empty() && self.tripped.is_none() {
            let minute: usize = self.added.iter().map(|(_, n)| n).sum();
            let total = self.served.len() + adds.len();
            if total > self.caps.max_total {
                self.tripped = Some(format!(
                    "{total} quarantined claims would be over the cap of {}",
                    self.caps.max_total
                ));
            } else if minute + adds.len() > self.caps.max_per_minute {
                self.tripped = Some(format!(
                    "{} claims quarantined within a minute would be over the cap of {}",
                    minute + adds.len(),
                    self.caps.max_per_minute
                ));
            }
        }
        if self.tripped.is_none() && !adds.is_empty() {
            self.added.push_back((now, adds.len()));
            for k in adds {
                self.served.insert(k);
                out.push((k, true));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::{Cause, Outcome};
    use crate::model::{Asn, EventTime};

    fn decision(
        prefix: &str,
        origin: Option<u32>,
        previous: Outcome,
        outcome: Outcome,
    ) -> Decision {
        Decision {
            seq: 1,
            time: EventTime(0),
            outcome,
            previous,
            cause: Cause::Announced,
            peer: "127.0.0.1".parse().unwrap(),
            peer_asn: Asn(65002),
            prefix: prefix.parse().unwrap(),
            path_id: None,
            origin: origin.map(Asn),
            as_path: None,
            since: EventTime(0),
            reasons: Vec::new(),
            policy: "test".into(),
            rpki_serial: None,
            peer_idx: crate::model::PeerIdx(0),
            prefix_id: crate::rib::PrefixId(0),
        }
    }

    fn k(p: &str, asn: u32) -> VrpKey {
        let p: ipnet::IpNet = p.parse().unwrap();
        (p, p.prefix_len(), asn)
    }

    #[test]
    fn a_claim_is_served_while_any_of_its_routes_is_held() {
        use Outcome::*;
        let mut q: QuarantineSet<u32> = QuarantineSet::new(Caps::default(), true);
        let t = Instant::now();
        q.decision(
            &decision("192.0.2.0/24", Some(666), Withdrawn, Quarantine),
            || 1,
        );
        q.decision(
            &decision("192.0.2.0/24", Some(666), Withdrawn, Reject),
            || 2,
        );
        assert_eq!(q.flush(t), vec![(k("192.0.2.0/24", 666), true)]);
        // One route released: still held by the other.
        q.decision(
            &decision("192.0.2.0/24", Some(666), Quarantine, Propagate),
            || 1,
        );
        assert!(q.flush(t).is_empty());
        // A held route re-judged held again changes nothing; withdrawn, it releases.
        q.decision(
            &decision("192.0.2.0/24", Some(666), Reject, Quarantine),
            || 2,
        );
        assert!(q.flush(t).is_empty());
        q.decision(
            &decision("192.0.2.0/24", Some(666), Quarantine, Withdrawn),
            || 2,
        );
        assert_eq!(q.flush(t), vec![(k("192.0.2.0/24", 666), false)]);
        // Held and released between two flushes: nothing to send.
        q.decision(
            &decision("198.51.100.0/24", Some(1), Withdrawn, Quarantine),
            || 3,
        );
        q.decision(
            &decision("198.51.100.0/24", Some(1), Quarantine, Propagate),
            || 3,
        );
        assert!(q.flush(t).is_empty());
        // No single origin: not servable, counted.
        q.decision(
            &decision("203.0.113.0/24", None, Withdrawn, Quarantine),
            || 4,
        );
        assert!(q.flush(t).is_empty());
        assert_eq!(q.unservable, 1);
    }

    #[test]
    fn restored_holds_last_until_judged_again_or_forgotten() {
        use Outcome::*;
        let mut q: QuarantineSet<u32> = QuarantineSet::new(Caps::default(), true);
        let t = Instant::now();
        q.restore(1, "192.0.2.0/24".parse().unwrap(), Some(666));
        q.restore(2, "198.51.100.0/24".parse().unwrap(), Some(7));
        assert_eq!(q.flush(t).len(), 2);
        // Route 1 comes back and is held again: still served (once).
        q.decision(
            &decision("192.0.2.0/24", Some(666), Withdrawn, Quarantine),
            || 1,
        );
        assert!(q.flush(t).is_empty());
        // Route 2 never comes back: forgotten at the end of the grace.
        q.forget_restored();
        assert_eq!(q.flush(t), vec![(k("198.51.100.0/24", 7), false)]);
        assert_eq!(q.sizes(), (1, 1));
    }

    #[test]
    fn monitor_only_serves_nothing_and_caps_stop_acting() {
        use Outcome::*;
        let caps = Caps {
            max_total: 3,
            max_per_minute: 2,
        };
        let mut q: QuarantineSet<u32> = QuarantineSet::new(caps, false);
        let t = Instant::now();
        q.decision(
            &decision("10.0.0.0/24", Some(1), Withdrawn, Quarantine),
            || 1,
        );
        assert!(q.flush(t).is_empty(), "monitor-only");
        q.set_acting(true);
        assert_eq!(q.flush(t).len(), 1);
        // Two more within the minute: over the per-minute cap; nothing added, tripped.
        q.decision(
            &decision("10.0.1.0/24", Some(1), Withdrawn, Quarantine),
            || 2,
        );
        q.decision(
            &decision("10.0.2.0/24", Some(1), Withdrawn, Quarantine),
            || 3,
        );
        assert!(q.flush(t).is_empty());
        let tr = q.tripped().unwrap();
        assert!(tr.reason.contains("within a minute"), "{tr:?}");
        assert_eq!(tr.waiting, 2);
        // Releases still go out while tripped.
        q.decision(
            &decision("10.0.0.0/24", Some(1), Quarantine, Propagate),
            || 1,
        );
        assert_eq!(q.flush(t), vec![(k("10.0.0.0/24", 1), false)]);
        // Resumed a minute later: the two waiting are added.
        assert!(q.resume());
        assert_eq!(q.flush(t + Duration::from_secs(61)).len(), 2);
        // The total cap.
        q.decision(
            &decision("10.0.3.0/24", Some(1), Withdrawn, Quarantine),
            || 4,
        );
        q.decision(
            &decision("10.0.4.0/24", Some(1), Withdrawn, Quarantine),
            || 5,
        );
        assert!(q.flush(t + Duration::from_secs(200)).is_empty());
        assert!(q.tripped().unwrap().reason.contains("cap of 3"));
        // Back to monitor-only: everything served is withdrawn.
        q.set_acting(false);
        assert_eq!(q.flush(t + Duration::from_secs(200)).len(), 2);
        assert_eq!(q.sizes().1, 0);
    }
}
