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
            self.push_segment(i == 0, kind, asns.iter().map(|a| a.to_u32()), strip_first);
        }
        self.paths.finish()
    }

    /// Adds one segment to the path being built; the `first` segment loses its first AS
    /// when it is an AS_SEQUENCE starting with `strip_first` (see [`Self::path_of`]).
    fn push_segment(
        &mut self,
        first: bool,
        kind: SegmentKind,
        asns: impl ExactSizeIterator<Item = u32> + Clone,
        strip_first: Option<u32>,
    ) {
        let skip = usize::from(
            first
                && kind == SegmentKind::Sequence
                && strip_first.is_some()
                && asns.clone().next() == strip_first,
        );
        self.stripped += skip as u64;
        self.paths.push_segment(kind, asns.skip(skip));
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

/// Where the parts of an UPDATE lie in its bytes: what [`scan_update`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpdateParts<'a> {
    /// IPv4 unicast withdrawals.
    withdrawn: &'a [u8],
    as_path: Option<&'a [u8]>,
    /// MP_UNREACH_NLRI's unicast withdrawals (`true`: IPv6).
    unreach: Option<(bool, &'a [u8])>,
    /// MP_REACH_NLRI's unicast announcements (`true`: IPv6).
    reach: Option<(bool, &'a [u8])>,
    /// IPv4 unicast announcements.
    nlri: &'a [u8],
    /// How many path attributes it has.
    attributes: usize,
    /// AS numbers in AS_PATH are 4 bytes long.
    asn4: bool,
}

/// Reads an UPDATE's body (what follows the 19-byte BGP header) straight from its bytes,
/// for the shapes nearly every UPDATE has: unicast NLRI of both families, an AS_PATH and
/// no AS4_PATH, prefixes of non-zero length. `None` for anything else, malformed or
/// merely unusual: the caller then has bgpkit-parser read the message, and what bgpkit
/// makes of it is what counts (the events are the same either way; `tests/decoders.rs`
/// checks it on every recorded BMP stream and on generated UPDATEs).
///
/// Why: bgpkit builds every attribute of every UPDATE (communities, next hops...) into
/// allocated models the judge never reads. On the BMP bench that was 15% of the daemon's
/// CPU; reading the four attributes the judge needs in place costs a fraction of it.
pub fn scan_update(body: &[u8], asn4: bool) -> Option<UpdateParts<'_>> {
    let wlen = usize::from(u16::from_be_bytes([*body.first()?, *body.get(1)?]));
    let withdrawn = body.get(2..2 + wlen)?;
    let rest = &body[2 + wlen..];
    let alen = usize::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?]));
    let mut attrs = rest.get(2..2 + alen)?;
    let nlri = &rest[2 + alen..];
    if !nlri_ok(withdrawn, false) || !nlri_ok(nlri, false) {
        return None;
    }
    let mut parts = UpdateParts {
        withdrawn,
        as_path: None,
        unreach: None,
        reach: None,
        nlri,
        attributes: 0,
        asn4,
    };
    while !attrs.is_empty() {
        let (&flags, &kind) = (attrs.first()?, attrs.get(1)?);
        let (len, head) = if flags & 0x10 != 0 {
            (
                usize::from(u16::from_be_bytes([*attrs.get(2)?, *attrs.get(3)?])),
                4,
            )
        } else {
            (usize::from(*attrs.get(2)?), 3)
        };
        let value = attrs.get(head..head + len)?;
        attrs = &attrs[head + len..];
        parts.attributes += 1;
        match kind {
            2 => {
                if parts.as_path.is_some() || !as_path_ok(value, asn4) {
                    return None;
                }
                parts.as_path = Some(value);
            }
            14 => {
                let (v6, rest) = unicast_family(value)?;
                let nh = usize::from(*rest.first()?);
                if parts.reach.is_some() || !matches!(nh, 4 | 16 | 32) {
                    return None;
                }
                // Next hop, then one reserved octet.
                let prefixes = rest.get(1 + nh + 1..)?;
                if !nlri_ok(prefixes, v6) {
                    return None;
                }
                parts.reach = Some((v6, prefixes));
            }
            15 => {
                let (v6, prefixes) = unicast_family(value)?;
                if parts.unreach.is_some() || !nlri_ok(prefixes, v6) {
                    return None;
                }
                parts.unreach = Some((v6, prefixes));
            }
            // AS4_PATH is merged with AS_PATH (RFC 6793 §4.2.3): bgpkit does that.
            17 => return None,
            _ => {}
        }
    }
    Some(parts)
}

impl UpdateParts<'_> {
    /// An End-of-RIB marker (RFC 4724 §2): no routes, and no attribute but an empty
    /// MP_UNREACH_NLRI.
    pub fn is_end_of_rib(&self) -> bool {
        self.withdrawn.is_empty()
            && self.nlri.is_empty()
            && match self.attributes {
                0 => true,
                1 => self.unreach.is_some_and(|(_, p)| p.is_empty()),
                _ => false,
            }
    }
}

