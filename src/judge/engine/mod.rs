//! The judge's engine: claims, witnesses, conflicts, trust and decisions. Pure: every
//! input carries its time, nothing here reads a clock, touches a socket or spawns.
//! See the module docs of [`crate::judge`] for the rules it applies.

use super::anomaly;
use super::decision::{
    Cause, ClaimRef, Decision, Detail, InvalidReasonOrNotFound, Outcome, Reason, Reasons,
    WitnessCount, WitnessRef,
};
use super::policy::{Action, PeerRole, Policy};
use super::standing::{Links, Relation};
use super::trust::{Evidence, TrustScore};
use crate::model::{AsPath, Asn, EventTime, Peer, PeerIdx, SegmentKind};
use crate::rib::PrefixId;
use crate::rpki::aspa::{AspaState, Direction};
use crate::rpki::vrps::AspaAfi;
use crate::rpki::{AspaSet, RovState, RpkiRef, VrpIndex};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use prefix_trie::PrefixMap;
use rustc_hash::FxHashMap;
use serde::Serialize;
use smallvec::SmallVec;
use std::borrow::Cow;
use std::collections::{BTreeSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

mod claims;
mod conflicts;
mod persist;
mod routes;

const NONE: u32 = u32::MAX;

/// Conditions a route can meet; each maps to a policy action.
/// The conditions the judge checks. Each has a bit (claims and routes carry a set of
/// them), a policy rule and an action in the policy; the bits, rule names and actions
/// all come from [`cond::Cond`], so they cannot get out of step.
mod cond {
    use crate::judge::policy::{Action, Policy};

    /// One condition; its discriminant is its bit's position.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    #[repr(u8)]
    pub enum Cond {
        RpkiInvalid,
        RpkiNotFound,
        AspaInvalid,
        AsSet,
        ReservedAsn,
        Bogon,
        TooSpecific,
        PrefixSet,
        Moas,
        SubPrefix,
        Squat,
        Unconfirmed,
        Untrusted,
        /// An unrelated origin claiming space it already claimed within the memory.
        Recurring,
        /// A new link at the origin from an AS never seen giving transit (type-1 hijack).
        ForgedOrigin,
    }

    impl Cond {
        /// Every condition, in bit order.
        pub const ALL: [Cond; COUNT] = [
            Cond::RpkiInvalid,
            Cond::RpkiNotFound,
            Cond::AspaInvalid,
            Cond::AsSet,
            Cond::ReservedAsn,
            Cond::Bogon,
            Cond::TooSpecific,
            Cond::PrefixSet,
            Cond::Moas,
            Cond::SubPrefix,
            Cond::Squat,
            Cond::Unconfirmed,
            Cond::Untrusted,
            Cond::Recurring,
            Cond::ForgedOrigin,
        ];

        pub const fn bit(self) -> u16 {
            1 << self as u8
        }

        /// The policy key that names it (in decisions' reasons).
        pub const fn rule(self) -> &'static str {
            match self {
                Cond::RpkiInvalid => "rpki.invalid",
                Cond::RpkiNotFound => "rpki.not_found",
                Cond::AspaInvalid => "anomalies.aspa_invalid",
                Cond::AsSet => "anomalies.as_set",
                Cond::ReservedAsn => "anomalies.reserved_asn",
                Cond::Bogon => "anomalies.bogon",
                Cond::TooSpecific => "anomalies.too_specific",
                Cond::PrefixSet => "prefix_sets",
                Cond::Moas => "conflicts.moas",
                Cond::SubPrefix => "conflicts.sub_prefix",
                Cond::Squat => "conflicts.squat",
                Cond::Unconfirmed => "confirm.on_unconfirmed",
                Cond::Untrusted => "conflicts.untrusted_source",
                Cond::Recurring => "conflicts.recurring",
                Cond::ForgedOrigin => "conflicts.forged_origin",
            }
        }

        /// What `policy` does with a route that meets it (a prefix set's action is per
        /// set: see `set_action`).
        pub fn action(self, policy: &Policy) -> Action {
            match self {
                Cond::RpkiInvalid => policy.rpki.invalid,
                Cond::RpkiNotFound => policy.rpki.not_found,
                Cond::AspaInvalid => policy.anomalies.aspa_invalid,
                Cond::AsSet => policy.anomalies.as_set,
                Cond::ReservedAsn => policy.anomalies.reserved_asn,
                Cond::Bogon => policy.anomalies.bogon,
                Cond::TooSpecific => policy.anomalies.too_specific,
                Cond::PrefixSet => Action::Reject,
                Cond::Moas => policy.conflicts.moas,
                Cond::SubPrefix => policy.conflicts.sub_prefix,
                Cond::Squat => policy.conflicts.squat,
                Cond::Unconfirmed => policy.confirm.on_unconfirmed,
                Cond::Untrusted => policy.conflicts.untrusted_source,
                Cond::Recurring => policy.conflicts.recurring,
                Cond::ForgedOrigin => policy.conflicts.forged_origin,
            }
        }
    }

    pub const COUNT: usize = 15;
    // Each condition sits at its own position in `ALL` (so its bit is its index).
    const _: () = {
        let mut i = 0;
        while i < COUNT {
            assert!(Cond::ALL[i] as usize == i);
            i += 1;
        }
    };
    pub const RPKI_INVALID: u16 = Cond::RpkiInvalid.bit();
    pub const RPKI_NOT_FOUND: u16 = Cond::RpkiNotFound.bit();
    pub const ASPA_INVALID: u16 = Cond::AspaInvalid.bit();
    pub const AS_SET: u16 = Cond::AsSet.bit();
    pub const RESERVED_ASN: u16 = Cond::ReservedAsn.bit();
    pub const BOGON: u16 = Cond::Bogon.bit();
    pub const TOO_SPECIFIC: u16 = Cond::TooSpecific.bit();
    pub const PREFIX_SET: u16 = Cond::PrefixSet.bit();
    pub const MOAS: u16 = Cond::Moas.bit();
    pub const SUB_PREFIX: u16 = Cond::SubPrefix.bit();
    pub const SQUAT: u16 = Cond::Squat.bit();
    pub const UNCONFIRMED: u16 = Cond::Unconfirmed.bit();
    pub const UNTRUSTED: u16 = Cond::Untrusted.bit();
    pub const RECURRING: u16 = Cond::Recurring.bit();
    pub const FORGED_ORIGIN: u16 = Cond::ForgedOrigin.bit();
    pub const CONFLICT: u16 = MOAS | SUB_PREFIX | SQUAT;
    /// A claim contradicting a holder it has no relationship with: never gains standing;
    /// held while it lasts (MOAS, sub-prefix) or watched (recurring).
    pub const SUSPECT: u16 = MOAS | SUB_PREFIX | RECURRING;
}

