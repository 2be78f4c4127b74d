//! MRT ingest (RFC 6396) on bgpkit-parser: TABLE_DUMP, TABLE_DUMP_V2 (with the RFC 8050
//! ADD-PATH subtypes), BGP4MP and BGP4MP_ET (microsecond time), the deprecated type-5 BGP
//! records, and state changes; plain, gzip or bzip2.
//!
//! Every record becomes [`RouteEvent`](crate::model::RouteEvent)s at the record's time: one per prefix and peer.
//! Withdrawals come before announcements of the same UPDATE (RFC 4271 §4.3). A state change
//! out of Established becomes [`IngestEvent::PeerDown`]. UPDATEs the collector itself sent
//! (`*_LOCAL` subtypes) are not routes it received and are skipped.
//!
//! **A record far off its file's time line** (more than [`RECORD_SKEW`] from the records
//! before it, and not confirmed by the record after it: a flipped bit in a timestamp, a
//! record spliced from another day) is judged at the file's time so far, counted
//! (`times_out_of_range`) and noted once per file: the judge's clock only goes forward, so
//! one such record would otherwise move it for the rest of the replay. A real gap in a
//! file (a quiet collector) costs one record: the next one confirms the new time.
//!
//! Damage never stops a file early when there is anything after it to read: bgpkit's
//! recovering iterator skips an unparsable record or resynchronises on the next verified
//! record boundary, and every skip is reported as [`Damage`] with its decompressed offset.

use super::bgp::UpdateReader;
use super::{Damage, DamageKind, FileSummary, IngestEvent, PeerRegistry};
use crate::input::InputReader;
use crate::model::{Asn, EventTime, PeerIdx};
use bgpkit_parser::models::{
    Attributes, Bgp4MpEnum, BgpMessage, BgpState, BgpUpdateMessage, EntryType, LegacyBgp,
    MrtMessage, MrtRecord, NetworkPrefix, Safi, TableDumpMessage, TableDumpV2Message,
    TableDumpV2Type,
};
use bgpkit_parser::{BgpkitParser, RecoveryConfig, RecoveryEvent, RecoveryEvidence};
use rustc_hash::FxHashMap;
use std::io::{self, Read};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// Converts the records of one MRT file to events, keeping the file's PEER_INDEX_TABLE.
struct Converter<'a, F: FnMut(IngestEvent)> {
    path: PathBuf,
    registry: &'a mut PeerRegistry,
    emit: F,
    /// TABLE_DUMP_V2 peer index → peer, from the last PEER_INDEX_TABLE.
    peer_index: Option<FxHashMap<u16, PeerIdx>>,
    /// The feed name: the collector's BGP id (TABLE_DUMP_V2) or local address (BGP4MP).
    feed: Arc<str>,
    updates: UpdateReader,
    summary: FileSummary,
    /// TABLE_DUMP records batching several entries: (count, first offset).
    batched: Option<(u64, u64)>,
    guard: TimeGuard,
}

/// How far a record may be from its file's time so far (µs): five minutes, the daemon's
/// default skew for a router's clock.
pub const RECORD_SKEW: i64 = 300 * 1_000_000;

/// A file's time line (see the module docs): the time each record is judged at.
#[derive(Debug, Clone, Default)]
pub struct TimeGuard {
    /// The latest time taken.
    accepted: Option<EventTime>,
    /// The last record off the line: the next one near it confirms it.
    candidate: Option<EventTime>,
}

impl TimeGuard {
    /// The time to judge a record stamped `t` at, and whether it was off the line.
    pub fn time(&mut self, t: EventTime) -> (EventTime, bool) {
        let near = |a: EventTime| t.0.abs_diff(a.0) <= RECORD_SKEW.unsigned_abs();
        match self.accepted {
            Some(a) if !near(a) && !self.candidate.is_some_and(near) => {
                self.candidate = Some(t);
                (a, true)
            }
            Some(a) if near(a) => {
                self.accepted = Some(a.max(t));
                self.candidate = None;
                (t, false)
            }
            _ => {
                // The first record, or one the record before confirms.
                self.accepted = Some(t);
                self.candidate = None;
                (t, false)
            }
        }
    }
}

