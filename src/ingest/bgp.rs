//! BGP UPDATE → [`RouteEvent`]s, shared by the MRT and BMP readers: withdrawals first, then
//! announcements (RFC 4271 §4.3), unicast NLRI of both families (MP_REACH/MP_UNREACH
//! included), the RFC 6793 effective AS path.

use super::IngestEvent;
use crate::model::{
    AsPath, AsPathBuilder, EventTime, PeerIdx, RouteAction, RouteEvent, SegmentKind,
};
use bgpkit_parser::models::{
    AsPath as BgpkitPath, AsPathSegment, Attributes, BgpUpdateMessage, NetworkPrefix, Safi,
};
use ipnet::IpNet;

/// Turns UPDATEs into events; keeps its path builder between calls (reuse one per stream).
#[derive(Default)]
pub struct UpdateReader {
    paths: AsPathBuilder,
    pub announcements: u64,
    pub withdrawals: u64,
    /// NLRI of other SAFIs (VPN, labelled, flowspec...), counted and skipped.
    pub skipped_nlri: u64,
    /// Paths that lost a prepended first AS (`strip_first`).
    pub stripped: u64,
}

impl UpdateReader {
    /// The RFC 6793 effective path (AS_PATH merged with AS4_PATH), in our encoding. With
    /// `strip_first`, a first AS_SEQUENCE that starts with that AS loses it (FRR 8.x BMP
    /// prepends the monitored router's own AS to every path it reports).
    pub fn path_of(&mut self, attrs: &Attributes, strip_first: Option<u32>) -> AsPath {
        let merged;
        let path = match (attrs.as_path(), attrs.as4_path()) {
            (None, None) => return AsPath::default(),
            (Some(p), None) | (None, Some(p)) => p,
            (Some(p), Some(p4)) => {
                merged = BgpkitPath::merge_aspath_as4path(p, p4);
                &merged
            }
        };
        for (i, seg) in path.segments.iter().enumerate() {
            let (kind, asns) = match seg {
                AsPathSegment::AsSequence(v) => (SegmentKind::Sequence, v),
                AsPathSegment::AsSet(v) => (SegmentKind::Set, v),
                AsPathSegment::ConfedSequence(v) => (SegmentKind::ConfedSequence, v),
                AsPathSegment::ConfedSet(v) => (SegmentKind::ConfedSet, v),
            };
            let skip = usize::from(
                i == 0
                    && kind == SegmentKind::Sequence
                    && strip_first.is_some()
                    && asns.first().map(|a| a.to_u32()) == strip_first,
            );
            self.stripped += skip as u64;
            self.paths
                .push_segment(kind, asns[skip..].iter().map(|a| a.to_u32()));
        }
        self.paths.finish()
    }

    /// Emits the UPDATE's withdrawals, then its announcements. `snapshot` marks state
    /// transfer (a RIB dump, a BMP initial table) rather than news.
    pub fn update(
        &mut self,
        time: EventTime,
        peer: PeerIdx,
        u: &BgpUpdateMessage,
        snapshot: bool,
        strip_first: Option<u32>,
        emit: &mut impl FnMut(IngestEvent),
    ) {
        for p in &u.withdrawn_prefixes {
            self.withdraw(time, peer, *p, emit);
        }
        if let Some(n) = u.attributes.get_unreachable_nlri() {
            if n.safi == Safi::Unicast {
                for p in &n.prefixes {
                    self.withdraw(time, peer, *p, emit);
                }
            } else {
                self.skipped_nlri += n.prefixes.len() as u64;
            }
        }
        let reach = u.attributes.get_reachable_nlri();
        let mp_unicast = reach.filter(|n| n.safi == Safi::Unicast);
        if let Some(n) = reach.filter(|n| n.safi != Safi::Unicast) {
            let labeled = n.labeled_prefixes.as_ref().map_or(0, |v| v.len());
            self.skipped_nlri += (n.prefixes.len() + labeled) as u64;
        }
        let mp_count = mp_unicast.map_or(0, |n| n.prefixes.len());
        if u.announced_prefixes.is_empty() && mp_count == 0 {
            return;
        }
        let path = self.path_of(&u.attributes, strip_first);
        for p in &u.announced_prefixes {
            self.announce(time, peer, *p, &path, snapshot, emit);
        }
        if let Some(n) = mp_unicast {
            for p in &n.prefixes {
                self.announce(time, peer, *p, &path, snapshot, emit);
            }
        }
    }

    pub fn announce(
        &mut self,
        time: EventTime,
        peer: PeerIdx,
        p: NetworkPrefix,
        path: &AsPath,
        snapshot: bool,
        emit: &mut impl FnMut(IngestEvent),
    ) {
        self.announcements += 1;
        emit(IngestEvent::Route(RouteEvent {
            time,
            peer,
            prefix: normalise(p.prefix),
            path_id: p.path_id,
            action: RouteAction::Announce(path.clone()),
            snapshot,
        }));
    }

    pub fn withdraw(
        &mut self,
        time: EventTime,
        peer: PeerIdx,
        p: NetworkPrefix,
        emit: &mut impl FnMut(IngestEvent),
    ) {
        self.withdrawals += 1;
        emit(IngestEvent::Route(RouteEvent {
            time,
            peer,
            prefix: normalise(p.prefix),
            path_id: p.path_id,
            action: RouteAction::Withdraw,
            snapshot: false,
        }));
    }
}

/// A route is its network: bits past the prefix length are cleared (as upstream bgpdump
/// does; RFC 4271 says they are irrelevant).
fn normalise(p: IpNet) -> IpNet {
    p.trunc()
}