/// One announcement, as the judge needs it.
#[derive(Clone, Copy, Debug)]
pub struct Announce<'p> {
    pub time: EventTime,
    pub peer: PeerIdx,
    pub prefix: IpNet,
    /// The prefix's dense id (from [`crate::rib::PrefixTable`]): claims are kept per id.
    pub prefix_id: PrefixId,
    pub path_id: Option<u32>,
    pub path: &'p AsPath,
    /// The RFC 6811 origin (`None`: the path ends in an AS_SET).
    pub origin: Option<Asn>,
    pub rov: RovState,
    /// State transfer (a RIB dump entry): learn the claim, raise no conflict.
    pub snapshot: bool,
}

#[derive(Clone, Copy, Debug)]
struct Witness {
    peer: u32,
    path_id: u32,
    since: EventTime,
    /// The AS just before the origin on this witness's path.
    neighbour: u32,
    /// Route-level conditions (ASPA, AS_SET, reserved ASN).
    flags: u16,
    /// The route's outcome now (propagate unless held), and since when it is held: the
    /// route's state lives with the route.
    outcome: Outcome,
    held_since: EventTime,
}

struct Claim {
    prefix: IpNet,
    prefix_id: u32,
    origin: Option<Asn>,
    /// Next claim of the same prefix.
    next: u32,
    /// Bumped when the slot is reused, so stale timers are recognised.
    gen: u32,
    live: bool,
    /// Claim-level conditions.
    flags: u16,
    set_action: Action,
    rov: RovState,
    first_seen: EventTime,
    established: Option<EventTime>,
    gone_since: Option<EventTime>,
    /// Index into the conflict records (`NONE`: no conflict).
    conflict: u32,
    /// A new origin related to the holder of its prefix, which contradicts what other
    /// observers see (MOAS): standing only once independent witnesses confirm it (the
    /// lying-observer question), watched meanwhile.
    awaiting: bool,
    /// Learned from state transfer while it would have contradicted a holder: neither
    /// held nor given standing until announced as news.
    unchecked: bool,
    /// Inline for the one-witness claims that dominate update streams (no allocation).
    witnesses: SmallVec<[Witness; 1]>,
}

/// What an operator can do to a claim (through the API): hold its routes whatever the
/// rules say, or release them whatever the rules say. It lasts while the claim lives
/// (a claim nobody announces any more is forgotten, and its override with it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OperatorAction {
    Hold,
    Release,
}

/// A claim's id in URLs: `ADDRESS-LENGTH-ORIGIN`, e.g. `203.0.113.0-24-AS65099`, or
/// `...-AS_SET` for a path ending in an AS_SET (no `/`, so it is one path segment).
pub fn claim_id(prefix: &IpNet, origin: Option<Asn>) -> String {
    let o = origin.map_or("AS_SET".to_string(), |o| format!("AS{}", o.0));
    format!("{}-{}-{o}", prefix.addr(), prefix.prefix_len())
}

/// The claim a [`claim_id`] names.
pub fn parse_claim_id(id: &str) -> Option<(IpNet, Option<Asn>)> {
    let mut parts = id.rsplitn(3, '-');
    let origin = match parts.next()? {
        "AS_SET" => None,
        o => Some(Asn(o.strip_prefix("AS")?.parse().ok()?)),
    };
    let len: u8 = parts.next()?.parse().ok()?;
    let addr: IpAddr = parts.next()?.parse().ok()?;
    let prefix = IpNet::new(addr, len).ok()?.trunc();
    Some((prefix, origin))
}

/// What a judge carries across a restart ([`Judge::save`], [`Judge::restore`]; kept in
/// SQLite by [`crate::state`]): enough that a restarted daemon judges the routes its
/// routers send again as it judged them before: which claims were established (so a
/// hijack held before is held again, not learned in a new warm-up), each peer's trust,
/// the operators' holds and releases, its clock and its decision numbering.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Saved {
    /// When the judge started (its warm-up runs from here).
    pub started: Option<EventTime>,
    pub now: Option<EventTime>,
    /// The last decision's sequence number.
    pub seq: u64,
    pub trust: Vec<SavedTrust>,
    /// Established claims; `None` from [`Judge::save`] when asked without them.
    pub claims: Option<Vec<SavedClaim>>,
    pub operators: Vec<SavedOperator>,
}

