//! `routewitness eval`: what a policy does to real days. A replay of MRT files with a
//! labels file (incidents: kind, prefix, origin or path suffix, time window) that says,
//! per incident, whether and when it was first held, whether it stayed held until it
//! ended, and by which rule; and outside the incidents, the false holds: distinct claims
//! held, the most claims newly held in one minute, route-hours held, by rule.
//!
//! [`plan_injections`] builds labelled cases from a real background, as DFOH and the
//! hijack-detection literature evaluate (see `../shared/TRUTH.md` §6): origin, sub-prefix
//! and forged-origin hijacks, each announced from every peer that has a route to the
//! attacker at that moment, along that very path (a real hijack propagates along the
//! attacker's real paths), with delays that grow with the path, and withdrawn after a
//! while; and route leaks, where the leaker is an AS on a real path to the victim that
//! re-announces its route to everyone (each peer's path to the leaker, then the leaker's
//! route to the victim). The injected announcements are merged into the replay in time order
//! ([`crate::replay::ReplayConfig::inject`]); the MRT files are not rewritten.

use crate::ingest::{mrt, IngestEvent, PeerRegistry};
use crate::judge::{Decision, Outcome};
use crate::model::{AsPath, Asn, EventTime, RouteAction, RouteEvent};
use crate::replay::Observer;
use ipnet::IpNet;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// What kind of incident a label describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IncidentKind {
    /// Another origin for the victim's exact prefix (type-0).
    Origin,
    /// A more-specific of the victim's prefix from another origin (type-0 sub-prefix).
    SubPrefix,
    /// The victim's origin kept, the attacker in front of it (type-1).
    ForgedOrigin,
    /// A route leak.
    Leak,
    /// Anything else worth labelling.
    Other,
    /// Routes that must never be held (the victim fighting back, say): reported with
    /// how many of their announcements were held, and counted as false holds too.
    Legitimate,
}

/// One labelled incident (a line of the labels file, JSON).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Label {
    pub id: String,
    pub kind: IncidentKind,
    /// The prefix the incident announces (exact match).
    pub prefix: IpNet,
    /// The origin of the incident's routes, when it identifies them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Asn>,
    /// The incident's routes' paths end with these ASes (space-separated, origin last),
    /// e.g. "64500 36561" for a forged origin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// RFC 3339 or Unix seconds.
    pub start: String,
    pub end: String,
}

/// A label with its times and path parsed.
#[derive(Clone, Debug)]
struct Incident {
    label: Label,
    start: EventTime,
    end: EventTime,
    suffix: Vec<u32>,
}

fn parse_time(s: &str) -> Result<EventTime, String> {
    if let Ok(secs) = s.trim().parse::<i64>() {
        return Ok(EventTime::from_secs(secs));
    }
    chrono::DateTime::parse_from_rfc3339(s.trim())
        .map(|t| EventTime::from_secs(t.timestamp()))
        .map_err(|_| format!("{s:?} is not RFC 3339 or Unix seconds"))
}

/// Parses a time given on the command line or in a label.
pub fn time_arg(s: &str) -> Result<EventTime, String> {
    parse_time(s)
}

/// Reads a labels file: one JSON object per line (blank lines and `#` comments skipped).
/// Errors name the line.
pub fn read_labels(path: &Path) -> Result<Vec<Label>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let label: Label =
            serde_json::from_str(line).map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))?;
        for t in [&label.start, &label.end] {
            parse_time(t).map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))?;
        }
        out.push(label);
    }
    Ok(out)
}

/// The ASes of a path's sequences in order, prepends collapsed.
fn flat(path: &AsPath) -> Vec<u32> {
    path.sequence_asns().to_vec()
}

/// What became of one incident.
#[derive(Clone, Debug, Serialize)]
pub struct IncidentResult {
    pub id: String,
    pub kind: IncidentKind,
    pub prefix: IpNet,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<Asn>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub start: EventTime,
    pub end: EventTime,
    /// Announcements of the incident's routes seen in its window.
    pub announcements: u64,
    /// Of them, judged held (quarantine or reject) at once.
    pub held_announcements: u64,
    /// Peers named in its decisions (the peers whose routes of it were held or released).
    pub peers: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_announced: Option<EventTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_held: Option<EventTime>,
    /// The first announcement was held.
    pub held_at_first: bool,
    /// Releases of the incident's routes before it ended (not withdrawals).
    pub premature_releases: u64,
    /// Held from the first announcement until it ended: every announcement held, nothing
    /// released early.
    pub held_whole: bool,
    /// The rules that held it.
    pub rules: Vec<String>,
}

