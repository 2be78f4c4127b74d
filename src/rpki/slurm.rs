//! SLURM (RFC 8416): an operator's local exceptions to the RPKI, applied on top of
//! whatever the RPKI source gives (a file, an RTR cache), as relying parties do:
//! `validationOutputFilters` remove payloads, `locallyAddedAssertions` add them.
//!
//! - Prefix filters (RFC 8416 §3.3.1): a VRP is removed when its prefix is the filter's or
//!   more specific (if the filter has a prefix) and its AS is the filter's (if it has an
//!   AS).
//! - Prefix assertions (§3.4.1) add VRPs (`maxPrefixLength` defaults to the prefix's length).
//! - SLURM version 2 (draft-ietf-sidrops-aspa-slurm) adds `aspaFilters` (remove a
//!   customer's ASPAs) and `aspaAssertions` (a customer's provider set, replacing what the
//!   source said). Drafts spell the members `customerAsid`/`customerAsn` and
//!   `providerAsns`/`providers`/`providerSet`: all are read.
//! - BGPsec filters and assertions are read and ignored (routewitness does not use router
//!   keys); their arrays may be missing, as in GoRTR's and StayRTR's own test files,
//!   though the RFC has all four arrays present.
//!
//! A file that breaks the RFC's rules is refused whole with the reason (§4: a bad prefix,
//! a `maxPrefixLength` out of range, a filter with neither prefix nor AS, ASPA members in
//! a version 1 file, overlapping prefix assertions... the last as §4.2 asks, for
//! assertions whose prefixes overlap with the same AS).