/// Reads one MRT file and sends its events to `emit`. `disk_bytes` counts the bytes read
/// from disk (for progress). Fails only when the file cannot be opened; damage inside it is
/// reported through `emit` and in the summary.
pub fn read_file(
    path: &Path,
    registry: &mut PeerRegistry,
    disk_bytes: Option<Arc<AtomicU64>>,
    emit: impl FnMut(IngestEvent),
) -> io::Result<FileSummary> {
    let reader = InputReader::open_counted(path, disk_bytes)?;
    Ok(read_stream(reader, path, registry, emit))
}

/// Like [`read_file`] over an already opened stream.
pub fn read_stream(
    mut reader: InputReader,
    path: &Path,
    registry: &mut PeerRegistry,
    emit: impl FnMut(IngestEvent),
) -> FileSummary {
    let compression = reader.compression;
    let mut conv = Converter {
        path: path.to_path_buf(),
        registry,
        emit,
        peer_index: None,
        feed: Arc::from(""),
        updates: UpdateReader::default(),
        batched: None,
        summary: FileSummary {
            path: path.to_path_buf(),
            compression,
            bytes: 0,
            records: 0,
            announcements: 0,
            withdrawals: 0,
            skipped_nlri: 0,
            attribute_warnings: 0,
            first_time: None,
            last_time: None,
            times_out_of_range: 0,
            complete: true,
        },
        guard: TimeGuard::default(),
    };
    let mut offset: u64 = 0;
    {
        let parser = BgpkitParser::from_reader(&mut reader).disable_warnings();
        for item in parser.into_recovering_record_iter(RecoveryConfig::default()) {
            match item {
                Ok(RecoveryEvent::Item(record)) => {
                    let start = offset;
                    offset += record_wire_len(&record);
                    conv.summary.records += 1;
                    conv.record(record, start);
                }
                Ok(RecoveryEvent::Gap(gap)) => {
                    let kind = match gap.evidence {
                        RecoveryEvidence::AlignedRecordChain => DamageKind::BadRecord,
                        RecoveryEvidence::EndOfStream => DamageKind::Truncated,
                        _ => DamageKind::Resync,
                    };
                    offset = gap.end_offset;
                    conv.damage(
                        gap.start_offset,
                        Some(gap.skipped_bytes()),
                        kind,
                        gap.cause.clone(),
                    );
                }
                Err(e) => {
                    conv.damage(
                        e.offset,
                        None,
                        DamageKind::Unrecoverable,
                        format!(
                            "{} (searched {} bytes for a record boundary; rest of file unread)",
                            e.error, e.scanned_bytes
                        ),
                    );
                    break;
                }
            }
        }
    }
    if let Some((count, first)) = conv.batched {
        conv.note(
            first,
            format!(
                "{count} TABLE_DUMP records carry several entries behind one header \
                 (pre-RFC 6396 batching); every entry was read"
            ),
        );
    }
    // Drain what the parser did not read, so the byte count and any decompression error
    // describe the whole file.
    let mut sink = [0u8; 64 * 1024];
    let mut tail = 0u64;
    while let Ok(n) = reader.read(&mut sink) {
        if n == 0 {
            break;
        }
        tail += n as u64;
    }
    conv.summary.bytes = offset.max(offset + tail);
    if let Some(err) = reader.decompress_error() {
        let at = conv.summary.bytes;
        conv.damage(
            at,
            None,
            DamageKind::Decompression,
            format!("{compression:?} stream damaged after {at} decompressed bytes: {err}"),
        );
    }
    conv.summary.announcements = conv.updates.announcements;
    conv.summary.withdrawals = conv.updates.withdrawals;
    conv.summary.skipped_nlri += conv.updates.skipped_nlri;
    let summary = conv.summary.clone();
    (conv.emit)(IngestEvent::FileDone(Box::new(summary.clone())));
    summary
}