/// False holds (outside every incident) by rule.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RuleHolds {
    pub claims: u64,
    pub routes: u64,
    pub route_hours: f64,
}

/// A held claim outside the incidents, for the report's examples.
#[derive(Clone, Debug, Serialize)]
pub struct FalseHold {
    pub time: EventTime,
    pub prefix: IpNet,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<Asn>,
    pub rule: String,
    pub explanation: String,
    /// The most routes (peers, paths) of the claim held at once.
    pub most_routes: u32,
}

/// The whole evaluation.
#[derive(Clone, Debug, Serialize)]
pub struct EvalReport {
    pub policy: String,
    pub policy_hash: String,
    pub files: usize,
    /// False holds are counted from here (earlier events are history).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measured_from: Option<EventTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_event: Option<EventTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_event: Option<EventTime>,
    pub route_events: u64,
    pub elapsed_s: f64,
    pub events_per_s: f64,
    pub incidents: Vec<IncidentResult>,
    /// Per kind: incidents, held whole, held at first announcement.
    pub by_kind: BTreeMap<String, (u64, u64, u64)>,
    /// Distinct claims newly held outside the incidents, in the measured span.
    pub false_hold_claims: u64,
    /// Routes newly held outside the incidents.
    pub false_hold_routes: u64,
    /// The most claims newly held in one minute, and the minute.
    pub max_new_claims_per_minute: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub busiest_minute: Option<EventTime>,
    /// Claims held when the measured span began (held during the history, still held).
    pub carried_over_claims: u64,
    pub by_rule: BTreeMap<String, RuleHolds>,
    /// The first false holds (`--examples`, 50 by default).
    pub examples: Vec<FalseHold>,
    /// What the judge recorded as legitimate changes (related origins), and as state
    /// transfer.
    pub legitimate_changes: u64,
    pub transfer_routes: u64,
}

type RouteKey = (IpAddr, IpNet, Option<u32>);
type ClaimKey = (IpNet, Option<Asn>);
/// An open hold outside the incidents: since when, the rule, the claim.
type OpenHold = (EventTime, String, ClaimKey);

#[derive(Default)]
struct State {
    announcements: u64,
    held_announcements: u64,
    peers: BTreeSet<IpAddr>,
    first_announced: Option<EventTime>,
    first_held: Option<EventTime>,
    held_at_first: Option<bool>,
    premature_releases: u64,
    rules: BTreeSet<String>,
}

/// Follows a replay ([`Observer`]): the incidents' routes and every decision.
pub struct Tracker {
    incidents: Vec<Incident>,
    states: Vec<State>,
    by_prefix: FxHashMap<IpNet, Vec<usize>>,
    from: Option<EventTime>,
    /// Open holds outside the incidents: route -> (start, rule, claim).
    open: FxHashMap<RouteKey, OpenHold>,
    /// Held routes per claim (outside the incidents).
    claim_routes: FxHashMap<(IpNet, Option<Asn>), u32>,
    claims_seen: BTreeSet<(IpNet, Option<Asn>)>,
    /// The example of each explained claim, by index.
    example_of: FxHashMap<(IpNet, Option<Asn>), usize>,
    per_minute: FxHashMap<i64, u64>,
    by_rule: BTreeMap<String, RuleHolds>,
    rule_claims: BTreeSet<(String, IpNet, Option<Asn>)>,
    false_routes: u64,
    carried: BTreeSet<(IpNet, Option<Asn>)>,
    examples: Vec<FalseHold>,
    /// How many false holds the report explains (`--examples`).
    pub max_examples: usize,
    first: Option<EventTime>,
    last: Option<EventTime>,
    events: u64,
}