/// A peer's trust, by the peer's identity (feed, address, AS): peer indexes are handed
/// out anew by every run.
#[derive(Clone, Debug, PartialEq)]
pub struct SavedTrust {
    pub feed: Arc<str>,
    pub addr: IpAddr,
    pub asn: Asn,
    pub score: TrustScore,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SavedClaim {
    pub prefix: IpNet,
    pub origin: Option<Asn>,
    pub established: EventTime,
    /// Set when nobody announced it any more at the save.
    pub gone_since: Option<EventTime>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedOperator {
    pub prefix: IpNet,
    pub origin: Option<Asn>,
    pub action: OperatorAction,
    pub note: Arc<str>,
}

/// A route held now, for the API.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HeldRoute {
    /// The claim's id in URLs (see [`claim_id`]): what the API's hold and release take.
    pub id: String,
    pub prefix: IpNet,
    pub origin: Option<Asn>,
    pub peer: IpAddr,
    pub peer_asn: Asn,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_id: Option<u32>,
    pub outcome: Outcome,
    pub since: EventTime,
    /// The rules holding it now.
    pub rules: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct RouteKey {
    peer: u32,
    prefix: u32,
    path_id: u32,
}

/// A route's hold: its outcome and since when (read from its witness entry).
#[derive(Clone, Copy, Debug)]
struct Held {
    outcome: Outcome,
    since: EventTime,
}

struct PeerState {
    peer: Peer,
    role: PeerRole,
    trust: TrustScore,
    /// Routes of this peer quarantined or rejected now (for the trust table).
    held: u32,
    /// New claims it brought in the minute starting at `burst_start` (µs), whether it is
    /// sending a table (see `StandingPolicy::transfer_burst`), and the suspected claims it
    /// brought in that minute before the burst showed (claim, generation).
    burst_start: i64,
    burst: u32,
    transfer: bool,
    burst_suspects: SmallVec<[(u32, u32); 2]>,
    /// Below the trust floor at its last bad evidence (and not seen above it since).
    low: bool,
    /// Its witness domain: the monitored router it is seen through (BMP), numbered from
    /// 1; 0 for a peer that is a domain of its own (a collector's BGP session).
    domain: u32,
}

/// Kinds of conflicting claims.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConflictKind {
    Moas,
    SubPrefix,
    Squat,
}

impl ConflictKind {
    pub fn name(self) -> &'static str {
        match self {
            ConflictKind::Moas => "moas",
            ConflictKind::SubPrefix => "sub-prefix",
            ConflictKind::Squat => "squat",
        }
    }
}

/// How a conflict ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Resolution {
    /// Still waiting for witnesses.
    Pending,
    /// Enough independent, trusted witnesses confirmed it: it is established.
    Confirmed,
    /// Not confirmed within the window: its witnesses lost trust.
    Refuted,
    /// Every witness withdrew it before it was confirmed.
    Withdrawn,
    /// The new origin is related to the holder (see [`crate::judge::standing`]): a
    /// legitimate change, recorded, not held.
    Legitimate,
}

impl Resolution {
    pub fn name(self) -> &'static str {
        match self {
            Resolution::Pending => "pending",
            Resolution::Confirmed => "confirmed",
            Resolution::Refuted => "refuted",
            Resolution::Withdrawn => "withdrawn",
            Resolution::Legitimate => "legitimate",
        }
    }
}

/// One conflicting claim and what became of it.
#[derive(Clone, Debug, Serialize)]
pub struct ConflictRecord {
    pub kind: ConflictKind,
    pub prefix: IpNet,
    pub origin: Option<Asn>,
    pub against: Vec<ClaimRef>,
    pub first_seen: EventTime,
    pub rpki: &'static str,
    /// How the new origin is related to the holder, when it is (`None` for a MOAS or
    /// sub-prefix conflict: a suspected hijack, held while it lasts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relation: Option<Relation>,
    pub resolution: Resolution,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<EventTime>,
    /// The witnesses when it was resolved (or now, while pending).
    pub witnesses: WitnessCount,
    /// Routes held because of it, over its life.
    pub routes_held: u64,
}

/// Counters of what the judge did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct JudgeStats {
    pub decisions: u64,
    /// Transitions into quarantine.
    pub quarantined: u64,
    /// Transitions into reject.
    pub rejected: u64,
    /// Held routes released to propagate.
    pub released: u64,
    /// Held routes that went away (withdrawn or session down).
    pub withdrawn_while_held: u64,
    pub claims_established: u64,
    pub conflicts: u64,
    pub conflicts_confirmed: u64,
    pub conflicts_refuted: u64,
    pub conflicts_withdrawn: u64,
    /// New origins and more-specifics related to their holder (not held).
    pub legitimate_changes: u64,
    /// Announcements taken as state transfer (a table-sized burst from one peer).
    pub transfer_routes: u64,
    pub claims_forgotten: u64,
}

