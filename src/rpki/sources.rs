//! Several RPKI sources in quorum, and the sudden-loss freeze.
//!
//! The daemon can take its RPKI data from several sources at once (VRP files, polled
//! for changes, and RTR caches). No single one is trusted: a VRP is used when at least
//! `quorum` of the configured sources carry it (default: a majority), and an ASPA when
//! `quorum` of them give the customer the same provider set. A source that is down, or
//! whose data expired, carries nothing. Each source's disagreement with the merged set
//! (what it lacks, what it adds) is reported with examples, so a lying or broken source
//! shows.
//!
//! A sudden loss — the merged set losing more than `max_loss` of its VRPs at once, as
//! when a trust anchor breaks — does not flip thousands of routes to NotFound: the
//! previous set stays in force for `freeze` and an alert is logged; a later set that is
//! not such a loss ends the freeze at once, and after `freeze` the new set is taken.

use crate::model::Asn;
use crate::rpki::vrps::{Aspa, AspaAfi, Vrp, VrpSet};
use ipnet::IpNet;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;
use std::time::{Duration, Instant};

type VrpKey = (IpNet, u8, Asn);
type AspaKey = (Asn, Option<AspaAfi>);

/// One source's payloads, as sets.
#[derive(Clone, Debug, Default)]
pub struct Payloads {
    vrps: FxHashSet<VrpKey>,
    aspas: FxHashMap<AspaKey, Vec<Asn>>,
}

impl Payloads {
    pub fn new(vrps: &[Vrp], aspas: &[Aspa]) -> Self {
        Payloads {
            vrps: vrps
                .iter()
                .map(|v| (v.prefix, v.max_length, v.asn))
                .collect(),
            aspas: aspas
                .iter()
                .map(|a| {
                    let mut p = a.providers.clone();
                    p.sort();
                    p.dedup();
                    ((a.customer, a.afi), p)
                })
                .collect(),
        }
    }

    pub fn from_set(set: &VrpSet) -> Self {
        Self::new(&set.vrps, &set.aspas)
    }

    pub fn vrp_count(&self) -> usize {
        self.vrps.len()
    }
}

/// How one source differs from the merged set.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Disagreement {
    pub source: String,
    /// Whether it has data at all (up, and not expired).
    pub has_data: bool,
    pub vrps: usize,
    /// Merged VRPs it does not carry, and VRPs it carries that the merge did not take.
    pub missing: usize,
    pub extra: usize,
    /// A few of each, as `PREFIX-MAXLEN ASn`.
    pub missing_examples: Vec<String>,
    pub extra_examples: Vec<String>,
    pub aspas_differing: usize,
}

/// The merged set and every source's disagreement with it.
#[derive(Debug, Default)]
pub struct Merged {
    pub vrps: Vec<Vrp>,
    pub aspas: Vec<Aspa>,
    pub reports: Vec<Disagreement>,
}

fn show(k: &VrpKey) -> String {
    format!("{}-{} AS{}", k.0, k.1, k.2 .0)
}

/// The default quorum of `n` sources: a majority.
pub fn majority(n: usize) -> usize {
    n / 2 + 1
}

/// Merges `sources` (name, payloads if it has data): what at least `quorum` carry.
pub fn merge(sources: &[(String, Option<&Payloads>)], quorum: usize) -> Merged {
    let quorum = quorum.max(1);
    let mut votes: FxHashMap<VrpKey, usize> = FxHashMap::default();
    let mut aspa_votes: FxHashMap<(AspaKey, Vec<Asn>), usize> = FxHashMap::default();
    for (_, p) in sources {
        if let Some(p) = p {
            for k in &p.vrps {
                *votes.entry(*k).or_default() += 1;
            }
            for (k, prov) in &p.aspas {
                *aspa_votes.entry((*k, prov.clone())).or_default() += 1;
            }
        }
    }
    let taken: FxHashSet<VrpKey> = votes
        .iter()
        .filter(|(_, n)| **n >= quorum)
        .map(|(k, _)| *k)
        .collect();
    let aspas_taken: FxHashMap<AspaKey, Vec<Asn>> = aspa_votes
        .into_iter()
        .filter(|(_, n)| *n >= quorum)
        .map(|((k, p), _)| (k, p))
        .collect();
    let reports = sources
        .iter()
        .map(|(name, p)| {
            let empty = Payloads::default();
            let p = p.unwrap_or(&empty);
            let mut missing: Vec<&VrpKey> = taken.iter().filter(|k| !p.vrps.contains(k)).collect();
            let mut extra: Vec<&VrpKey> = p.vrps.iter().filter(|k| !taken.contains(k)).collect();
            missing.sort();
            extra.sort();
            let aspas_differing = aspas_taken
                .iter()
                .filter(|(k, v)| p.aspas.get(k) != Some(v))
                .count()
                + p.aspas
                    .keys()
                    .filter(|k| !aspas_taken.contains_key(k))
                    .count();
            Disagreement {
                source: name.clone(),
                has_data: sources.iter().any(|(n, q)| n == name && q.is_some()),
                vrps: p.vrps.len(),
                missing: missing.len(),
                extra: extra.len(),
                missing_examples: missing.iter().take(5).map(|k| show(k)).collect(),
                extra_examples: extra.iter().take(5).map(|k| show(k)).collect(),
                aspas_differing,
            }
        })
        .collect();
    let vrps = taken
        .into_iter()
        .map(|(prefix, max_length, asn)| Vrp {
            prefix,
            max_length,
            asn,
            ta: None,
            expires: None,
        })
        .collect();
    let aspas = aspas_taken
        .into_iter()
        .map(|((customer, afi), providers)| Aspa {
            customer,
            providers,
            afi,
            expires: None,
        })
        .collect();
    Merged {
        vrps,
        aspas,
        reports,
    }
}