/// AFI 1 or 2 with SAFI 1 (`true` for IPv6), and the bytes after them.
fn unicast_family(value: &[u8]) -> Option<(bool, &[u8])> {
    let v6 = match value.get(..3)? {
        [0, 1, 1] => false,
        [0, 2, 1] => true,
        _ => return None,
    };
    Some((v6, &value[3..]))
}

/// Every segment has a known type and its whole count of AS numbers.
fn as_path_ok(mut value: &[u8], asn4: bool) -> bool {
    let width = if asn4 { 4 } else { 2 };
    while !value.is_empty() {
        let [kind, count, ..] = *value else {
            return false;
        };
        let end = 2 + usize::from(count) * width;
        if !(1..=4).contains(&kind) || value.len() < end {
            return false;
        }
        value = &value[end..];
    }
    true
}

/// Every prefix fits its family and its bytes are there. A zero length is refused too:
/// bgpkit reads a 0 octet as the start of an ADD-PATH identifier (its heuristic), so a
/// default route is left to it.
fn nlri_ok(mut bytes: &[u8], v6: bool) -> bool {
    let max = if v6 { 128 } else { 32 };
    while let Some(&len) = bytes.first() {
        let n = usize::from(len).div_ceil(8);
        if len == 0 || len > max || bytes.len() < 1 + n {
            return false;
        }
        bytes = &bytes[1 + n..];
    }
    true
}

/// The prefixes of NLRI bytes [`nlri_ok`] accepted.
fn prefixes(bytes: &[u8], v6: bool) -> impl Iterator<Item = NetworkPrefix> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        let len = *bytes.get(at)?;
        let n = usize::from(len).div_ceil(8);
        let octets = bytes.get(at + 1..at + 1 + n)?;
        at += 1 + n;
        let prefix = if v6 {
            let mut a = [0u8; 16];
            a[..n].copy_from_slice(octets);
            IpNet::V6(ipnet::Ipv6Net::new(a.into(), len).ok()?)
        } else {
            let mut a = [0u8; 4];
            a[..n].copy_from_slice(octets);
            IpNet::V4(ipnet::Ipv4Net::new(a.into(), len).ok()?)
        };
        Some(NetworkPrefix {
            prefix,
            path_id: None,
        })
    })
}

impl UpdateReader {
    /// As [`Self::update`], from what [`scan_update`] found.
    pub fn update_parts(
        &mut self,
        time: EventTime,
        peer: PeerIdx,
        u: &UpdateParts<'_>,
        snapshot: bool,
        strip_first: Option<u32>,
        emit: &mut impl FnMut(IngestEvent),
    ) {
        for p in prefixes(u.withdrawn, false) {
            self.withdraw(time, peer, p, emit);
        }
        if let Some((v6, bytes)) = u.unreach {
            for p in prefixes(bytes, v6) {
                self.withdraw(time, peer, p, emit);
            }
        }
        if u.nlri.is_empty() && u.reach.is_none_or(|(_, p)| p.is_empty()) {
            return;
        }
        let path = self.path_of_bytes(u.as_path.unwrap_or_default(), u.asn4, strip_first);
        for p in prefixes(u.nlri, false) {
            self.announce(time, peer, p, &path, snapshot, emit);
        }
        if let Some((v6, bytes)) = u.reach {
            for p in prefixes(bytes, v6) {
                self.announce(time, peer, p, &path, snapshot, emit);
            }
        }
    }

    /// [`Self::path_of`] of AS_PATH bytes [`as_path_ok`] accepted.
    fn path_of_bytes(&mut self, mut value: &[u8], asn4: bool, strip_first: Option<u32>) -> AsPath {
        let width = if asn4 { 4 } else { 2 };
        let mut first = true;
        while let [kind, count, ..] = *value {
            let end = 2 + usize::from(count) * width;
            let asns = &value[2..end];
            value = &value[end..];
            let kind = match kind {
                1 => SegmentKind::Set,
                2 => SegmentKind::Sequence,
                3 => SegmentKind::ConfedSequence,
                _ => SegmentKind::ConfedSet,
            };
            let asn = |i: usize| match asn4 {
                true => u32::from_be_bytes([
                    asns[4 * i],
                    asns[4 * i + 1],
                    asns[4 * i + 2],
                    asns[4 * i + 3],
                ]),
                false => u32::from(u16::from_be_bytes([asns[2 * i], asns[2 * i + 1]])),
            };
            self.push_segment(first, kind, (0..usize::from(count)).map(asn), strip_first);
            first = false;
        }
        self.paths.finish()
    }
}