use crate::model::Asn;
use crate::rpki::vrps::{Aspa, Vrp};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SlurmError {
    #[error("{}: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {message}", .path.display())]
    Invalid { path: PathBuf, message: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct File {
    slurm_version: u8,
    validation_output_filters: Filters,
    locally_added_assertions: Assertions,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Filters {
    prefix_filters: Vec<PrefixFilter>,
    #[serde(default)]
    bgpsec_filters: Vec<serde_json::Value>,
    #[serde(default)]
    aspa_filters: Option<Vec<AspaFilter>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Assertions {
    prefix_assertions: Vec<PrefixAssertion>,
    #[serde(default)]
    bgpsec_assertions: Vec<serde_json::Value>,
    #[serde(default)]
    aspa_assertions: Option<Vec<AspaAssertion>>,
}

/// A prefix filter: VRPs for this prefix (or more specific) and/or this AS go.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PrefixFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<IpNet>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asn: Option<Asn>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// A prefix assertion: a VRP added.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PrefixAssertion {
    pub prefix: IpNet,
    pub asn: Asn,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_prefix_length: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AspaFilter {
    #[serde(rename = "customerAsid", alias = "customerAsn")]
    pub customer: Asn,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AspaAssertion {
    #[serde(rename = "customerAsid", alias = "customerAsn")]
    pub customer: Asn,
    #[serde(rename = "providers", alias = "providerAsns", alias = "providerSet")]
    pub providers: Vec<Asn>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// A checked SLURM file.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Slurm {
    pub path: PathBuf,
    pub version: u8,
    pub prefix_filters: Vec<PrefixFilter>,
    pub prefix_assertions: Vec<PrefixAssertion>,
    pub aspa_filters: Vec<AspaFilter>,
    pub aspa_assertions: Vec<AspaAssertion>,
    /// BGPsec entries read and not used.
    pub bgpsec_ignored: usize,
}

/// What applying a SLURM file did to a data set (shown in the daemon's status).
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct SlurmEffect {
    pub file: String,
    pub vrps_filtered: usize,
    pub vrps_added: usize,
    pub aspas_filtered: usize,
    pub aspas_asserted: usize,
}

fn covers(filter: &IpNet, p: &IpNet) -> bool {
    filter.contains(p)
}

impl Slurm {
    pub fn load(path: &Path) -> Result<Slurm, SlurmError> {
        let text = std::fs::read_to_string(path).map_err(|source| SlurmError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Slurm, SlurmError> {
        let invalid = |message: String| SlurmError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let f: File = serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if !(1..=2).contains(&f.slurm_version) {
            return Err(invalid(format!(
                "slurmVersion {} (1 and 2 are known)",
                f.slurm_version
            )));
        }
        let aspa_filters = f.validation_output_filters.aspa_filters;
        let aspa_assertions = f.locally_added_assertions.aspa_assertions;
        if f.slurm_version == 1 && (aspa_filters.is_some() || aspa_assertions.is_some()) {
            return Err(invalid(
                "ASPA filters or assertions in a slurmVersion 1 file".into(),
            ));
        }
        let prefix_filters = f.validation_output_filters.prefix_filters;
        for (i, pf) in prefix_filters.iter().enumerate() {
            if pf.prefix.is_none() && pf.asn.is_none() {
                return Err(invalid(format!(
                    "prefixFilters[{i}]: neither prefix nor asn"
                )));
            }
            if let Some(p) = pf.prefix {
                if p != p.trunc() {
                    return Err(invalid(format!("prefixFilters[{i}]: {p} has host bits")));
                }
            }
        }
        let prefix_assertions = f.locally_added_assertions.prefix_assertions;
        for (i, pa) in prefix_assertions.iter().enumerate() {
            let p = pa.prefix;
            if p != p.trunc() {
                return Err(invalid(format!("prefixAssertions[{i}]: {p} has host bits")));
            }
            if let Some(m) = pa.max_prefix_length {
                if m < p.prefix_len() || m > p.max_prefix_len() {
                    return Err(invalid(format!(
                        "prefixAssertions[{i}]: maxPrefixLength {m} for {p}"
                    )));
                }
            }
            for (j, other) in prefix_assertions.iter().enumerate().take(i) {
                if other.asn == pa.asn && (covers(&other.prefix, &p) || covers(&p, &other.prefix)) {
                    return Err(invalid(format!(
                        "prefixAssertions[{j}] and [{i}] overlap ({} and {p}, AS{})",
                        other.prefix, pa.asn.0
                    )));
                }
            }
        }
        let aspa_assertions = aspa_assertions.unwrap_or_default();
        for (i, a) in aspa_assertions.iter().enumerate() {
            if aspa_assertions[..i]
                .iter()
                .any(|b| b.customer == a.customer)
            {
                return Err(invalid(format!(
                    "aspaAssertions[{i}]: a second assertion for AS{}",
                    a.customer.0
                )));
            }
            if a.providers.contains(&a.customer) {
                return Err(invalid(format!(
                    "aspaAssertions[{i}]: AS{} is its own provider",
                    a.customer.0
                )));
            }
        }
        Ok(Slurm {
            path: path.to_path_buf(),
            version: f.slurm_version,
            bgpsec_ignored: f.validation_output_filters.bgpsec_filters.len()
                + f.locally_added_assertions.bgpsec_assertions.len(),
            prefix_filters,
            prefix_assertions,
            aspa_filters: aspa_filters.unwrap_or_default(),
            aspa_assertions,
        })
    }

    fn filtered(&self, v: &Vrp) -> bool {
        self.prefix_filters.iter().any(|f| {
            f.prefix.is_none_or(|p| covers(&p, &v.prefix)) && f.asn.is_none_or(|a| a == v.asn)
        })
    }

    /// Applies the file to a data set: filters first, then assertions (RFC 8416 §4.2).
    pub fn apply(&self, vrps: &mut Vec<Vrp>, aspas: &mut Vec<Aspa>) -> SlurmEffect {
        let before = vrps.len();
        vrps.retain(|v| !self.filtered(v));
        let vrps_filtered = before - vrps.len();
        for a in &self.prefix_assertions {
            vrps.push(Vrp {
                prefix: a.prefix,
                max_length: a.max_prefix_length.unwrap_or(a.prefix.prefix_len()),
                asn: a.asn,
                ta: Some("slurm".into()),
                expires: None,
            });
        }
        let before = aspas.len();
        aspas.retain(|a| {
            !self.aspa_filters.iter().any(|f| f.customer == a.customer)
                && !self
                    .aspa_assertions
                    .iter()
                    .any(|s| s.customer == a.customer)
        });
        let aspas_filtered = before - aspas.len();
        for s in &self.aspa_assertions {
            let mut providers = s.providers.clone();
            providers.sort();
            providers.dedup();
            aspas.push(Aspa {
                customer: s.customer,
                providers,
                afi: None,
                expires: None,
            });
        }
        SlurmEffect {
            file: self.path.display().to_string(),
            vrps_filtered,
            vrps_added: self.prefix_assertions.len(),
            aspas_filtered,
            aspas_asserted: self.aspa_assertions.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn vrp(p: &str, max: u8, asn: u32) -> Vrp {
        Vrp {
            prefix: p.parse().unwrap(),
            max_length: max,
            asn: Asn(asn),
            ta: None,
            expires: None,
        }
    }

    #[test]
    fn filters_then_assertions() {
        let s = Slurm::parse(
            r#"{"slurmVersion": 2,
               "validationOutputFilters": {
                 "prefixFilters": [{"prefix": "192.0.2.0/24"}, {"asn": 64496},
                                   {"prefix": "198.51.100.0/24", "asn": 64497}],
                 "bgpsecFilters": [],
                 "aspaFilters": [{"customerAsid": 64500}]},
               "locallyAddedAssertions": {
                 "prefixAssertions": [{"asn": 64499, "prefix": "203.0.113.0/24", "maxPrefixLength": 25}],
                 "bgpsecAssertions": [],
                 "aspaAssertions": [{"customerAsn": 64501, "providerAsns": [3, 2, 2]}]}}"#,
            Path::new("t.json"),
        )
        .unwrap();
        let mut vrps = vec![
            vrp("192.0.2.128/25", 25, 1),      // covered by the first filter
            vrp("192.0.0.0/16", 24, 1),        // covers it only: kept
            vrp("10.0.0.0/8", 8, 64496),       // the AS filter
            vrp("198.51.100.0/24", 24, 64497), // prefix and AS
            vrp("198.51.100.0/24", 24, 64498), // prefix, other AS: kept
        ];
        let mut aspas = vec![
            Aspa {
                customer: Asn(64500),
                providers: vec![Asn(1)],
                afi: None,
                expires: None,
            },
            Aspa {
                customer: Asn(64501),
                providers: vec![Asn(9)],
                afi: None,
                expires: None,
            },
            Aspa {
                customer: Asn(64502),
                providers: vec![Asn(1)],
                afi: None,
                expires: None,
            },
        ];
        let e = s.apply(&mut vrps, &mut aspas);
        assert_eq!((e.vrps_filtered, e.vrps_added), (3, 1));
        let kept: Vec<(String, u32)> = vrps
            .iter()
            .map(|v| (v.prefix.to_string(), v.asn.0))
            .collect();
        assert_eq!(
            kept,
            [
                ("192.0.0.0/16".to_string(), 1),
                ("198.51.100.0/24".to_string(), 64498),
                ("203.0.113.0/24".to_string(), 64499)
            ]
        );
        assert_eq!(vrps[2].max_length, 25);
        assert_eq!(aspas.len(), 2);
        assert_eq!(aspas[1].customer, Asn(64501));
        assert_eq!(aspas[1].providers, vec![Asn(2), Asn(3)]);
    }

    #[test]
    fn broken_files_are_refused_with_the_reason() {
        let base = |filters: &str, asserts: &str, v: u8| {
            format!(
                r#"{{"slurmVersion": {v}, "validationOutputFilters": {{"prefixFilters": [{filters}], "bgpsecFilters": []}},
                   "locallyAddedAssertions": {{"prefixAssertions": [{asserts}], "bgpsecAssertions": []}}}}"#
            )
        };
        for (text, why) in [
            (base("{}", "", 1), "neither prefix nor asn"),
            (
                base(
                    "",
                    r#"{"asn": 1, "prefix": "10.0.0.0/8", "maxPrefixLength": 7}"#,
                    1,
                ),
                "maxPrefixLength",
            ),
            (
                base("", r#"{"asn": 1, "prefix": "10.0.0.1/8"}"#, 1),
                "host bits",
            ),
            (
                base(
                    "",
                    r#"{"asn": 1, "prefix": "10.0.0.0/8"}, {"asn": 1, "prefix": "10.1.0.0/16"}"#,
                    1,
                ),
                "overlap",
            ),
            (base("", "", 3), "slurmVersion 3"),
            (base(r#"{"asn": 1, "extra": 2}"#, "", 1), "unknown field"),
        ] {
            let e = Slurm::parse(&text, Path::new("x.json"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(why), "{why}: {e}");
        }
        let v1_with_aspa = r#"{"slurmVersion": 1,
            "validationOutputFilters": {"prefixFilters": [], "bgpsecFilters": [], "aspaFilters": []},
            "locallyAddedAssertions": {"prefixAssertions": [], "bgpsecAssertions": []}}"#;
        let e = Slurm::parse(v1_with_aspa, Path::new("x.json"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("slurmVersion 1"), "{e}");
    }

    proptest! {
        /// Any text: a SLURM file or an error, never a panic.
        #[test]
        fn parse_never_panics(text in ".{0,300}") {
            let _ = Slurm::parse(&text, Path::new("p.json"));
        }
    }
}