impl Tracker {
    /// A tracker for `labels`; false holds count from `from` (all of the replay without).
    pub fn new(labels: &[Label], from: Option<EventTime>) -> Result<Self, String> {
        let mut incidents = Vec::new();
        let mut by_prefix: FxHashMap<IpNet, Vec<usize>> = FxHashMap::default();
        for l in labels {
            let suffix = match &l.path {
                Some(p) => p
                    .split_whitespace()
                    .map(|a| {
                        a.trim_start_matches("AS")
                            .parse::<u32>()
                            .map_err(|_| format!("label {}: bad AS {a:?} in path", l.id))
                    })
                    .collect::<Result<Vec<_>, _>>()?,
                None => Vec::new(),
            };
            let prefix = l.prefix.trunc();
            by_prefix.entry(prefix).or_default().push(incidents.len());
            incidents.push(Incident {
                label: l.clone(),
                start: parse_time(&l.start)?,
                end: parse_time(&l.end)?,
                suffix,
            });
        }
        let states = incidents.iter().map(|_| State::default()).collect();
        Ok(Tracker {
            incidents,
            states,
            by_prefix,
            from,
            open: FxHashMap::default(),
            claim_routes: FxHashMap::default(),
            claims_seen: BTreeSet::new(),
            example_of: FxHashMap::default(),
            per_minute: FxHashMap::default(),
            by_rule: BTreeMap::new(),
            rule_claims: BTreeSet::new(),
            false_routes: 0,
            carried: BTreeSet::new(),
            examples: Vec::new(),
            max_examples: 50,
            first: None,
            last: None,
            events: 0,
        })
    }

    /// The incidents a route belongs to (at time `t`, with this origin and path).
    fn matching(
        &self,
        prefix: &IpNet,
        origin: Option<Asn>,
        path: Option<&AsPath>,
        t: EventTime,
        grace: i64,
    ) -> Vec<usize> {
        let Some(list) = self.by_prefix.get(prefix) else {
            return Vec::new();
        };
        list.iter()
            .copied()
            .filter(|&i| {
                let inc = &self.incidents[i];
                if t < inc.start || t.0 > inc.end.0.saturating_add(grace) {
                    return false;
                }
                if inc.label.origin.is_some() && inc.label.origin != origin {
                    return false;
                }
                if !inc.suffix.is_empty() {
                    let Some(p) = path else {
                        return false;
                    };
                    let f = flat(p);
                    if !f.ends_with(&inc.suffix) {
                        return false;
                    }
                }
                true
            })
            .collect()
    }

    fn measured(&self, t: EventTime) -> bool {
        self.from.is_none_or(|f| t >= f)
    }

