//! Ingest: turn feeds into [`RouteEvent`]s. Today MRT files ([`mrt`]); BMP joins later and
//! produces the same events.

pub mod bgp;
pub mod bmp;
pub mod mrt;
pub mod mrt2bmp;

use crate::model::{Asn, EventTime, Peer, PeerIdx, RouteEvent};
use rustc_hash::FxHashMap;
use serde::Serialize;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;

/// What ingest sends downstream, in order.
#[derive(Clone, Debug)]
pub enum IngestEvent {
    /// A peer seen for the first time; later events refer to it by index.
    Peer(PeerIdx, Peer),
    Route(RouteEvent),
    /// The session to this peer left Established: everything it announced is gone.
    PeerDown {
        time: EventTime,
        peer: PeerIdx,
        state: String,
    },
    /// Part of an input could not be used. (Boxed, like [`Self::FileDone`]: they are rare,
    /// and keeping them out of line halves the size of every event in flight.)
    Damage(Box<Damage>),
    /// One input file is done.
    FileDone(Box<FileSummary>),
}

/// What kind of damage was found in an input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DamageKind {
    /// The compressed stream is corrupt or ends early.
    Decompression,
    /// A record framed correctly but its body does not parse; it was skipped.
    BadRecord,
    /// Framing was lost; bytes were skipped up to the next verified record.
    Resync,
    /// The file ends inside a record.
    Truncated,
    /// Framing was lost and no record boundary was found: the rest of the file is unread.
    Unrecoverable,
    /// RIB entries name a peer that no PEER_INDEX_TABLE defined; they were skipped.
    MissingPeerIndex,
    /// An UPDATE whose NLRI, AS_PATH or attribute list is malformed (RFC 7606): what
    /// could not be parsed was dropped, as a router would treat it as withdrawn.
    MalformedUpdate,
    /// Not damage: input that departs from RFC 6396 but was read in full (e.g. TABLE_DUMP
    /// records that batch several entries behind one header, as 1999-2000 RIS dumps do).
    NonStandard,
}

impl DamageKind {
    /// Whether some of the input could not be used (the replay is then incomplete).
    pub fn is_loss(self) -> bool {
        self != DamageKind::NonStandard
    }
}

/// One piece of damage: where (decompressed byte offset), how much, and what.
#[derive(Clone, Debug, Serialize)]
pub struct Damage {
    pub file: PathBuf,
    pub offset: u64,
    /// Bytes skipped, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped_bytes: Option<u64>,
    pub kind: DamageKind,
    pub detail: String,
}

/// What one input file contained.
#[derive(Clone, Debug, Serialize)]
pub struct FileSummary {
    pub path: PathBuf,
    pub compression: crate::input::Compression,
    pub bytes: u64,
    pub records: u64,
    pub announcements: u64,
    pub withdrawals: u64,
    /// NLRI of other address families / SAFIs (multicast, VPN, ...) that ROV does not judge.
    pub skipped_nlri: u64,
    /// UPDATEs with minor attribute problems that did not cost any route (RFC 7606
    /// attribute-discard cases: missing or duplicate attributes, bad flags).
    pub attribute_warnings: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_time: Option<EventTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_time: Option<EventTime>,
    /// Records judged at the file's time so far rather than their own, which was far off
    /// it (see [`mrt`]'s docs).
    pub times_out_of_range: u64,
    /// False when any damage was found.
    pub complete: bool,
}

/// Peers by (address, AS), so that the same peer in a RIB dump and in the update dumps
/// that follow it is one peer.
#[derive(Default)]
pub struct PeerRegistry {
    map: FxHashMap<(IpAddr, Asn), PeerIdx>,
    /// BMP peers by their identity across sessions ([`bmp::BmpPeerKey`]).
    bmp: FxHashMap<bmp::BmpPeerKey, PeerIdx>,
    pub peers: Vec<Peer>,
}

impl PeerRegistry {
    /// A new peer, whatever peers are known (BMP keys its peers itself, see
    /// [`bmp::BmpPeerKey`]; MRT uses [`Self::intern`]). `new` is called with it.
    pub fn add(&mut self, peer: Peer, mut new: impl FnMut(PeerIdx, &Peer)) -> PeerIdx {
        let idx = PeerIdx(self.peers.len() as u32);
        new(idx, &peer);
        self.peers.push(peer);
        idx
    }

    /// The index of the peer (address, AS); `new` is called with the peer when it is
    /// seen the first time.
    pub fn intern(
        &mut self,
        feed: &Arc<str>,
        addr: IpAddr,
        asn: Asn,
        bgp_id: Option<Ipv4Addr>,
        new: impl FnMut(PeerIdx, &Peer),
    ) -> PeerIdx {
        if let Some(idx) = self.map.get(&(addr, asn)) {
            return *idx;
        }
        let peer = Peer {
            feed: feed.clone(),
            addr,
            asn,
            bgp_id,
            loc_rib: false,
            bmp: false,
        };
        let idx = self.add(peer, new);
        self.map.insert((addr, asn), idx);
        idx
    }
}