/// The sudden-loss guard.
#[derive(Clone, Debug)]
pub struct Freeze {
    /// Largest share of VRPs a new set may lose at once without a freeze.
    pub max_loss: f64,
    /// How long the previous set stays in force after a sudden loss.
    pub hold: Duration,
    /// VRPs in the set in force.
    in_force: Option<usize>,
    since: Option<Instant>,
}

/// What to do with a new merged set.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Use it.
    Take,
    /// Keep the set in force: the new one loses `lost` of `had` VRPs (share `share`).
    Hold { had: usize, lost: usize, share: f64 },
}

/// The freeze, as the status shows it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct FrozenStatus {
    pub had: usize,
    pub lost: usize,
    pub share: f64,
    pub for_s: u64,
    pub hold_s: u64,
}

impl Freeze {
    pub fn new(max_loss: f64, hold: Duration) -> Self {
        Freeze {
            max_loss,
            hold,
            in_force: None,
            since: None,
        }
    }

    /// Judges a new set of `vrps` VRPs at `now`; a taken set becomes the one in force.
    pub fn check(&mut self, vrps: usize, now: Instant) -> Verdict {
        if let Some(had) = self.in_force.filter(|h| *h > 0) {
            let lost = had.saturating_sub(vrps);
            let share = lost as f64 / had as f64;
            if share > self.max_loss {
                let since = *self.since.get_or_insert(now);
                if now.duration_since(since) < self.hold {
                    return Verdict::Hold { had, lost, share };
                }
            }
        }
        self.in_force = Some(vrps);
        self.since = None;
        Verdict::Take
    }

    /// Set while a sudden loss is being held off.
    pub fn frozen_since(&self) -> Option<Instant> {
        self.since
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vrp(p: &str, asn: u32) -> Vrp {
        let prefix: IpNet = p.parse().unwrap();
        Vrp {
            prefix,
            max_length: prefix.prefix_len(),
            asn: Asn(asn),
            ta: None,
            expires: None,
        }
    }

    #[test]
    fn a_lying_source_is_outvoted_and_reported() {
        let honest = vec![
            vrp("10.0.0.0/8", 1),
            vrp("11.0.0.0/8", 2),
            vrp("12.0.0.0/8", 3),
        ];
        // The liar drops 11/8 and forges 13/8.
        let liar = vec![
            vrp("10.0.0.0/8", 1),
            vrp("12.0.0.0/8", 3),
            vrp("13.0.0.0/8", 666),
        ];
        let aspa = |p: &[u32]| Aspa {
            customer: Asn(65002),
            providers: p.iter().copied().map(Asn).collect(),
            afi: None,
            expires: None,
        };
        let a = Payloads::new(&honest, &[aspa(&[1, 3])]);
        let b = Payloads::new(&honest, &[aspa(&[3, 1])]);
        let c = Payloads::new(&liar, &[aspa(&[1, 3, 666])]);
        let m = merge(
            &[
                ("a".into(), Some(&a)),
                ("b".into(), Some(&b)),
                ("liar".into(), Some(&c)),
            ],
            majority(3),
        );
        let mut got: Vec<String> = m
            .vrps
            .iter()
            .map(|v| format!("{} {}", v.prefix, v.asn.0))
            .collect();
        got.sort();
        assert_eq!(got, ["10.0.0.0/8 1", "11.0.0.0/8 2", "12.0.0.0/8 3"]);
        assert_eq!(m.aspas.len(), 1);
        assert_eq!(m.aspas[0].providers, vec![Asn(1), Asn(3)]);
        let r = &m.reports[2];
        assert_eq!((r.missing, r.extra, r.aspas_differing), (1, 1, 1));
        assert_eq!(r.missing_examples, ["11.0.0.0/8-8 AS2"]);
        assert_eq!(r.extra_examples, ["13.0.0.0/8-8 AS666"]);
        assert_eq!((m.reports[0].missing, m.reports[0].extra), (0, 0));
        // One source down: the two others still make the majority of three.
        let m = merge(
            &[
                ("a".into(), Some(&a)),
                ("b".into(), None),
                ("liar".into(), Some(&c)),
            ],
            2,
        );
        assert_eq!(m.vrps.len(), 2, "only what a and the liar share");
        assert!(!m.reports[1].has_data);
    }

    #[test]
    fn a_sudden_loss_is_held_off_then_taken() {
        let t0 = Instant::now();
        let mut f = Freeze::new(0.1, Duration::from_secs(600));
        assert_eq!(f.check(1000, t0), Verdict::Take);
        assert_eq!(f.check(950, t0), Verdict::Take, "5% is churn");
        match f.check(500, t0 + Duration::from_secs(1)) {
            Verdict::Hold { had, lost, .. } => assert_eq!((had, lost), (950, 450)),
            v => panic!("{v:?}"),
        }
        assert!(f.frozen_since().is_some());
        // Still a loss 5 minutes later: held; after 10 minutes: taken.
        assert!(matches!(
            f.check(500, t0 + Duration::from_secs(300)),
            Verdict::Hold { .. }
        ));
        assert_eq!(f.check(500, t0 + Duration::from_secs(602)), Verdict::Take);
        assert!(f.frozen_since().is_none());
        // A recovery ends a freeze at once.
        assert!(matches!(
            f.check(100, t0 + Duration::from_secs(700)),
            Verdict::Hold { .. }
        ));
        assert_eq!(f.check(490, t0 + Duration::from_secs(701)), Verdict::Take);
    }
}
