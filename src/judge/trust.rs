//! Peer trust scores.
//!
//! A score is a Beta-reputation estimate with a prior:
//!
//! ```text
//!            prior · w0 + good(t)
//! score = ─────────────────────────      good, bad: weighted evidence, each decayed by
//!          w0 + good(t) + bad(t)         2^(-age / half_life); w0: the prior's weight
//! ```
//!
//! so it is always in [0, 1], a peer with no evidence scores the prior, and without new
//! evidence both sums shrink by the same factor, which moves the score monotonically
//! toward the prior: score − prior = d·(g − prior·(g+b)) / (w0 + d·(g+b)) for a decay
//! factor d that only falls, and that is monotone in d. The raw counts behind a score are
//! kept as they are (never decayed), so a score can always be explained.

use crate::judge::policy::Trust as TrustPolicy;
use crate::model::EventTime;
use serde::Serialize;

/// Kinds of evidence about a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Evidence {
    ConfirmedValid,
    ConfirmedNotFound,
    RpkiInvalid,
    AspaInvalid,
    Refuted,
    /// A route it announced was held as a conflicting claim.
    ConflictHeld,
    Flap,
}

/// The counts behind a score: how often each kind of evidence was seen, undecayed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct TrustCounts {
    pub confirmed_valid: u64,
    pub confirmed_not_found: u64,
    pub rpki_invalid: u64,
    pub aspa_invalid: u64,
    pub refuted: u64,
    pub conflict_held: u64,
    pub flaps: u64,
}

/// One peer's score and its evidence.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrustScore {
    good: f64,
    bad: f64,
    /// When `good` and `bad` were last decayed.
    at: EventTime,
    pub counts: TrustCounts,
}

impl Default for TrustScore {
    fn default() -> Self {
        TrustScore {
            good: 0.0,
            bad: 0.0,
            at: EventTime(i64::MIN),
            counts: TrustCounts::default(),
        }
    }
}

fn decay_factor(policy: &TrustPolicy, from: EventTime, to: EventTime) -> f64 {
    if from.0 == i64::MIN || to <= from {
        return 1.0;
    }
    let dt = (to.0 - from.0) as f64 / 1e6;
    (-dt / policy.half_life.as_secs_f64()).exp2()
}

impl TrustScore {
    /// Brings the evidence forward to `now` (never backwards: time that runs back, as it
    /// may between MRT files, leaves the evidence as it is).
    fn decay_to(&mut self, policy: &TrustPolicy, now: EventTime) {
        if now > self.at {
            let f = decay_factor(policy, self.at, now);
            self.good *= f;
            self.bad *= f;
            self.at = now;
        }
    }

    /// Adds one event of evidence at `now`.
    pub fn record(&mut self, policy: &TrustPolicy, now: EventTime, e: Evidence) {
        self.decay_to(policy, now);
        let w = &policy.weights;
        let c = &mut self.counts;
        let (weight, good) = match e {
            Evidence::ConfirmedValid => {
                c.confirmed_valid += 1;
                (w.confirmed_valid, true)
            }
            Evidence::ConfirmedNotFound => {
                c.confirmed_not_found += 1;
                (w.confirmed_not_found, true)
            }
            Evidence::RpkiInvalid => {
                c.rpki_invalid += 1;
                (w.rpki_invalid, false)
            }
            Evidence::AspaInvalid => {
                c.aspa_invalid += 1;
                (w.aspa_invalid, false)
            }
            Evidence::Refuted => {
                c.refuted += 1;
                (w.refuted, false)
            }
            Evidence::ConflictHeld => {
                c.conflict_held += 1;
                (w.conflict_held, false)
            }
            Evidence::Flap => {
                c.flaps += 1;
                (w.flap, false)
            }
        };
        if good {
            self.good += weight;
        } else {
            self.bad += weight;
        }
    }

