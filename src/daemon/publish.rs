//! The API's snapshot, built by the pipeline thread: the status, the peers' trust and the
//! metrics that mirror them; and the alert for a peer falling below the trust floor.

use super::pipeline::Live;
use super::status::{ActStatus, FeedStatus, Status};
use super::{lock, PUBLISH_EVERY};
use crate::act::alerts::{Alert, Severity};
use crate::ingest::bmp::BmpCounts;
use crate::judge::{Judge, PeerTrust};
use crate::pipeline::limits::{Crossing, Scope};
use crate::pipeline::LimitEvent;
use std::time::Instant;

impl Live {
    /// Refreshes the snapshot when due (every [`PUBLISH_EVERY`]), or now when `force`.
    pub(crate) fn publish(&mut self, force: bool) {
        if !force && self.last_publish.elapsed() < PUBLISH_EVERY {
            return;
        }
        self.last_publish = Instant::now();
        let (status, counts) = self.status();
        let judge: Option<&Judge> = self.pipe.judges().first();
        let trust = judge.map(|j| j.trust_table(j.now())).unwrap_or_default();
        crate::metrics::routes(
            status.routes_stored,
            status.peers,
            status.announcements,
            status.withdrawals,
        );
        let s = &status.judge;
        for (outcome, v) in [
            ("quarantine", s.quarantined),
            ("reject", s.rejected),
            ("release", s.released),
            ("withdrawn_while_held", s.withdrawn_while_held),
        ] {
            crate::metrics::decisions_by_outcome(outcome, v);
        }
        for (kind, v) in [
            ("initiation", counts.initiation),
            ("termination", counts.termination),
            ("peer_up", counts.peer_up),
            ("peer_down", counts.peer_down),
            ("route_monitoring", counts.route_monitoring),
            ("statistics", counts.statistics),
            ("route_mirroring", counts.route_mirroring),
        ] {
            crate::metrics::bmp_messages_by_type(kind, v);
        }
        let mut sh = lock(&self.shared);
        sh.status = std::sync::Arc::new(status);
        sh.trust = std::sync::Arc::new(trust);
    }

    /// The status now, and the BMP message counts of every session so far.
    fn status(&self) -> (Status, BmpCounts) {
        let judge: Option<&Judge> = self.pipe.judges().first();
        let (mut routers, mut c) = (Vec::new(), BmpCounts::default());
        let (mut ann, mut wd) = self.replayed;
        {
            let all = self.net.sessions.lock().unwrap_or_else(|e| e.into_inner());
            c.add(&all.dropped_counts);
            ann += all.dropped_routes.0;
            wd += all.dropped_routes.1;
            for (_, info, n, (a, w)) in &all.listed {
                routers.push(info.clone());
                c.add(n);
                ann += a;
                wd += w;
            }
        }
        let peers = self
            .net
            .registry
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .peers
            .len();
        let sessions_open = routers.iter().filter(|r| r.connected).count();
        // One lock for all of them (the mutex is not re-entrant).
        let (rtr, rpki_sources, rpki_frozen, restored_holds) = {
            let sh = lock(&self.shared);
            (
                sh.rtr.iter().flatten().cloned().collect(),
                sh.rpki_sources.clone(),
                sh.rpki_frozen.clone(),
                sh.restored.len(),
            )
        };
        let status = Status {
            version: env!("CARGO_PKG_VERSION"),
            started: self.started.clone(),
            bmp_listener: self.bmp_addr.to_string(),
            view: self.cfg.view,
            policy: judge.map_or_else(String::new, |j| j.policy().name.clone()),
            policy_hash: judge.map_or_else(String::new, |j| j.policy_hash().to_string()),
            rpki: self.rpki_now.0.clone(),
            rpki_serial: self.rpki_now.1,
            rtr,
            rpki_sources,
            rpki_frozen,
            routers,
            peers,
            routes_stored: self.pipe.routes_stored(),
            announcements: ann,
            withdrawals: wd,
            replayed_files: self.replayed_files,
            feeds: std::iter::once(FeedStatus::Bmp {
                listen: self.bmp_addr.to_string(),
                view: self.cfg.view,
                sessions_open,
            })
            .chain(self.feeds.iter().cloned())
            .collect(),
            judge: judge.map(|j| j.stats()).unwrap_or_default(),
            held_routes: judge.map_or(0, |j| j.held_routes()),
            judge_time: judge.map(|j| j.now()).filter(|t| t.0 != i64::MIN),
            max_prefix: self.pipe.limit_status(),
            state: self.state_path().unwrap_or_else(|| "in memory".to_string()),
            state_run: self.state_run(),
            state_degraded: self.state.health.detail(),
            restored_holds,
            act: self.act_status(),
        };
        (status, c)
    }

