//! The API's snapshot: what the pipeline thread publishes and the HTTP API reads.

use crate::act::verify::BirdStatus;
use crate::act::ActionRecord;
use crate::ingest::bmp::{RouterInfo, View};
use crate::judge::{Decision, JudgeStats, PeerTrust};
use crate::model::Asn;
use crate::model::EventTime;
use crate::state::StoredHold;
use rustc_hash::FxHashMap;
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::Arc;

/// One feed in `/v1/status`.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub(crate) enum FeedStatus {
    Bmp {
        listen: String,
        view: View,
        sessions_open: usize,
    },
    Mrt {
        file: String,
        announcements: u64,
        withdrawals: u64,
    },
}

/// The API's view, refreshed by the pipeline thread.
#[derive(Default)]
pub(crate) struct Shared {
    /// The snapshot the API serves, replaced whole by the pipeline thread: a reader holds
    /// the lock for a pointer copy and renders outside it.
    pub(crate) status: Arc<Status>,
    pub(crate) trust: Arc<Vec<PeerTrust>>,
    /// The latest decisions, oldest first (serialised when asked for).
    pub(crate) decisions: VecDeque<Decision>,
    /// Routes held at the last stop, not judged again yet (see [`StateConfig`]).
    pub(crate) restored: FxHashMap<(String, std::net::IpAddr, Asn, u32), StoredHold>,
    /// Each RTR source's client state (`None` for file sources).
    pub(crate) rtr: Vec<Option<crate::rpki::rtr::RtrStatus>>,
    /// Each source's disagreement with the merged set.
    pub(crate) rpki_sources: Vec<crate::rpki::sources::Disagreement>,
    /// Set while a sudden loss is held off.
    pub(crate) rpki_frozen: Option<crate::rpki::sources::FrozenStatus>,
    /// The latest actions on routers (without a state file; numbered here).
    pub(crate) actions: VecDeque<ActionRecord>,
    pub(crate) actions_seq: u64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct Status {
    pub(crate) version: &'static str,
    pub(crate) started: String,
    pub(crate) bmp_listener: String,
    pub(crate) view: View,
    pub(crate) policy: String,
    pub(crate) policy_hash: String,
    pub(crate) rpki: String,
    pub(crate) rpki_serial: Option<u64>,
    /// The RTR caches among the sources, with their sessions, serials, timers and age.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) rtr: Vec<crate::rpki::rtr::RtrStatus>,
    /// Each source's disagreement with the merged set (what it lacks, what it adds).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) rpki_sources: Vec<crate::rpki::sources::Disagreement>,
    /// Set while a sudden loss of VRPs is held off (the previous set in force).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) rpki_frozen: Option<crate::rpki::sources::FrozenStatus>,
    pub(crate) routers: Vec<RouterInfo>,
    pub(crate) peers: usize,
    pub(crate) routes_stored: usize,
    /// Route announcements and withdrawals received (BMP and replayed MRT).
    pub(crate) announcements: u64,
    pub(crate) withdrawals: u64,
    pub(crate) replayed_files: usize,
    /// The feeds: the BMP listener and the MRT files replayed first.
    pub(crate) feeds: Vec<FeedStatus>,
    pub(crate) judge: JudgeStats,
    pub(crate) held_routes: usize,
    /// Event time the judge has reached.
    pub(crate) judge_time: Option<EventTime>,
    /// Peers and monitored routers at or past their max-prefix warning.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) max_prefix: Vec<crate::pipeline::LimitStatus>,
    /// The state file ("in memory" without one), this run's number in it, and the
    /// routes held at the last stop still waiting to be judged again.
    pub(crate) state: String,
    pub(crate) state_run: Option<i64>,
    /// Set while the state file cannot be written: since when, why, what waits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) state_degraded: Option<super::state::Degraded>,
    pub(crate) restored_holds: usize,
    /// Acting on routers: the RTR feeds served and the quarantine's state.
    pub(crate) act: ActStatus,
}

/// What `/v1/status` says about acting.
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct ActStatus {
    /// The RTR feeds served, with their routers.
    pub(crate) feeds: Vec<crate::act::rtr_server::FeedStatus>,
    /// Claims held now (every route of theirs the judge holds, and restored ones).
    pub(crate) quarantined_claims: usize,
    /// Claims in the quarantine feed now.
    pub(crate) served_claims: usize,
    /// Held routes that have no single origin (an AS_SET): not servable as a VRP.
    pub(crate) unservable_routes: u64,
    /// Set when a cap stopped acting (POST /v1/act/resume starts it again).
    pub(crate) stopped: Option<crate::act::quarantine::Tripped>,
    /// False under a monitor-only policy.
    pub(crate) acting: bool,
    /// The BIRDs that verify each change.
    pub(crate) birds: Vec<BirdStatus>,
    /// The FRRs the quarantine is applied on.
    pub(crate) frrs: Vec<crate::act::frr::FrrStatus>,
}