/// A peer's trust, for reports and the API.
#[derive(Clone, Debug, Serialize)]
pub struct PeerTrust {
    pub peer: Peer,
    pub score: f64,
    pub below_floor: bool,
    /// Decayed evidence at the time asked: (good, bad) weights.
    pub good: f64,
    pub bad: f64,
    pub counts: super::trust::TrustCounts,
    pub routes_held: u32,
}

/// One claim as the judge sees it now.
#[derive(Clone, Debug, Serialize)]
pub struct ClaimView {
    pub prefix: IpNet,
    pub origin: Option<Asn>,
    pub first_seen: EventTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub established: Option<EventTime>,
    /// Set while nobody announces an established claim (it is remembered a while).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gone_since: Option<EventTime>,
    pub rpki: &'static str,
    /// Claim-level conditions by policy rule (e.g. `conflicts.sub_prefix` while held).
    pub conditions: Vec<&'static str>,
    pub witnesses: WitnessCount,
}

/// Prefix tries for both families, values copied out.
struct Tries<T: Copy> {
    v4: PrefixMap<Ipv4Net, T>,
    v6: PrefixMap<Ipv6Net, T>,
}

impl<T: Copy> Default for Tries<T> {
    fn default() -> Self {
        Tries {
            v4: PrefixMap::new(),
            v6: PrefixMap::new(),
        }
    }
}

impl<T: Copy> Tries<T> {
    fn insert(&mut self, p: IpNet, v: T) {
        match p {
            IpNet::V4(n) => {
                self.v4.insert(n, v);
            }
            IpNet::V6(n) => {
                self.v6.insert(n, v);
            }
        }
    }
    fn remove(&mut self, p: &IpNet) {
        match p {
            IpNet::V4(n) => {
                self.v4.remove(n);
            }
            IpNet::V6(n) => {
                self.v6.remove(n);
            }
        }
    }
    /// Prefixes that cover `p` (itself included), least specific first.
    fn cover(&self, p: &IpNet) -> Vec<(IpNet, T)> {
        match p {
            IpNet::V4(n) => self.v4.cover(n).map(|(k, v)| (IpNet::V4(k), *v)).collect(),
            IpNet::V6(n) => self.v6.cover(n).map(|(k, v)| (IpNet::V6(k), *v)).collect(),
        }
    }
    /// Does any prefix within `p` (itself included) satisfy `f`?
    fn any_within(&self, p: &IpNet, f: impl Fn(T) -> bool) -> bool {
        match p {
            IpNet::V4(n) => self.v4.children(n).any(|(_, v)| f(*v)),
            IpNet::V6(n) => self.v6.children(n).any(|(_, v)| f(*v)),
        }
    }
}

/// Conflict records kept in full (all are counted): legitimate changes up to the first,
/// suspected hijacks (which hold routes, and whose reasons cite the record) up to the
/// second.
const CONFLICTS_KEPT: usize = 10_000;
const SUSPECTS_KEPT: usize = 100_000;
/// How often (event time, µs) stale flap marks are swept.
const SWEEP_EVERY: i64 = 60_000_000;

/// The judge. Feed it events in order; take its decisions with [`Judge::drain`].
pub struct Judge<'a> {
    policy: Policy,
    policy_hash: Arc<str>,
    index: RpkiRef<'a, VrpIndex>,
    aspa: RpkiRef<'a, AspaSet>,
    honour_expires: bool,
    rpki_serial: Option<u64>,
    actions: [Action; cond::COUNT],
    hold_mask: u16,
    peers: Vec<PeerState>,
    claims: Vec<Claim>,
    /// Operators' overrides by claim slot (few: kept out of the claims), with their notes.
    operators: FxHashMap<u32, (OperatorAction, Arc<str>)>,
    /// Restored operator overrides whose claim is not live yet (by prefix id and origin):
    /// applied when it appears.
    restored_ops: FxHashMap<(u32, Option<Asn>), SavedOperator>,
    /// Restored trust of peers not registered yet, by identity.
    restored_trust: FxHashMap<(Arc<str>, IpAddr, Asn), TrustScore>,
    /// Witness domains (monitored routers) by feed, numbered from 1.
    domains: FxHashMap<Arc<str>, u32>,
    /// Bumped whenever the set of established claims (or one's `gone_since`) changes, so
    /// a caller saving the state knows when the claims need saving again.
    claims_version: u64,
    /// One bit per claim slot, set while the claim is live: a peer going down scans this
    /// rather than every 136-byte claim (measured on the update bench's 24 session
    /// resets: peer-down handling went from 0.20 to 0.12 s in all).
    live: Vec<u64>,
    free: Vec<u32>,
    heads: Vec<u32>,
    /// Prefixes with an established claim (value: prefix id).
    established: Tries<u32>,
    /// For squats: every prefix announced, with `EventTime(i64::MAX)` while announced or
    /// the time it was last withdrawn. Kept only when squats are judged.
    seen: Option<Tries<EventTime>>,
    /// (deadline, claim, generation) of conflicts waiting for confirmation.
    pending: BTreeSet<(EventTime, u32, u32)>,
    /// (due, route) of releases waiting for the hold-down.
    hold_timers: BTreeSet<(EventTime, RouteKey)>,
    /// (when, claim, generation) of established claims whose witnesses all left.
    gone: VecDeque<(EventTime, u32, u32)>,
    /// (peer, prefix) -> when that peer last withdrew that prefix (flaps).
    withdrawn: FxHashMap<(u32, u32), EventTime>,
    next_sweep: EventTime,
    now: EventTime,
    started: Option<EventTime>,
    seq: u64,
    /// Build the decisions (`false`: only count them, for a replay whose report needs no
    /// more; see [`Judge::keep_decisions`]).
    keep: bool,
    out: Vec<Decision>,
    /// Peers whose trust fell below the floor since [`Judge::take_fallen`] was last
    /// called (each once per fall).
    fallen: Vec<u32>,
    conflicts: Vec<ConflictRecord>,
    stats: JudgeStats,
    /// Links at the origins of propagated routes (standing's evidence).
    links: Links,
    /// The holders each suspected claim contradicts (by claim slot; few).
    suspects: FxHashMap<u32, SmallVec<[u32; 2]>>,
    /// (prefix id, origin) -> when an unrelated origin last claimed that space (held or
    /// watched), for `conflicts.recurring`; swept after `conflicts.memory`.
    tried: FxHashMap<(u32, u32), EventTime>,
    /// Conflicting claims in bursts, per origin (mass hijacks, [`MASS_CLAIMS`]).
    origin_bursts: FxHashMap<u32, OriginBurst>,
    /// The last path whose carriers were recorded as transit.
    last_carried: Option<AsPath>,
}