    /// Closes the holds still open at the end, and writes the report.
    pub fn finish(
        mut self,
        policy: &str,
        policy_hash: &str,
        files: usize,
        elapsed_s: f64,
        stats: crate::judge::JudgeStats,
    ) -> EvalReport {
        let end = self.last.unwrap_or(EventTime(0));
        let open: Vec<_> = self.open.drain().collect();
        for (_, (start, rule, _)) in open {
            let r = self.by_rule.entry(rule).or_default();
            r.route_hours += hours(start, end);
        }
        let incidents: Vec<IncidentResult> = self
            .incidents
            .iter()
            .zip(&self.states)
            .map(|(inc, st)| {
                let held_at_first = st.held_at_first.unwrap_or(false);
                IncidentResult {
                    id: inc.label.id.clone(),
                    kind: inc.label.kind,
                    prefix: inc.label.prefix,
                    origin: inc.label.origin,
                    path: inc.label.path.clone(),
                    start: inc.start,
                    end: inc.end,
                    announcements: st.announcements,
                    held_announcements: st.held_announcements,
                    peers: st.peers.len(),
                    first_announced: st.first_announced,
                    first_held: st.first_held,
                    held_at_first,
                    premature_releases: st.premature_releases,
                    held_whole: st.announcements > 0
                        && held_at_first
                        && st.held_announcements == st.announcements
                        && st.premature_releases == 0,
                    rules: st.rules.iter().cloned().collect(),
                }
            })
            .collect();
        let mut by_kind: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
        for r in &incidents {
            let name = serde_json::to_value(r.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let e = by_kind.entry(name).or_default();
            e.0 += 1;
            if r.kind == IncidentKind::Legitimate {
                // Never held: counted as "held whole" when none of it was held.
                e.1 += (r.held_announcements == 0) as u64;
            } else {
                e.1 += r.held_whole as u64;
                e.2 += r.held_at_first as u64;
            }
        }
        let (busiest_minute, max_new) = self
            .per_minute
            .iter()
            .max_by_key(|(m, n)| (**n, std::cmp::Reverse(**m)))
            .map_or((None, 0), |(m, n)| (Some(EventTime(m * 60_000_000)), *n));
        EvalReport {
            policy: policy.to_string(),
            policy_hash: policy_hash.to_string(),
            files,
            measured_from: self.from,
            first_event: self.first,
            last_event: self.last,
            route_events: self.events,
            elapsed_s,
            events_per_s: if elapsed_s > 0.0 {
                self.events as f64 / elapsed_s
            } else {
                0.0
            },
            incidents,
            by_kind,
            false_hold_claims: self.claims_seen.len() as u64,
            false_hold_routes: self.false_routes,
            max_new_claims_per_minute: max_new,
            busiest_minute,
            carried_over_claims: self.carried.len() as u64,
            by_rule: self.by_rule,
            examples: self.examples,
            legitimate_changes: stats.legitimate_changes,
            transfer_routes: stats.transfer_routes,
        }
    }
}

fn hours(a: EventTime, b: EventTime) -> f64 {
    (b.0.saturating_sub(a.0)).max(0) as f64 / 3.6e9
}

/// Incidents' announcements count as theirs for this long past their labelled end (a
/// withdrawal and its convergence take a while).
const GRACE: i64 = 0;

impl Observer for Tracker {
    fn route(&mut self, r: &RouteEvent, origin: Option<Asn>, outcome: Option<Outcome>) {
        self.events += 1;
        if self.first.is_none() {
            self.first = Some(r.time);
        }
        self.last = Some(r.time);
        let RouteAction::Announce(path) = &r.action else {
            return;
        };
        if !self.by_prefix.contains_key(&r.prefix) {
            return;
        }
        let held = outcome.is_some_and(|o| o.is_held());
        for i in self.matching(&r.prefix, origin, Some(path), r.time, GRACE) {
            let st = &mut self.states[i];
            st.announcements += 1;
            st.held_announcements += held as u64;
            if st.held_at_first.is_none() {
                st.held_at_first = Some(held);
                st.first_announced = Some(r.time);
            }
            if held && st.first_held.is_none() {
                st.first_held = Some(r.time);
            }
        }
    }