    /// The score at `now`, in [0, 1].
    pub fn score(&self, policy: &TrustPolicy, now: EventTime) -> f64 {
        let f = decay_factor(policy, self.at, now);
        let (g, b) = (self.good * f, self.bad * f);
        let w0 = policy.prior_weight;
        ((policy.prior * w0 + g) / (w0 + g + b)).clamp(0.0, 1.0)
    }

    /// The evidence as kept: (good, bad, when they were last decayed). With the counts,
    /// everything [`Self::from_raw`] needs to rebuild the score (after a restart).
    pub fn raw(&self) -> (f64, f64, EventTime) {
        (self.good, self.bad, self.at)
    }

    /// A score from [`Self::raw`] and its counts. Evidence that is not a finite number
    /// or below zero (a damaged store) counts as none.
    pub fn from_raw(good: f64, bad: f64, at: EventTime, counts: TrustCounts) -> Self {
        let clean = |x: f64| if x.is_finite() && x >= 0.0 { x } else { 0.0 };
        TrustScore {
            good: clean(good),
            bad: clean(bad),
            at,
            counts,
        }
    }

    /// The decayed evidence at `now`: (good, bad).
    pub fn evidence(&self, policy: &TrustPolicy, now: EventTime) -> (f64, f64) {
        let f = decay_factor(policy, self.at, now);
        (self.good * f, self.bad * f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(secs: i64) -> EventTime {
        EventTime::from_secs(secs)
    }

    #[test]
    fn evidence_moves_the_score_and_time_brings_it_back() {
        let p = TrustPolicy::default();
        let mut s = TrustScore::default();
        assert_eq!(s.score(&p, at(0)), p.prior);
        for _ in 0..40 {
            s.record(&p, at(0), Evidence::RpkiInvalid);
        }
        // 0.5 * 100 / (100 + 40 * 2)
        let low = s.score(&p, at(0));
        assert!((low - 50.0 / 180.0).abs() < 1e-9, "{low}");
        let day = p.half_life.as_secs() as i64;
        let later = s.score(&p, at(day));
        // One half-life: the evidence weighs half as much.
        let expect = (p.prior * p.prior_weight) / (p.prior_weight + 40.0 * 2.0 / 2.0);
        assert!((later - expect).abs() < 1e-9, "{later} vs {expect}");
        assert!(s.score(&p, at(30 * day)) > p.prior - 1e-4);
        assert_eq!(s.counts.rpki_invalid, 40);
    }

    proptest! {
        #[test]
        fn score_stays_in_unit_range_and_decays_monotonically_to_the_prior(
            events in prop::collection::vec((0u8..7, 0i64..100_000), 0..60),
            prior in 0.0f64..=1.0,
            steps in prop::collection::vec(1i64..200_000, 1..20),
        ) {
            let p = TrustPolicy { prior, ..TrustPolicy::default() };
            let mut s = TrustScore::default();
            let mut t = 0i64;
            for (kind, dt) in events {
                t += dt;
                let e = [Evidence::ConfirmedValid, Evidence::ConfirmedNotFound,
                    Evidence::RpkiInvalid, Evidence::AspaInvalid, Evidence::Refuted,
                    Evidence::ConflictHeld, Evidence::Flap][kind as usize];
                s.record(&p, at(t), e);
                let v = s.score(&p, at(t));
                prop_assert!((0.0..=1.0).contains(&v));
            }
            // No new evidence: the distance to the prior never grows, and the score never
            // crosses the prior.
            let start = s.score(&p, at(t)) - prior;
            let mut dist = start.abs();
            for dt in steps {
                t += dt;
                let v = s.score(&p, at(t));
                prop_assert!((0.0..=1.0).contains(&v));
                let d = v - prior;
                prop_assert!(d.abs() <= dist + 1e-12, "moved away: {} > {}", d.abs(), dist);
                prop_assert!(d * start >= -1e-12, "crossed the prior");
                dist = d.abs();
            }
        }
    }
}