fn neighbour_of(path: &AsPath, origin: Option<Asn>, speaker: Asn) -> u32 {
    let Some(o) = origin else {
        return speaker.0;
    };
    let mut prev = None;
    let mut last = None;
    for (kind, asns) in path.segments() {
        if kind != SegmentKind::Sequence {
            continue;
        }
        for &a in asns {
            if last != Some(a) {
                prev = last;
                last = Some(a);
            }
        }
    }
    match (prev, last) {
        (Some(p), Some(l)) if l == o.0 => p,
        _ => o.0,
    }
}

/// Private, documentation and reserved ASNs (and AS_TRANS): a path's artefacts, not
/// networks whose links mean anything.
fn reserved_asn(a: u32) -> bool {
    a == 0 || a == 23456 || (64496..=131071).contains(&a) || (4_200_000_000..=u32::MAX).contains(&a)
}

/// Can the origin be held to a claim? Not an AS_SET (no single origin), not AS_TRANS
/// (AS23456: a 2-byte speaker's stand-in for any 4-byte AS).
fn attributable(origin: Option<Asn>) -> bool {
    origin.is_some_and(|o| o.0 != 23456)
}

/// The ASes of a path's sequences in order, prepends collapsed.
fn path_asns(path: &AsPath) -> SmallVec<[u32; 8]> {
    path.sequence_asns()
}

fn afi(p: &IpNet) -> AspaAfi {
    match p {
        IpNet::V4(_) => AspaAfi::Ipv4,
        IpNet::V6(_) => AspaAfi::Ipv6,
    }
}

fn contains(net: &IpNet, p: &IpNet) -> bool {
    net.contains(p)
}

impl<'a> Judge<'a> {
    /// A judge under `policy`, with the RPKI snapshot `index` / `aspa`. `rpki_serial` is
    /// recorded in every decision.
    pub fn new(
        policy: Policy,
        index: impl Into<RpkiRef<'a, VrpIndex>>,
        aspa: impl Into<RpkiRef<'a, AspaSet>>,
        honour_expires: bool,
        rpki_serial: Option<u64>,
    ) -> Self {
        let (actions, hold_mask) = Self::actions_of(&policy);
        let seen = (policy.conflicts.squat != Action::Propagate).then(Tries::default);
        Judge {
            policy_hash: Arc::from(policy.hash()),
            policy,
            index: index.into(),
            aspa: aspa.into(),
            honour_expires,
            rpki_serial,
            actions,
            hold_mask,
            peers: Vec::new(),
            claims: Vec::new(),
            operators: FxHashMap::default(),
            restored_ops: FxHashMap::default(),
            restored_trust: FxHashMap::default(),
            domains: FxHashMap::default(),
            claims_version: 0,
            live: Vec::new(),
            free: Vec::new(),
            heads: Vec::new(),
            established: Tries::default(),
            seen,
            pending: BTreeSet::new(),
            hold_timers: BTreeSet::new(),
            gone: VecDeque::new(),
            withdrawn: FxHashMap::default(),
            next_sweep: EventTime(i64::MIN),
            now: EventTime(i64::MIN),
            started: None,
            seq: 0,
            keep: true,
            out: Vec::new(),
            fallen: Vec::new(),
            conflicts: Vec::new(),
            stats: JudgeStats::default(),
            links: Links::default(),
            suspects: FxHashMap::default(),
            tried: FxHashMap::default(),
            origin_bursts: FxHashMap::default(),
            last_carried: None,
        }
    }

    /// The action of each condition under `policy`, and the conditions that hold a route.
    fn actions_of(policy: &Policy) -> ([Action; cond::COUNT], u16) {
        let actions = cond::Cond::ALL.map(|c| c.action(policy));
        let mut hold_mask = 0u16;
        for (c, act) in cond::Cond::ALL.iter().zip(&actions) {
            if *act != Action::Propagate {
                hold_mask |= c.bit();
            }
        }
        hold_mask |= cond::PREFIX_SET;
        (actions, hold_mask)
    }

    /// What the policy does with a route that meets `c`.
    fn action(&self, c: cond::Cond) -> Action {
        self.actions[c as usize]
    }