    fn decision(&mut self, d: &Decision) {
        let inc = self.matching(&d.prefix, d.origin, d.as_path.as_ref(), d.time, GRACE);
        for &i in &inc {
            let st = &mut self.states[i];
            st.peers.insert(d.peer);
            if d.outcome.is_held() {
                if st.first_held.is_none_or(|f| d.time < f) {
                    st.first_held = Some(d.time);
                }
                for r in d.reasons.iter() {
                    st.rules.insert(r.rule.to_string());
                }
            } else if d.outcome == Outcome::Propagate
                && d.previous.is_held()
                && d.time < self.incidents[i].end
            {
                st.premature_releases += 1;
            }
        }
        // An incident's routes are never false holds (a legitimate label's are).
        if inc
            .iter()
            .any(|&i| self.incidents[i].label.kind != IncidentKind::Legitimate)
        {
            return;
        }
        let key = (d.peer, d.prefix, d.path_id);
        let claim = (d.prefix, d.origin);
        if d.outcome.is_held() && !d.previous.is_held() {
            let rule = d
                .reasons
                .first()
                .map_or_else(|| "?".to_string(), |r| r.rule.to_string());
            let n = self.claim_routes.entry(claim).or_default();
            *n += 1;
            let count = *n;
            let new_claim = count == 1;
            if self.measured(d.time) {
                self.false_routes += 1;
                let r = self.by_rule.entry(rule.clone()).or_default();
                r.routes += 1;
                if self.rule_claims.insert((rule.clone(), claim.0, claim.1)) {
                    r.claims += 1;
                }
                if new_claim {
                    *self
                        .per_minute
                        .entry(d.time.0.div_euclid(60_000_000))
                        .or_default() += 1;
                }
                if self.claims_seen.insert(claim) && self.examples.len() < self.max_examples {
                    self.example_of.insert(claim, self.examples.len());
                    self.examples.push(FalseHold {
                        time: d.time,
                        prefix: d.prefix,
                        origin: d.origin,
                        rule: rule.clone(),
                        explanation: d.explanation(),
                        most_routes: 0,
                    });
                }
                if let Some(&i) = self.example_of.get(&claim) {
                    let e = &mut self.examples[i];
                    e.most_routes = e.most_routes.max(count);
                }
            }
            let start = match self.from {
                Some(f) if d.time < f => f,
                _ => d.time,
            };
            self.open.insert(key, (start, rule, claim));
        } else if !d.outcome.is_held() && d.previous.is_held() {
            if let Some((start, rule, claim)) = self.open.remove(&key) {
                if let Some(n) = self.claim_routes.get_mut(&claim) {
                    *n = n.saturating_sub(1);
                }
                if self.measured(d.time) {
                    self.by_rule.entry(rule).or_default().route_hours += hours(start, d.time);
                }
            }
        }
        // Claims held before the measured span that are still held when it begins.
        if let Some(f) = self.from {
            if d.time >= f && self.carried.is_empty() && !self.open.is_empty() {
                let before: Vec<_> = self
                    .open
                    .values()
                    .filter(|(s, ..)| *s <= f)
                    .map(|(_, _, c)| *c)
                    .collect();
                self.carried.extend(before);
            }
        }
    }
}

/// Renders the report as text.
pub fn table(r: &EvalReport) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "policy {} ({})", r.policy, r.policy_hash);
    let _ = writeln!(
        s,
        "{} files, {} route events in {:.1} s ({:.0} events/s){}",
        r.files,
        r.route_events,
        r.elapsed_s,
        r.events_per_s,
        r.measured_from
            .map(|f| format!("; false holds counted from {f}"))
            .unwrap_or_default()
    );
    let _ = writeln!(s, "\nincidents ({}):", r.incidents.len());
    let _ = writeln!(
        s,
        "  {:<14} {:<13} {:<20} {:>8} {:>5} {:>9} {:>5} {:<20} {:<20} rules",
        "id",
        "kind",
        "prefix",
        "origin",
        "peers",
        "held/ann",
        "whole",
        "first announced",
        "first held"
    );
    for i in &r.incidents {
        let kind = serde_json::to_value(i.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "  {:<14} {:<13} {:<20} {:>8} {:>5} {:>4}/{:<4} {:>5} {:<20} {:<20} {}",
            i.id,
            kind,
            i.prefix.to_string(),
            i.origin
                .map(|o| o.to_string())
                .unwrap_or_else(|| "-".into()),
            i.peers,
            i.held_announcements,
            i.announcements,
            match (i.kind, i.held_whole) {
                (IncidentKind::Legitimate, _) if i.held_announcements == 0 => "never",
                (IncidentKind::Legitimate, _) => "HELD",
                (_, true) => "yes",
                (_, false) => "NO",
            },
            i.first_announced
                .map(|t| t.to_string())
                .unwrap_or_else(|| "-".into()),
            i.first_held
                .map(|t| t.to_string())
                .unwrap_or_else(|| "-".into()),
            i.rules.join(",")
        );
    }
    for (k, (n, whole, first)) in &r.by_kind {
        let _ = writeln!(
            s,
            "  {k}: {whole}/{n} held whole ({:.1}%), {first}/{n} held at first announcement",
            if *n > 0 {
                100.0 * *whole as f64 / *n as f64
            } else {
                0.0
            }
        );
    }
    let _ = writeln!(
        s,
        "\nfalse holds (outside the incidents): {} claims, {} routes; at most {} claims newly held in one minute{}; {} claims carried over from the history",
        r.false_hold_claims,
        r.false_hold_routes,
        r.max_new_claims_per_minute,
        r.busiest_minute.map(|m| format!(" ({m})")).unwrap_or_default(),
        r.carried_over_claims
    );
    for (rule, h) in &r.by_rule {
        let _ = writeln!(
            s,
            "  {rule:<28} {:>6} claims {:>7} routes {:>9.1} route-hours",
            h.claims, h.routes, h.route_hours
        );
    }
    let _ = writeln!(
        s,
        "legitimate changes recorded (related origins): {}; announcements taken as state transfer: {}",
        r.legitimate_changes, r.transfer_routes
    );
    if !r.examples.is_empty() {
        let _ = writeln!(s, "\nfirst false holds:");
        for e in r.examples.iter().take(20) {
            let _ = writeln!(
                s,
                "  {} {} (at most {} route{} held at once)",
                e.time,
                e.explanation,
                e.most_routes,
                if e.most_routes == 1 { "" } else { "s" }
            );
        }
    }
    s
}