    /// What the status says about acting.
    fn act_status(&self) -> ActStatus {
        let q = &self.quarantine;
        let (quarantined_claims, served_claims) = q.sizes();
        ActStatus {
            feeds: [&self.act_feeds.rpki, &self.act_feeds.quarantine]
                .into_iter()
                .flatten()
                .map(|f| f.status())
                .collect(),
            quarantined_claims,
            served_claims,
            unservable_routes: q.unservable,
            stopped: q.tripped(),
            acting: q.acting(),
            birds: self
                .act_feeds
                .birds
                .iter()
                .map(|b| b.lock().unwrap_or_else(|e| e.into_inner()).clone())
                .collect(),
            frrs: self
                .act_feeds
                .frrs
                .iter()
                .map(|b| b.lock().unwrap_or_else(|e| e.into_inner()).clone())
                .collect(),
        }
    }
}

/// The alert for a peer whose trust fell below the floor (its votes stop counting),
/// raised at the evidence that took it there (see [`Judge::take_fallen`]).
/// What a max-prefix crossing says.
pub(crate) fn max_prefix_text(e: &LimitEvent) -> String {
    let who = match e.scope {
        Scope::Peer => format!("peer {} (router {})", e.peer, e.router),
        Scope::Router => format!("router {} (all its peers)", e.router),
    };
    match e.crossing {
        Crossing::Warning => format!(
            "max-prefix: {who} has {} routes, {:.0}% of its limit of {}",
            e.routes,
            100.0 * e.routes as f64 / e.limit.max(1) as f64,
            e.limit
        ),
        Crossing::Reached => format!(
            "max-prefix: {who} reached its limit of {} routes: its new routes are refused \
             (counted), what it has stays judged",
            e.limit
        ),
        Crossing::Below => format!(
            "max-prefix: {who} is back under its limit of {} ({} routes): new routes are \
             taken again",
            e.limit, e.routes
        ),
    }
}

/// The alert for a max-prefix crossing (`peer.max_prefix`).
pub(crate) fn max_prefix(e: &LimitEvent) -> Alert {
    let name = match e.scope {
        Scope::Peer => format!("{}:{}:{}", e.router, e.peer.addr, e.peer.asn.0),
        Scope::Router => e.router.to_string(),
    };
    let severity = match e.crossing {
        Crossing::Reached => Severity::Critical,
        Crossing::Warning => Severity::Warning,
        Crossing::Below => Severity::Info,
    };
    Alert::new(
        crate::act::alerts::AlertKind::PeerMaxPrefix,
        severity,
        format!(
            "peer.max_prefix:{}:{name}:{}",
            e.scope.as_str(),
            serde_json::to_value(e.crossing)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        ),
        serde_json::json!({
            "summary": max_prefix_text(e),
            "limit": e,
        }),
    )
}

pub(crate) fn trust_low(t: &PeerTrust) -> Alert {
    let key = format!("{}:{}:{}", t.peer.feed, t.peer.addr, t.peer.asn.0);
    Alert::new(
        crate::act::alerts::AlertKind::PeerTrustLow,
        Severity::Warning,
        format!("peer.trust_low:{key}"),
        serde_json::json!({
            "summary": format!(
                "peer {} AS{} ({}) fell below the trust floor ({:.2}): its votes no \
                 longer count and its unique claims are held",
                t.peer.addr, t.peer.asn.0, t.peer.feed, t.score
            ),
            "peer": t,
        }),
    )
}
