//! Decisions and the reasons behind them: what the judge says about one route.

use crate::judge::policy::{Action, PeerRole};
use crate::model::{AsPath, Asn, EventTime};
use crate::rpki::InvalidReason;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Arc;

/// What should happen to a route.
///
/// The state file stores it by position (`crate::state::record`): add variants at the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Propagate,
    Quarantine,
    Reject,
    /// The route is gone (withdrawn, or its session went down) while it was held: the
    /// hold ends with it. Only ever the outcome that follows a quarantine or reject.
    Withdrawn,
}

impl Outcome {
    pub fn from_action(a: Action) -> Outcome {
        match a {
            Action::Propagate => Outcome::Propagate,
            Action::Quarantine => Outcome::Quarantine,
            Action::Reject => Outcome::Reject,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Propagate => "propagate",
            Outcome::Quarantine => "quarantine",
            Outcome::Reject => "reject",
            Outcome::Withdrawn => "withdrawn",
        }
    }
    /// Quarantine or reject.
    pub fn is_held(self) -> bool {
        matches!(self, Outcome::Quarantine | Outcome::Reject)
    }
}

/// Why a decision was taken at this moment.
///
/// The state file stores it by position (`crate::state::record`): add variants at the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cause {
    /// The route was announced (or re-announced with another path).
    Announced,
    /// Enough independent, trusted witnesses confirmed the claim.
    Confirmed,
    /// The confirmation window ended without confirmation: the claim is refuted.
    WindowExpired,
    /// Another peer's announcement or withdrawal changed the claim's standing.
    WitnessesChanged,
    /// The hold-down time since the quarantine began has passed.
    HoldDownEnded,
    /// The peer withdrew the route.
    Withdrawn,
    /// The peer's session went down.
    PeerDown,
    /// An operator held or released the claim (through the API).
    Operator,
    /// The policy was swapped (the daemon reloaded it).
    Policy,
    /// The RPKI data changed (the daemon's RPKI source has a new serial).
    Rpki,
    /// The peer turned out to be sending its table (a burst of claims new to the judge):
    /// state transfer, not news.
    Transfer,
}

/// A claim named as evidence.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClaimRef {
    pub prefix: IpNet,
    pub origin: Option<Asn>,
    /// When it became established.
    pub established: EventTime,
}

/// A witness named as evidence, with its trust and whether its vote counted.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WitnessRef {
    pub peer: IpAddr,
    pub peer_asn: Asn,
    pub trust: f64,
    /// The AS just before the origin on this witness's path.
    pub neighbour: Asn,
    /// Since when it announces the claim.
    pub since: EventTime,
    /// What its vote added to the count (0 when untrusted, the origin itself, or its AS
    /// already counted).
    pub weight: f64,
}

/// The independent-witness count of a claim.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WitnessCount {
    pub effective: f64,
    pub needed: f64,
    pub witnesses: Vec<WitnessRef>,
}

/// The reasons of a decision. (Inline storage measured no faster and made the decisions
/// queued by a session reset larger.)
pub type Reasons = Vec<Reason>;
/// The VRPs named in a reason.
pub type Vrps = Vec<VrpBrief>;

/// A VRP named as evidence.
///
/// The state file stores its fields by position (`crate::state::record`): add at the end.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VrpBrief {
    pub prefix: IpNet,
    pub max_length: u8,
    pub asn: Asn,
}

/// One machine-readable reason, with the policy rule that fired and its action.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Reason {
    /// The policy key, e.g. `rpki.invalid`, `conflicts.sub_prefix`, `prefix_sets.ours`.
    pub rule: Cow<'static, str>,
    pub action: Action,
    #[serde(flatten)]
    pub detail: Detail,
}

/// The evidence of a [`Reason`].
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Detail {
    Rpki {
        rpki: InvalidReasonOrNotFound,
        /// The VRPs covering the prefix, valid at the decision's time. `None` until
        /// listed: the judge leaves that to whoever writes the decision down
        /// ([`Decision::list_vrps`], as with `as_path`), because a listing costs a trie walk
        /// and an allocation per held route (0.25 s of the judging thread on the 4.6 M
        /// event update bench, where no decision is written).
        #[serde(skip_serializing_if = "Option::is_none")]
        vrps: Option<Vrps>,
    },
    Aspa {
        role: PeerRole,
        /// The hop that breaks the path: `customer` does not list `provider`.
        #[serde(skip_serializing_if = "Option::is_none")]
        bad_hop: Option<(Asn, Asn)>,
    },
    Path {
        #[serde(skip_serializing_if = "Option::is_none")]
        asn: Option<Asn>,
    },
    Prefix {
        #[serde(skip_serializing_if = "Option::is_none")]
        block: Option<IpNet>,
        #[serde(skip_serializing_if = "Option::is_none")]
        max_length: Option<u8>,
    },
    PrefixSet {
        allowed: Vec<Asn>,
        #[serde(skip_serializing_if = "Option::is_none")]
        max_length: Option<u8>,
    },
    Conflict {
        against: Vec<ClaimRef>,
        witnesses: WitnessCount,
    },
    Squat {
        lookback_s: u64,
    },
    Unconfirmed {
        window_s: u64,
        witnesses: WitnessCount,
    },
    Untrusted {
        witnesses: WitnessCount,
    },
    /// A link at the origin never seen before, from an AS never seen giving transit: a
    /// forged origin suspected (the path's last two ASes).
    NewLink {
        upstream: Asn,
        origin: Asn,
    },
    /// An operator's hold, with the note they gave.
    Operator {
        operator: String,
    },
}