// ----- injection -----

/// One injected announcement or withdrawal, by the peer's identity (resolved to the
/// replay's peer index when merged).
#[derive(Clone, Debug)]
pub struct Injected {
    pub time: EventTime,
    pub peer_addr: IpAddr,
    pub peer_asn: Asn,
    pub prefix: IpNet,
    /// `None`: a withdrawal.
    pub path: Option<AsPath>,
}

/// What to inject.
#[derive(Clone, Debug)]
pub struct InjectPlan {
    /// Incidents to inject, spread over the span from `from` to the end.
    pub count: usize,
    pub seed: u64,
    pub from: Option<EventTime>,
    pub kinds: Vec<IncidentKind>,
}

/// A small deterministic generator (splitmix64): the same seed gives the same cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

#[derive(Default)]
struct PeerView {
    /// Latest path to each origin AS.
    to_origin: FxHashMap<u32, AsPath>,
}

/// What the first pass knows of the real background at a moment.
#[derive(Default)]
struct Background {
    peers: Vec<PeerView>,
    peer_ids: Vec<(IpAddr, Asn)>,
    /// Prefix -> (origin, first seen, several origins seen).
    prefixes: FxHashMap<IpNet, (u32, EventTime, bool)>,
    prefix_list: Vec<IpNet>,
    /// Origin -> how many peers have a route to it; those with three or more, in order.
    origins_reach: FxHashMap<u32, u32>,
    origin_list: Vec<u32>,
    /// AS -> how many (peer, origin) routes it was seen carrying: its size as a transit.
    carries: FxHashMap<u32, u32>,
}