/// Bytes a record occupied in the stream: 12-byte header, 4 more for the ET microseconds.
fn record_wire_len(record: &MrtRecord) -> u64 {
    let et = matches!(
        record.common_header.entry_type,
        EntryType::BGP4MP_ET | EntryType::ISIS_ET | EntryType::OSPFv3_ET
    );
    12 + if et { 4 } else { 0 } + u64::from(record.common_header.length)
}

/// The time of the first record of a file, for ordering several files.
pub fn first_record_time(path: &Path) -> io::Result<Option<EventTime>> {
    let mut reader = InputReader::open(path)?;
    let mut head = [0u8; 16];
    let mut got = 0;
    while got < head.len() {
        match reader.read(&mut head[got..])? {
            0 => break,
            n => got += n,
        }
    }
    if got < 12 {
        return Ok(None);
    }
    let secs = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    let kind = u16::from_be_bytes([head[4], head[5]]);
    let micros = if matches!(kind, 17 | 33 | 49) && got >= 16 {
        u32::from_be_bytes([head[12], head[13], head[14], head[15]])
    } else {
        0
    };
    Ok(Some(EventTime::from_parts(secs, micros)))
}

fn is_unicast_rib(t: TableDumpV2Type) -> bool {
    matches!(
        t,
        TableDumpV2Type::RibIpv4Unicast
            | TableDumpV2Type::RibIpv6Unicast
            | TableDumpV2Type::RibIpv4UnicastAddPath
            | TableDumpV2Type::RibIpv6UnicastAddPath
    )
}