/// The RPKI state named in a reason.
///
/// The state file stores it by position (`crate::state::record`): add variants at the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InvalidReasonOrNotFound {
    WrongOrigin,
    TooLong,
    NotFound,
}

impl From<InvalidReason> for InvalidReasonOrNotFound {
    fn from(r: InvalidReason) -> Self {
        match r {
            InvalidReason::WrongOrigin => InvalidReasonOrNotFound::WrongOrigin,
            InvalidReason::TooLong => InvalidReasonOrNotFound::TooLong,
        }
    }
}

/// What the judge decided for one route, when its outcome changed.
///
/// Serialized (JSON lines, the API) with one more field, `explanation`: one line for a
/// human, rendered from the rest when it is written (see [`Decision::explanation`]), so a
/// decision nobody reads costs no text.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// Position in this judge's decision stream, from 1.
    pub seq: u64,
    pub time: EventTime,
    pub outcome: Outcome,
    pub previous: Outcome,
    pub cause: Cause,
    pub peer: IpAddr,
    pub peer_asn: Asn,
    pub prefix: IpNet,
    pub path_id: Option<u32>,
    pub origin: Option<Asn>,
    /// The route's path; filled in by whoever holds the Adj-RIB-In when the judge does not
    /// have it at hand (a decision caused by other peers' witnesses).
    pub as_path: Option<AsPath>,
    /// When the current hold began (for a release: when the released hold began).
    pub since: EventTime,
    /// Everything that holds the route now (empty for propagate and withdrawn).
    pub reasons: Reasons,
    pub policy: Arc<str>,
    pub rpki_serial: Option<u64>,
    /// The route's peer and prefix as the pipeline names them (for finding it in the
    /// Adj-RIB-In; not part of the record).
    pub peer_idx: crate::model::PeerIdx,
    pub prefix_id: crate::rib::PrefixId,
}

impl Decision {
    /// One line for a human.
    pub fn explanation(&self) -> String {
        explain(self)
    }

    /// Lists the VRPs behind its RPKI reasons, from `index` (the VRP set the decision was
    /// made against); VRPs expired at the decision's time are left out when
    /// `honour_expires`. Reasons already listed are left alone.
    pub fn list_vrps(&mut self, index: &crate::rpki::VrpIndex, honour_expires: bool) {
        let at = self.time.secs();
        for r in &mut self.reasons {
            if let Detail::Rpki { vrps: v @ None, .. } = &mut r.detail {
                let mut vrps = Vrps::new();
                index.for_each_covering_net(&self.prefix, |prefix, p| {
                    if !(honour_expires && p.expires < at) {
                        vrps.push(VrpBrief {
                            prefix,
                            max_length: p.max_length,
                            asn: p.asn,
                        });
                    }
                });
                *v = Some(vrps);
            }
        }
    }
}

impl Serialize for Decision {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut m = s.serialize_struct("Decision", 16)?;
        m.serialize_field("seq", &self.seq)?;
        m.serialize_field("time", &self.time)?;
        m.serialize_field("outcome", &self.outcome)?;
        m.serialize_field("previous", &self.previous)?;
        m.serialize_field("cause", &self.cause)?;
        m.serialize_field("peer", &self.peer)?;
        m.serialize_field("peer_asn", &self.peer_asn)?;
        m.serialize_field("prefix", &self.prefix)?;
        match self.path_id {
            Some(id) => m.serialize_field("path_id", &id)?,
            None => m.skip_field("path_id")?,
        }
        m.serialize_field("origin", &self.origin)?;
        match &self.as_path {
            Some(p) => m.serialize_field("as_path", p)?,
            None => m.skip_field("as_path")?,
        }
        m.serialize_field("since", &self.since)?;
        m.serialize_field("reasons", &self.reasons)?;
        m.serialize_field("explanation", &self.explanation())?;
        m.serialize_field("policy", &*self.policy)?;
        match self.rpki_serial {
            Some(v) => m.serialize_field("rpki_serial", &v)?,
            None => m.skip_field("rpki_serial")?,
        }
        m.end()
    }
}