/// Reads the files once and plans `plan.count` incidents on their real background: at
/// each incident's time, a victim prefix with one origin seen for at least an hour, and
/// an attacker (another origin that at least three peers have a route to); every peer
/// with a route to the attacker announces the hijack along its path to the attacker
/// (forged origin: that path with the victim appended; leak: with the leaker's route to
/// the victim appended), 1-3 s per hop after the start, and withdraws it after 10, 30 or
/// 120 minutes. Returns the labels and the events.
pub fn plan_injections(
    files: &[PathBuf],
    plan: &InjectPlan,
) -> Result<(Vec<Label>, Vec<Injected>), String> {
    // First pass: the span.
    let mut ordered = Vec::new();
    for f in files {
        let first = mrt::first_record_time(f).map_err(|e| format!("{}: {e}", f.display()))?;
        ordered.push((first.unwrap_or(EventTime(i64::MAX)), f.clone()));
    }
    ordered.sort();
    let start = ordered.first().map(|(t, _)| *t).unwrap_or(EventTime(0));
    let last_first = ordered.last().map(|(t, _)| *t).unwrap_or(EventTime(0));
    let from = plan.from.unwrap_or(start).max(start);
    // The last file's span is not known before reading it: plan until its start.
    let span_end = last_first.max(from);
    let count = plan.count.max(1);
    let step = (span_end.0 - from.0).max(1) / count as i64;
    let mut times: Vec<EventTime> = (0..plan.count)
        .map(|i| EventTime(from.0 + step * i as i64 + step / 2))
        .collect();
    times.reverse();
    let kinds = if plan.kinds.is_empty() {
        vec![
            IncidentKind::Origin,
            IncidentKind::SubPrefix,
            IncidentKind::ForgedOrigin,
            IncidentKind::Leak,
        ]
    } else {
        plan.kinds.clone()
    };
    let mut rng = Rng(plan.seed);
    let mut registry = PeerRegistry::default();
    let mut bg = Background::default();
    let mut labels = Vec::new();
    let mut events = Vec::new();
    let mut n = 0usize;
    for (_, f) in &ordered {
        let mut on_event = |ev: IngestEvent| match ev {
            IngestEvent::Peer(idx, p) => {
                let i = idx.0 as usize;
                while bg.peers.len() <= i {
                    bg.peers.push(PeerView::default());
                    bg.peer_ids.push((IpAddr::from([0, 0, 0, 0]), Asn::ZERO));
                }
                bg.peer_ids[i] = (p.addr, p.asn);
            }
            IngestEvent::Route(r) => {
                while let Some(&t) = times.last() {
                    if r.time < t {
                        break;
                    }
                    times.pop();
                    let kind = kinds[n % kinds.len()];
                    if let Some((label, evs)) = make_incident(n, kind, t, &mut rng, &bg) {
                        labels.push(label);
                        events.extend(evs);
                    }
                    n += 1;
                }
                let RouteAction::Announce(path) = &r.action else {
                    return;
                };
                let i = r.peer.0 as usize;
                let peer_asn = bg.peer_ids.get(i).map_or(Asn::ZERO, |p| p.1);
                let Some(o) = path.origin(peer_asn) else {
                    return;
                };
                if let Some(v) = bg.peers.get_mut(i) {
                    if v.to_origin.insert(o.0, path.clone()).is_none() {
                        let c = bg.origins_reach.entry(o.0).or_default();
                        *c += 1;
                        if *c == 3 {
                            bg.origin_list.push(o.0);
                        }
                        let asns = flat(path);
                        if let Some((_, carriers)) = asns.split_last() {
                            for a in carriers {
                                *bg.carries.entry(*a).or_default() += 1;
                            }
                        }
                    }
                }
                match bg.prefixes.get_mut(&r.prefix) {
                    Some(e) => {
                        if e.0 != o.0 {
                            e.2 = true;
                        }
                    }
                    None => {
                        bg.prefixes.insert(r.prefix, (o.0, r.time, false));
                        bg.prefix_list.push(r.prefix);
                    }
                }
            }
            _ => {}
        };
        mrt::read_file(f, &mut registry, None, &mut on_event)
            .map_err(|e| format!("{}: {e}", f.display()))?;
    }
    events.sort_by_key(|e| e.time);
    Ok((labels, events))
}

/// A leaker for `victim`: an AS on a real path to it between the peer's AS and the path's
/// top (the AS carrying the most routes), so it learned the route from a provider or a
/// peer, and that at least three peers reach: re-announcing that route to its other
/// neighbours is a valley, a leak. Returns it and the rest of that path after it (its own
/// route to the victim).
fn leak_route(
    rng: &mut Rng,
    peers: &[PeerView],
    victim: u32,
    origins_reach: &FxHashMap<u32, u32>,
    carries: &FxHashMap<u32, u32>,
) -> Option<(u32, Vec<u32>)> {
    for _ in 0..20 {
        if peers.is_empty() {
            return None;
        }
        let view = &peers[rng.below(peers.len())];
        let Some(path) = view.to_origin.get(&victim) else {
            continue;
        };
        let mut asns = flat(path);
        asns.dedup();
        if asns.len() < 3 {
            continue;
        }
        let size = |a: &u32| carries.get(a).copied().unwrap_or(0);
        let top = (0..asns.len() - 1).max_by_key(|&i| size(&asns[i]))?;
        if top < 2 {
            // Nothing between the peer's AS and the top.
            continue;
        }
        // Positions 1..top: after the peer's own AS, below the top.
        let i = 1 + rng.below(top - 1);
        let leaker = asns[i];
        if origins_reach.get(&leaker).copied().unwrap_or(0) >= 3 {
            return Some((leaker, asns[i + 1..].to_vec()));
        }
    }
    None
}