    /// Swaps the policy of a running judge (the daemon's SIGHUP). Actions, thresholds,
    /// trust parameters, prefix sets and allow-lists apply at once: every live claim's
    /// prefix conditions are recomputed, its standing re-judged, and each of its routes
    /// whose outcome changes gets a decision with cause `policy` (a release still waits
    /// out the hold-down). Two things apply only to routes announced after the swap, as
    /// the judge keeps no paths: peer roles (ASPA is checked on the path when it arrives)
    /// and the squat history (it starts now when squats are turned on); likewise the
    /// transit ASes forged-origin checks read are learned only while a policy acts on
    /// them, so turning `conflicts.forged_origin` on starts that knowledge afresh.
    pub fn set_policy(&mut self, policy: Policy, time: EventTime) {
        self.advance(time);
        let t = self.now;
        let (actions, hold_mask) = Self::actions_of(&policy);
        self.actions = actions;
        self.hold_mask = hold_mask;
        self.policy_hash = Arc::from(policy.hash());
        let squat = policy.conflicts.squat != Action::Propagate;
        if squat && self.seen.is_none() {
            self.seen = Some(Tries::default());
        } else if !squat {
            self.seen = None;
        }
        self.policy = policy;
        for p in &mut self.peers {
            p.role = self.policy.role_of(p.peer.asn);
        }
        let prefix_bits = cond::BOGON | cond::TOO_SPECIFIC | cond::PREFIX_SET;
        let live: Vec<u32> = self.live_claims().collect();
        for c in live {
            let (prefix, origin) = {
                let cl = &self.claims[c as usize];
                (cl.prefix, cl.origin)
            };
            let (flags, set_action) = self.prefix_conditions(&prefix, origin);
            {
                let cl = &mut self.claims[c as usize];
                cl.flags = (cl.flags & !prefix_bits) | flags;
                cl.set_action = set_action;
            }
            self.evaluate_claim(c, t, None);
            // The claim may have been re-judged (and its witnesses with it).
            if !self.claims[c as usize].live {
                continue;
            }
            for wi in 0..self.claims[c as usize].witnesses.len() {
                self.evaluate_route(c, wi, t, Cause::Policy, None);
            }
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn policy_hash(&self) -> &str {
        &self.policy_hash
    }

    pub fn stats(&self) -> JudgeStats {
        self.stats
    }

    /// The conflict records (the first 10,000; all are counted in stats).
    pub fn conflicts(&self) -> &[ConflictRecord] {
        &self.conflicts
    }

    /// Takes the decisions made since the last call.
    pub fn drain(&mut self) -> std::vec::Drain<'_, Decision> {
        self.out.drain(..)
    }

    /// Drops the decisions made since the last drain (for a caller that only needs the
    /// counts in [`Self::stats`]): cheaper than draining them one by one.
    pub fn discard_decisions(&mut self) {
        self.out.clear();
    }

    /// `false`: decisions are counted in [`Self::stats`] (and numbered) but not built, for
    /// a caller that would discard them all; nothing else changes. Measured on the 4.6 M
    /// event update bench (1.5 M decisions): 0.1 s less CPU on the judging thread, most of
    /// it each held route's reasons.
    pub fn keep_decisions(&mut self, keep: bool) {
        self.keep = keep;
        if !keep {
            self.out.clear();
        }
    }

    /// An operator holds or releases the claim (prefix, origin): its routes are
    /// re-judged now (decisions with cause `operator`). `note` says who and why; it goes
    /// into the hold's reason. Returns the routes the claim has, or `None` when no such
    /// claim is live.
    pub fn operator(
        &mut self,
        prefix_id: PrefixId,
        origin: Option<Asn>,
        action: OperatorAction,
        note: &str,
        time: EventTime,
    ) -> Option<usize> {
        self.advance(time);
        let t = self.now;
        let c = self.find_claim(prefix_id.0, origin)?;
        self.operators.insert(c, (action, Arc::from(note)));
        let n = self.claims[c as usize].witnesses.len();
        for i in 0..n {
            self.evaluate_route(c, i, t, Cause::Operator, None);
        }
        Some(n)
    }

    /// The latest time seen.
    pub fn now(&self) -> EventTime {
        self.now
    }

    fn trust_of(&self, peer: u32, t: EventTime) -> f64 {
        self.peers
            .get(peer as usize)
            .map_or(self.policy.trust.prior, |p| {
                p.trust.score(&self.policy.trust, t)
            })
    }

    /// Still learning (see `Policy::warmup`)?
    fn learning(&self, t: EventTime) -> bool {
        self.started
            .is_some_and(|s| t.0.saturating_sub(s.0) < micros(self.policy.warmup))
    }

    fn evidence(&mut self, peer: u32, t: EventTime, e: Evidence) {
        let good = matches!(e, Evidence::ConfirmedValid | Evidence::ConfirmedNotFound);
        if !good && self.learning(t) {
            return;
        }
        let tp = &self.policy.trust;
        if let Some(p) = self.peers.get_mut(peer as usize) {
            p.trust.record(tp, t, e);
            // Only bad evidence lowers a score: the floor is looked at then, and on good
            // evidence only while the peer is marked low.
            if !good || p.low {
                let low = p.trust.score(tp, t) < tp.floor;
                if low && !p.low {
                    self.fallen.push(peer);
                }
                p.low = low;
            }
        }
    }

    /// The peers whose trust fell below the floor since the last call, with their trust
    /// now: each once per fall, at the evidence that took it there (the daemon's
    /// `peer.trust_low` alert).
    pub fn take_fallen(&mut self) -> Vec<PeerTrust> {
        if self.fallen.is_empty() {
            return Vec::new();
        }
        let fallen = std::mem::take(&mut self.fallen);
        let table = self.trust_table(self.now);
        fallen
            .into_iter()
            .filter_map(|i| table.get(i as usize).cloned())
            .filter(|t| t.below_floor)
            .collect()
    }

    // ----- time -----

    /// Moves time forward to `t` (never back) and runs every timer due by then, each at
    /// its own time: confirmation deadlines, hold-down releases, forgetting.
    pub fn advance(&mut self, t: EventTime) {
        if self.started.is_none() {
            self.started = Some(t);
        }
        if t > self.now {
            self.now = t;
        }
        let now = self.now;
        let memory = micros(self.policy.conflicts.memory);
        // The three timer queues fire in one time order, earliest first, so decisions come
        // out in the order of their times.
        loop {
            let refute = self.pending.first().map(|&(due, ..)| due);
            let hold = self.hold_timers.first().map(|&(due, _)| due);
            let forget = self
                .gone
                .front()
                .map(|&(since, ..)| EventTime(since.0.saturating_add(memory)));
            let Some(next) = [refute, hold, forget].into_iter().flatten().min() else {
                break;
            };
            if next > now {
                break;
            }
            if refute == Some(next) {
                if let Some((due, c, gen)) = self.pending.pop_first() {
                    self.refute(c, gen, due);
                }
            } else if hold == Some(next) {
                if let Some((due, key)) = self.hold_timers.pop_first() {
                    self.reevaluate_route(key, due, Cause::HoldDownEnded);
                }
            } else if let Some((since, c, gen)) = self.gone.pop_front() {
                self.forget(c, gen, since);
            }
        }
        if now >= self.next_sweep {
            let keep = micros(self.policy.trust.flap_interval);
            self.withdrawn
                .retain(|_, w| w.0.saturating_add(keep) >= now.0);
            if !self.tried.is_empty() {
                let memory = micros(self.policy.conflicts.memory);
                self.tried
                    .retain(|_, w| w.0.saturating_add(memory) >= now.0);
            }
            self.next_sweep = EventTime(now.0.saturating_add(SWEEP_EVERY));
        }
    }

    // ----- claims -----

    fn allowed(&self, prefix: &IpNet) -> bool {
        self.policy
            .allow
            .prefixes
            .iter()
            .any(|n| contains(n, prefix))
    }

    /// Conditions that depend only on the prefix and origin.
    fn prefix_conditions(&self, prefix: &IpNet, origin: Option<Asn>) -> (u16, Action) {
        let mut flags = 0;
        let mut set_action = Action::Propagate;
        if anomaly::bogon(prefix).is_some() {
            flags |= cond::BOGON;
        }
        let max = match prefix {
            IpNet::V4(_) => self.policy.anomalies.max_length_v4,
            IpNet::V6(_) => self.policy.anomalies.max_length_v6,
        };
        if prefix.prefix_len() > max && !self.allowed(prefix) {
            flags |= cond::TOO_SPECIFIC;
        }
        for s in &self.policy.prefix_sets {
            if !s.prefixes.iter().any(|n| contains(n, prefix)) {
                continue;
            }
            let bad_origin = origin.is_none_or(|o| !s.origins.contains(&o));
            let too_long = s.max_length.is_some_and(|m| prefix.prefix_len() > m);
            if bad_origin || too_long {
                flags |= cond::PREFIX_SET;
                set_action = set_action.max(s.action);
            }
        }
        if set_action == Action::Propagate {
            flags &= !cond::PREFIX_SET;
        }
        (flags, set_action)
    }

    fn rov_flags(rov: RovState) -> u16 {
        match rov {
            RovState::Valid => 0,
            RovState::Invalid(_) => cond::RPKI_INVALID,
            RovState::NotFound => cond::RPKI_NOT_FOUND,
        }
    }

    /// Route-level conditions of a path from peer `p`.
    fn path_flags(&self, a: &Announce<'_>, p: u32) -> u16 {
        let mut flags = 0;
        if a.path.segments().any(|(k, _)| k == SegmentKind::Set) {
            flags |= cond::AS_SET;
        }
        if anomaly::reserved_in_path(a.path).is_some() {
            flags |= cond::RESERVED_ASN;
        }
        flags | self.aspa_flag(a.path, &a.prefix, a.time, p)
    }

    /// The ASPA verification of a path from peer `p`, in the direction of the peer's role
    /// (`None` for a peer with no role). A Loc-RIB peer's paths are the router's own
    /// selection ([`AspaSet::verify_selected`]): an empty one is a route it originates.
    fn aspa_verdict(
        &self,
        path: &AsPath,
        prefix: &IpNet,
        time: EventTime,
        p: u32,
    ) -> Option<crate::rpki::aspa::AspaVerdict> {
        let peer = &self.peers[p as usize];
        let dir = direction(peer.role)?;
        let at = self.honour_expires.then(|| time.secs());
        Some(if peer.peer.loc_rib {
            self.aspa.verify_selected(path, dir, afi(prefix), at)
        } else {
            self.aspa.verify(path, dir, afi(prefix), at)
        })
    }

    /// [`cond::ASPA_INVALID`] when the path from peer `p` fails ASPA verification.
    fn aspa_flag(&self, path: &AsPath, prefix: &IpNet, time: EventTime, p: u32) -> u16 {
        if self.aspa.is_empty() {
            return 0;
        }
        match self.aspa_verdict(path, prefix, time, p) {
            Some(v) if v.state == AspaState::Invalid => cond::ASPA_INVALID,
            _ => 0,
        }
    }

    /// Swaps in a new RPKI data set (the daemon's RPKI source changed) and re-judges
    /// every live claim against it: its origin validation, and each of its routes' ASPA
    /// verification (the path comes from `path_of`, as the judge keeps none; a route whose
    /// path is not found keeps its old ASPA verdict). Routes whose outcome changes get a
    /// decision with cause `rpki` and the new serial; the peers' trust is left alone (they
    /// did nothing). Returns the claims whose origin validation changed.
    pub fn set_rpki(
        &mut self,
        index: impl Into<RpkiRef<'a, VrpIndex>>,
        aspa: impl Into<RpkiRef<'a, AspaSet>>,
        rpki_serial: Option<u64>,
        time: EventTime,
        mut path_of: impl FnMut(PeerIdx, PrefixId, Option<u32>) -> Option<AsPath>,
    ) -> usize {
        self.advance(time);
        let t = self.now;
        self.index = index.into();
        self.aspa = aspa.into();
        self.rpki_serial = rpki_serial;
        let at = self.honour_expires.then(|| t.secs());
        let mut changed = 0;
        let live: Vec<u32> = self.live_claims().collect();
        for c in live {
            let (prefix, origin, old) = {
                let cl = &self.claims[c as usize];
                (cl.prefix, cl.origin, cl.rov)
            };
            let rov = crate::rpki::validate(&self.index, &prefix, origin, at);
            if rov != old {
                changed += 1;
                let cl = &mut self.claims[c as usize];
                cl.rov = rov;
                cl.flags = (cl.flags & !(cond::RPKI_INVALID | cond::RPKI_NOT_FOUND))
                    | Self::rov_flags(rov);
                // A ROA is the holder's own word: a suspected claim it authorises is not.
                let suspect = cl.flags & cond::SUSPECT != 0;
                if rov == RovState::Valid && suspect && !self.policy.conflicts.hold_rpki_valid {
                    cl.flags &= !cond::SUSPECT;
                    self.suspects.remove(&c);
                    self.resolve(c, t, Resolution::Confirmed);
                    if self.claims[c as usize].established.is_none() {
                        self.establish(c, t);
                    }
                }
            }
            let pid = self.claims[c as usize].prefix_id;
            for wi in 0..self.claims[c as usize].witnesses.len() {
                let w = self.claims[c as usize].witnesses[wi];
                let path_id = (w.path_id != 0).then_some(w.path_id);
                if let Some(path) = path_of(PeerIdx(w.peer), PrefixId(pid), path_id) {
                    let bit = self.aspa_flag(&path, &prefix, t, w.peer);
                    let wm = &mut self.claims[c as usize].witnesses[wi];
                    wm.flags = (wm.flags & !cond::ASPA_INVALID) | bit;
                }
                self.evaluate_route(c, wi, t, Cause::Rpki, None);
            }
        }
        changed
    }

    fn action_of(&self, bits: u16, set_action: Action) -> Action {
        let mut a = Action::Propagate;
        let mut b = bits;
        while b != 0 {
            let i = b.trailing_zeros() as usize;
            b &= b - 1;
            let act = if 1 << i == cond::PREFIX_SET {
                set_action
            } else {
                self.actions[i]
            };
            a = a.max(act);
        }
        a
    }
}

/// A peer the judge has seen routes from but no registration for.
/// The feed of a peer index used before it was registered.
const UNKNOWN_FEED: &str = "?";

fn unknown_peer() -> Peer {
    Peer {
        feed: Arc::from(UNKNOWN_FEED),
        addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        asn: Asn::ZERO,
        bgp_id: None,
        loc_rib: false,
        bmp: false,
    }
}

/// A mass hijack: this many conflicting claims of one origin in bursts, against at least
/// [`MASS_HOLDERS`] holders, within [`MASS_WINDOW`] (µs).
const MASS_CLAIMS: u32 = 20;
const MASS_HOLDERS: usize = 5;
const MASS_WINDOW: i64 = 120_000_000;

/// Conflicting claims of one origin that bursts brought, since `start` (µs): how many,
/// against which holders, from which peer ASes (two are enough to know it is not one
/// peer's table).
struct OriginBurst {
    start: i64,
    claims: u32,
    holders: SmallVec<[u32; 5]>,
    peers: SmallVec<[u32; 2]>,
}

impl OriginBurst {
    fn is_mass(&self) -> bool {
        self.claims >= MASS_CLAIMS && self.holders.len() >= MASS_HOLDERS && self.peers.len() >= 2
    }
}

fn direction(role: PeerRole) -> Option<Direction> {
    match role {
        PeerRole::Customer | PeerRole::Peer | PeerRole::RouteServer => Some(Direction::Upstream),
        PeerRole::Provider => Some(Direction::Downstream),
        PeerRole::None => None,
    }
}

fn micros(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}