impl<F: FnMut(IngestEvent)> Converter<'_, F> {
    fn note(&mut self, offset: u64, detail: String) {
        (self.emit)(IngestEvent::Damage(Box::new(Damage {
            file: self.path.clone(),
            offset,
            skipped_bytes: None,
            kind: DamageKind::NonStandard,
            detail,
        })));
    }

    fn damage(&mut self, offset: u64, skipped: Option<u64>, kind: DamageKind, detail: String) {
        self.summary.complete = false;
        (self.emit)(IngestEvent::Damage(Box::new(Damage {
            file: self.path.clone(),
            offset,
            skipped_bytes: skipped,
            kind,
            detail,
        })));
    }

    fn peer(&mut self, addr: IpAddr, asn: Asn) -> PeerIdx {
        let emit = &mut self.emit;
        self.registry
            .intern(&self.feed, addr, asn, None, |idx, peer| {
                emit(IngestEvent::Peer(idx, peer.clone()))
            })
    }

    fn record(&mut self, record: MrtRecord, offset: u64) {
        let h = &record.common_header;
        let stamped = EventTime::from_parts(h.timestamp, h.microsecond_timestamp.unwrap_or(0));
        let (time, off) = self.guard.time(stamped);
        if off {
            self.summary.times_out_of_range += 1;
            if self.summary.times_out_of_range == 1 {
                self.note(
                    offset,
                    format!(
                        "a record stamped {} is more than {} s from the file's time so far \
                         ({}): judged at that time (further ones only counted)",
                        stamped.secs(),
                        RECORD_SKEW / 1_000_000,
                        time.secs()
                    ),
                );
            }
        }
        if self.summary.first_time.is_none() {
            self.summary.first_time = Some(time);
        }
        self.summary.last_time = Some(time);
        match record.message {
            MrtMessage::TableDumpMessage(m) => self.table_dump(time, m),
            MrtMessage::TableDumpMessageBatch(ms) => {
                let b = self.batched.get_or_insert((0, offset));
                b.0 += 1;
                for m in ms {
                    self.table_dump(time, m);
                }
            }
            MrtMessage::TableDumpV2Message(m) => self.table_dump_v2(time, m, offset),
            MrtMessage::Bgp4Mp(Bgp4MpEnum::StateChange(s)) => {
                self.set_feed_from(s.local_addr);
                self.state_change(time, s.peer_ip, s.peer_asn.to_u32(), s.new_state)
            }
            MrtMessage::Bgp4Mp(Bgp4MpEnum::Message(m)) => {
                if m.is_local() {
                    return;
                }
                self.set_feed_from(m.local_ip);
                if let BgpMessage::Update(u) = m.bgp_message {
                    let peer = self.peer(m.peer_ip, Asn(m.peer_asn.to_u32()));
                    self.update(time, peer, u, offset);
                }
            }
            MrtMessage::LegacyBgp(LegacyBgp::Message(m)) => {
                self.set_feed_from(m.local_ip);
                if let BgpMessage::Update(u) = m.bgp_message {
                    let peer = self.peer(m.peer_ip, Asn(m.peer_asn.to_u32()));
                    self.update(time, peer, u, offset);
                }
            }
            MrtMessage::LegacyBgp(LegacyBgp::StateChange(s)) => {
                self.state_change(time, s.peer_ip, s.peer_asn.to_u32(), s.new_state)
            }
        }
    }

    fn set_feed_from(&mut self, local: IpAddr) {
        if self.feed.is_empty() {
            self.feed = Arc::from(local.to_string());
        }
    }

    fn state_change(&mut self, time: EventTime, addr: IpAddr, asn: u32, new: BgpState) {
        if new == BgpState::Established {
            return;
        }
        let peer = self.peer(addr, Asn(asn));
        (self.emit)(IngestEvent::PeerDown {
            time,
            peer,
            state: format!("{new:?}"),
        });
    }

    fn table_dump(&mut self, time: EventTime, m: TableDumpMessage) {
        let peer = self.peer(m.peer_ip, Asn(m.peer_asn.to_u32()));
        let path = self.path_of(&m.attributes);
        self.announce(time, peer, m.prefix, &path, true);
    }

    fn table_dump_v2(&mut self, time: EventTime, m: TableDumpV2Message, offset: u64) {
        match m {
            TableDumpV2Message::PeerIndexTable(t) => {
                self.feed = Arc::from(t.collector_bgp_id.to_string());
                let mut map = FxHashMap::default();
                let mut ids: Vec<_> = t.id_peer_map.into_iter().collect();
                ids.sort_by_key(|(id, _)| *id);
                for (id, p) in ids {
                    let bgp_id = Some(p.peer_bgp_id);
                    let emit = &mut self.emit;
                    let idx = self.registry.intern(
                        &self.feed,
                        p.peer_ip,
                        Asn(p.peer_asn.to_u32()),
                        bgp_id,
                        |idx, peer| emit(IngestEvent::Peer(idx, peer.clone())),
                    );
                    map.insert(id, idx);
                }
                self.peer_index = Some(map);
            }
            TableDumpV2Message::RibAfi(rib) => {
                if !is_unicast_rib(rib.rib_type) {
                    self.summary.skipped_nlri += rib.rib_entries.len() as u64;
                    return;
                }
                self.rib_entries(time, rib.prefix, rib.rib_entries, offset);
            }
            TableDumpV2Message::RibGeneric(rib) => {
                if rib.safi != Safi::Unicast {
                    self.summary.skipped_nlri += rib.rib_entries.len() as u64;
                    return;
                }
                self.rib_entries(time, rib.nlri, rib.rib_entries, offset);
            }
            TableDumpV2Message::GeoPeerTable(_) => {}
        }
    }

    fn rib_entries(
        &mut self,
        time: EventTime,
        prefix: NetworkPrefix,
        entries: Vec<bgpkit_parser::models::RibEntry>,
        offset: u64,
    ) {
        let mut missing = Vec::new();
        for e in entries {
            let peer = self
                .peer_index
                .as_ref()
                .and_then(|m| m.get(&e.peer_index).copied());
            let Some(peer) = peer else {
                missing.push(e.peer_index);
                continue;
            };
            let path = self.path_of(&e.attributes);
            let p = NetworkPrefix {
                prefix: prefix.prefix,
                path_id: e.path_id.or(prefix.path_id),
            };
            self.announce(time, peer, p, &path, true);
        }
        if !missing.is_empty() {
            missing.sort_unstable();
            missing.dedup();
            let why = if self.peer_index.is_none() {
                "no PEER_INDEX_TABLE precedes this RIB record".to_string()
            } else {
                format!("peer index {missing:?} not in the PEER_INDEX_TABLE")
            };
            self.damage(
                offset,
                None,
                DamageKind::MissingPeerIndex,
                format!("RIB entries for {} skipped: {why}", prefix.prefix),
            );
        }
    }

    /// Reports what bgpkit found wrong in an UPDATE: malformed NLRI, AS_PATH or attribute
    /// lists lose routes (damage); the attribute-discard cases only count.
    fn check_warnings(&mut self, attrs: &Attributes, offset: u64) {
        use bgpkit_parser::error::BgpValidationWarning as W;
        let warnings = attrs.validation_warnings();
        if warnings.is_empty() {
            return;
        }
        let serious: Vec<String> = warnings
            .iter()
            .filter(|w| {
                matches!(
                    w,
                    W::MalformedNlri { .. }
                        | W::MalformedAsPath { .. }
                        | W::MalformedAttributeList { .. }
                        | W::InvalidNetworkField { .. }
                )
            })
            .map(|w| w.to_string())
            .collect();
        if serious.is_empty() {
            self.summary.attribute_warnings += 1;
        } else {
            self.damage(
                offset,
                None,
                DamageKind::MalformedUpdate,
                format!(
                    "UPDATE from this record partly unusable: {}",
                    serious.join("; ")
                ),
            );
        }
    }

    fn path_of(&mut self, attrs: &Attributes) -> crate::model::AsPath {
        self.updates.path_of(attrs, None)
    }

    fn update(&mut self, time: EventTime, peer: PeerIdx, u: BgpUpdateMessage, offset: u64) {
        self.check_warnings(&u.attributes, offset);
        self.updates
            .update(time, peer, &u, false, None, &mut self.emit);
    }

    fn announce(
        &mut self,
        time: EventTime,
        peer: PeerIdx,
        p: NetworkPrefix,
        path: &crate::model::AsPath,
        snapshot: bool,
    ) {
        self.updates
            .announce(time, peer, p, path, snapshot, &mut self.emit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> EventTime {
        EventTime::from_secs(secs)
    }

    #[test]
    fn a_lone_record_off_the_line_is_judged_at_the_line_and_a_real_gap_costs_one() {
        let mut g = TimeGuard::default();
        let t0 = 946_843_000;
        assert_eq!(g.time(at(t0)), (at(t0), false));
        assert_eq!(g.time(at(t0 + 10)), (at(t0 + 10), false));
        // A small step back stays as it is (the judge ignores backward time).
        assert_eq!(g.time(at(t0 + 5)), (at(t0 + 5), false));
        // 2100, once: judged at the line's time; the next record is back on the line.
        assert_eq!(g.time(at(4_102_444_800)), (at(t0 + 10), true));
        assert_eq!(g.time(at(t0 + 12)), (at(t0 + 12), false));
        // 1970, once: the same.
        assert_eq!(g.time(at(0)), (at(t0 + 12), true));
        assert_eq!(g.time(at(t0 + 13)), (at(t0 + 13), false));
        // A real gap of an hour: its first record is held at the line, the second
        // confirms the new time and the line moves there.
        assert_eq!(g.time(at(t0 + 3600)), (at(t0 + 13), true));
        assert_eq!(g.time(at(t0 + 3601)), (at(t0 + 3601), false));
        assert_eq!(g.time(at(t0 + 3602)), (at(t0 + 3602), false));
        // Two liars far apart confirm nothing.
        assert_eq!(g.time(at(t0 + 90_000)), (at(t0 + 3602), true));
        assert_eq!(g.time(at(t0 + 190_000)), (at(t0 + 3602), true));
        assert_eq!(g.time(at(t0 + 3603)), (at(t0 + 3603), false));
    }
}