fn make_incident(
    n: usize,
    kind: IncidentKind,
    t: EventTime,
    rng: &mut Rng,
    bg: &Background,
) -> Option<(Label, Vec<Injected>)> {
    let Background {
        peers,
        peer_ids,
        prefixes,
        prefix_list,
        origins_reach,
        origin_list,
        carries,
    } = bg;
    if prefix_list.is_empty() || origin_list.is_empty() {
        return None;
    }
    const HOUR: i64 = 3_600_000_000;
    for _ in 0..200 {
        let p = prefix_list[rng.below(prefix_list.len())];
        let (victim, seen, multi) = *prefixes.get(&p)?;
        if multi || t.0 - seen.0 < HOUR || p.addr().is_ipv6() {
            continue;
        }
        if kind == IncidentKind::SubPrefix && p.prefix_len() >= 24 {
            continue;
        }
        // A leak's "attacker" is the leaker: an AS on a real path to the victim, which
        // re-announces that route to its other neighbours (a valley).
        let (attacker, leaked) = if kind == IncidentKind::Leak {
            let Some((leaker, tail)) = leak_route(rng, peers, victim, origins_reach, carries)
            else {
                continue;
            };
            (leaker, tail)
        } else {
            (origin_list[rng.below(origin_list.len())], Vec::new())
        };
        if attacker == victim || origins_reach.get(&attacker).copied().unwrap_or(0) < 3 {
            continue;
        }
        let target = match kind {
            IncidentKind::SubPrefix => {
                // The half of the victim's prefix that starts where it does (a /24 at most).
                IpNet::new(p.addr(), p.prefix_len() + 1).ok()?
            }
            _ => p,
        };
        let durations = [10 * 60, 30 * 60, 120 * 60];
        let duration = durations[rng.below(durations.len())] as i64 * 1_000_000;
        let mut evs = Vec::new();
        let mut reached = 0;
        for (i, view) in peers.iter().enumerate() {
            let Some(path) = view.to_origin.get(&attacker) else {
                continue;
            };
            let mut asns = flat(path);
            if asns.is_empty() {
                continue;
            }
            if matches!(kind, IncidentKind::Origin | IncidentKind::ForgedOrigin)
                && asns.contains(&victim)
            {
                // The victim on the way to the attacker keeps its own route for its own
                // prefix and never passes the hijack on (forged: a loop).
                continue;
            }
            if kind == IncidentKind::ForgedOrigin {
                asns.push(victim);
            }
            if kind == IncidentKind::Leak {
                if asns.iter().any(|a| leaked.contains(a)) {
                    // The peer's way to the leaker crosses the leaked route: a loop.
                    continue;
                }
                asns.extend_from_slice(&leaked);
            }
            // 1-3 s per hop: the attacker's neighbours first.
            let hops = asns.len() as i64;
            let delay = (0..hops)
                .map(|_| 1_000_000 + rng.below(2_000_001) as i64)
                .sum::<i64>();
            let (addr, asn) = peer_ids[i];
            let announce = EventTime(t.0 + delay);
            evs.push(Injected {
                time: announce,
                peer_addr: addr,
                peer_asn: asn,
                prefix: target,
                path: Some(AsPath::sequence(&asns)),
            });
            evs.push(Injected {
                time: EventTime(announce.0 + duration),
                peer_addr: addr,
                peer_asn: asn,
                prefix: target,
                path: None,
            });
            reached += 1;
        }
        if reached < 3 {
            continue;
        }
        let first = evs.iter().map(|e| e.time).min()?;
        let end = evs.iter().map(|e| e.time).max()?;
        let (origin, path) = match kind {
            IncidentKind::ForgedOrigin => (Some(Asn(victim)), Some(format!("{attacker} {victim}"))),
            IncidentKind::Leak => {
                let suffix: Vec<String> = std::iter::once(attacker)
                    .chain(leaked.iter().copied())
                    .map(|a| a.to_string())
                    .collect();
                (Some(Asn(victim)), Some(suffix.join(" ")))
            }
            _ => (Some(Asn(attacker)), None),
        };
        let label = Label {
            id: format!("inj-{n}"),
            kind,
            prefix: target,
            origin,
            path,
            start: first.rfc3339(),
            // The last withdrawal ends it.
            end: EventTime(end.0 - 1).rfc3339(),
        };
        return Some((label, evs));
    }
    None
}