impl Reason {
    /// A short phrase for the explanation line.
    pub fn phrase(&self, prefix: &IpNet, origin: Option<Asn>) -> String {
        let origin_s = origin.map_or("no origin (AS_SET)".to_string(), |o| o.to_string());
        match &self.detail {
            Detail::Rpki { rpki, vrps } => {
                let list = match vrps {
                    Some(vrps) => vrps
                        .iter()
                        .map(|v| format!("{}-{} {}", v.prefix, v.max_length, v.asn))
                        .collect::<Vec<_>>()
                        .join(", "),
                    None => "its VRPs".to_string(),
                };
                match rpki {
                    InvalidReasonOrNotFound::TooLong => {
                        format!("RPKI invalid: /{} too long for {list}", prefix.prefix_len())
                    }
                    InvalidReasonOrNotFound::WrongOrigin => {
                        format!("RPKI invalid: {origin_s} not authorised by {list}")
                    }
                    InvalidReasonOrNotFound::NotFound => "RPKI not-found".to_string(),
                }
            }
            Detail::Aspa { bad_hop, role, .. } => match bad_hop {
                Some((c, p)) => format!(
                    "ASPA invalid (route leak) from a {}: {p} is not a provider of {c}",
                    role_name(*role)
                ),
                None => "ASPA invalid: the path has an AS_SET".to_string(),
            },
            Detail::Path { asn: Some(a) } => format!("reserved {a} in path"),
            Detail::Path { asn: None } => "AS_SET in path".to_string(),
            Detail::Prefix { block: Some(b), .. } => format!("bogon (within {b})"),
            Detail::Prefix { max_length, .. } => {
                format!("longer than /{}", max_length.unwrap_or(0))
            }
            Detail::PrefixSet {
                allowed,
                max_length,
            } => {
                let list = allowed
                    .iter()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
                    .join(", ");
                let mut s = format!("{} allows only {list}", self.rule);
                if let Some(m) = max_length {
                    let _ = write!(s, " up to /{m}");
                }
                s
            }
            Detail::Conflict { against, witnesses } => {
                let what = if self.rule.ends_with("moas") {
                    "new origin for established"
                } else {
                    "more-specific of established"
                };
                format!(
                    "{what} {}; {} of {} independent witnesses",
                    claim_list(against),
                    trim(witnesses.effective),
                    trim(witnesses.needed)
                )
            }
            Detail::Squat { lookback_s } => {
                format!("space nobody announced in the last {}", secs(*lookback_s))
            }
            Detail::Unconfirmed {
                window_s,
                witnesses,
            } => format!(
                "not confirmed within {} ({} of {} independent witnesses)",
                secs(*window_s),
                trim(witnesses.effective),
                trim(witnesses.needed)
            ),
            Detail::Untrusted { witnesses } => format!(
                "announced only by peers below the trust floor ({} witnesses)",
                witnesses.witnesses.len()
            ),
            Detail::Operator { operator } => format!("held by an operator: {operator}"),
            Detail::NewLink { upstream, origin } => format!(
                "forged origin suspected: link {upstream} {origin} never seen, and {upstream} never seen giving transit"
            ),
        }
    }
}

fn role_name(r: PeerRole) -> &'static str {
    match r {
        PeerRole::Customer => "customer",
        PeerRole::Peer => "peer",
        PeerRole::RouteServer => "route server",
        PeerRole::Provider => "provider",
        PeerRole::None => "peer",
    }
}

fn claim_list(c: &[ClaimRef]) -> String {
    c.iter()
        .map(|c| match c.origin {
            Some(o) => format!("{} ({o})", c.prefix),
            None => format!("{} (AS_SET)", c.prefix),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn trim(x: f64) -> String {
    let s = format!("{x:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn secs(s: u64) -> String {
    humantime::format_duration(std::time::Duration::from_secs(s)).to_string()
}

/// The one-line explanation of a decision.
pub fn explain(d: &Decision) -> String {
    let origin = d.origin.map_or("AS_SET".to_string(), |o| o.to_string());
    let head = format!(
        "{} {} origin {} from {} ({})",
        d.outcome.name(),
        d.prefix,
        origin,
        d.peer,
        d.peer_asn
    );
    match d.outcome {
        Outcome::Quarantine | Outcome::Reject => {
            let why = d
                .reasons
                .iter()
                .filter(|r| Outcome::from_action(r.action) == d.outcome)
                .map(|r| r.phrase(&d.prefix, d.origin))
                .collect::<Vec<_>>()
                .join("; ");
            format!("{head}: {why}")
        }
        Outcome::Propagate => {
            let why = match d.cause {
                Cause::Confirmed => "confirmed by independent witnesses",
                Cause::HoldDownEnded => "hold-down ended, nothing holds it any more",
                Cause::Announced => "re-announced with nothing to hold it",
                Cause::Transfer => "the peer is sending its table: state transfer, not news",
                _ => "nothing holds it any more",
            };
            format!(
                "{head}: released after {} {}: {why}",
                d.previous.name(),
                since(d)
            )
        }
        Outcome::Withdrawn => format!(
            "{head}: {} ended, the route is gone ({})",
            d.previous.name(),
            match d.cause {
                Cause::PeerDown => "session down",
                _ => "withdrawn",
            }
        ),
    }
}

fn since(d: &Decision) -> String {
    format!("since {}", d.since)
}
