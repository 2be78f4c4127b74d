//! The decision log's records: decisions in a compact binary form (postcard), many to a
//! row.
//!
//! Why not one JSON row per decision (schema 2): rendering a decision as JSON (its
//! explanation line, RFC 3339 times, the VRP list) and inserting it as a row of its own
//! cost the state thread 6 µs per decision, four times the rest of the daemon together
//! on the BMP bench. A record here is the decision's fields as numbers (about 80 bytes
//! for an RPKI-invalid route), appended to the batch the state thread commits in one
//! transaction; the JSON the API serves is rendered when someone reads it.
//!
//! The types below are the file format, kept apart from the JSON the API speaks: the API
//! may rename a field without touching a single file. postcard stores enums and fields by
//! position, so every type here only ever grows at the end (a new variant, never a
//! reordered one); anything else is a new schema version in [`super`].

use crate::judge::decision::{
    ClaimRef, Detail, InvalidReasonOrNotFound, Reason, VrpBrief, WitnessCount, WitnessRef,
};
use crate::judge::policy::{Action, PeerRole};
use crate::judge::{Cause, Decision, Outcome};
use crate::model::{AsPath, Asn, EventTime};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;

/// One entry of a batch.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Item<'a> {
    /// A decision of this build.
    Record(Record<'a>),
    /// A decision migrated from a schema 2 file, as its JSON (served as it is).
    Json { seq: u64, json: String },
}

impl Item<'_> {
    pub(crate) fn seq(&self) -> u64 {
        match self {
            Item::Record(r) => r.seq,
            Item::Json { seq, .. } => *seq,
        }
    }

    /// The JSON object the API serves for it; `None` for a stored JSON row that is not
    /// valid JSON (a damaged page: counted and logged, never served).
    pub(crate) fn json(self) -> Option<String> {
        match self {
            Item::Record(r) => serde_json::to_string(&r.into_decision()).ok(),
            Item::Json { json, .. } => super::valid_json(json.as_bytes()).then_some(json),
        }
    }
}

/// A decision as the log stores it (see [`Decision`] for the fields).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Record<'a> {
    pub(crate) seq: u64,
    time: i64,
    pub(crate) outcome: Outcome,
    previous: Outcome,
    cause: Cause,
    pub(crate) peer: IpAddr,
    pub(crate) peer_asn: u32,
    pub(crate) prefix: IpNet,
    pub(crate) path_id: Option<u32>,
    pub(crate) origin: Option<u32>,
    /// [`AsPath::words`].
    as_path: Option<Cow<'a, [u32]>>,
    pub(crate) since: i64,
    pub(crate) reasons: Vec<StoredReason<'a>>,
    policy: Cow<'a, str>,
    rpki_serial: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct StoredReason<'a> {
    pub(crate) rule: Cow<'a, str>,
    action: Action,
    detail: StoredDetail<'a>,
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredClaim {
    prefix: IpNet,
    origin: Option<u32>,
    established: i64,
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredWitness {
    peer: IpAddr,
    peer_asn: u32,
    trust: f64,
    neighbour: u32,
    since: i64,
    weight: f64,
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredCount {
    effective: f64,
    needed: f64,
    witnesses: Vec<StoredWitness>,
}

/// [`Detail`], variant for variant.
#[derive(Debug, Serialize, Deserialize)]
enum StoredDetail<'a> {
    Rpki {
        rpki: InvalidReasonOrNotFound,
        vrps: Option<Cow<'a, [VrpBrief]>>,
    },
    Aspa {
        role: PeerRole,
        bad_hop: Option<(u32, u32)>,
    },
    Path {
        asn: Option<u32>,
    },
    Prefix {
        block: Option<IpNet>,
        max_length: Option<u8>,
    },
    PrefixSet {
        allowed: Vec<u32>,
        max_length: Option<u8>,
    },
    Conflict {
        against: Vec<StoredClaim>,
        witnesses: StoredCount,
    },
    Squat {
        lookback_s: u64,
    },
    Unconfirmed {
        window_s: u64,
        witnesses: StoredCount,
    },
    Untrusted {
        witnesses: StoredCount,
    },
    NewLink {
        upstream: u32,
        origin: u32,
    },
    Operator {
        operator: String,
    },
}

fn asns(v: &[Asn]) -> Vec<u32> {
    v.iter().map(|a| a.0).collect()
}

impl StoredCount {
    fn of(c: &WitnessCount) -> Self {
        StoredCount {
            effective: c.effective,
            needed: c.needed,
            witnesses: c
                .witnesses
                .iter()
                .map(|w| StoredWitness {
                    peer: w.peer,
                    peer_asn: w.peer_asn.0,
                    trust: w.trust,
                    neighbour: w.neighbour.0,
                    since: w.since.0,
                    weight: w.weight,
                })
                .collect(),
        }
    }

    fn back(self) -> WitnessCount {
        WitnessCount {
            effective: self.effective,
            needed: self.needed,
            witnesses: self
                .witnesses
                .into_iter()
                .map(|w| WitnessRef {
                    peer: w.peer,
                    peer_asn: Asn(w.peer_asn),
                    trust: w.trust,
                    neighbour: Asn(w.neighbour),
                    since: EventTime(w.since),
                    weight: w.weight,
                })
                .collect(),
        }
    }
}

impl<'a> StoredDetail<'a> {
    fn of(d: &'a Detail) -> Self {
        match d {
            Detail::Rpki { rpki, vrps } => StoredDetail::Rpki {
                rpki: *rpki,
                vrps: vrps.as_deref().map(Cow::Borrowed),
            },
            Detail::Aspa { role, bad_hop } => StoredDetail::Aspa {
                role: *role,
                bad_hop: bad_hop.map(|(c, p)| (c.0, p.0)),
            },
            Detail::Path { asn } => StoredDetail::Path {
                asn: asn.map(|a| a.0),
            },
            Detail::Prefix { block, max_length } => StoredDetail::Prefix {
                block: *block,
                max_length: *max_length,
            },
            Detail::PrefixSet {
                allowed,
                max_length,
            } => StoredDetail::PrefixSet {
                allowed: asns(allowed),
                max_length: *max_length,
            },
            Detail::Conflict { against, witnesses } => StoredDetail::Conflict {
                against: against
                    .iter()
                    .map(|c| StoredClaim {
                        prefix: c.prefix,
                        origin: c.origin.map(|a| a.0),
                        established: c.established.0,
                    })
                    .collect(),
                witnesses: StoredCount::of(witnesses),
            },
            Detail::Squat { lookback_s } => StoredDetail::Squat {
                lookback_s: *lookback_s,
            },
            Detail::Unconfirmed {
                window_s,
                witnesses,
            } => StoredDetail::Unconfirmed {
                window_s: *window_s,
                witnesses: StoredCount::of(witnesses),
            },
            Detail::Untrusted { witnesses } => StoredDetail::Untrusted {
                witnesses: StoredCount::of(witnesses),
            },
            Detail::NewLink { upstream, origin } => StoredDetail::NewLink {
                upstream: upstream.0,
                origin: origin.0,
            },
            Detail::Operator { operator } => StoredDetail::Operator {
                operator: operator.clone(),
            },
        }
    }

    fn back(self) -> Detail {
        match self {
            StoredDetail::Rpki { rpki, vrps } => Detail::Rpki {
                rpki,
                vrps: vrps.map(Cow::into_owned),
            },
            StoredDetail::Aspa { role, bad_hop } => Detail::Aspa {
                role,
                bad_hop: bad_hop.map(|(c, p)| (Asn(c), Asn(p))),
            },
            StoredDetail::Path { asn } => Detail::Path { asn: asn.map(Asn) },
            StoredDetail::Prefix { block, max_length } => Detail::Prefix { block, max_length },
            StoredDetail::PrefixSet {
                allowed,
                max_length,
            } => Detail::PrefixSet {
                allowed: allowed.into_iter().map(Asn).collect(),
                max_length,
            },
            StoredDetail::Conflict { against, witnesses } => Detail::Conflict {
                against: against
                    .into_iter()
                    .map(|c| ClaimRef {
                        prefix: c.prefix,
                        origin: c.origin.map(Asn),
                        established: EventTime(c.established),
                    })
                    .collect(),
                witnesses: witnesses.back(),
            },
            StoredDetail::Squat { lookback_s } => Detail::Squat { lookback_s },
            StoredDetail::Unconfirmed {
                window_s,
                witnesses,
            } => Detail::Unconfirmed {
                window_s,
                witnesses: witnesses.back(),
            },
            StoredDetail::Untrusted { witnesses } => Detail::Untrusted {
                witnesses: witnesses.back(),
            },
            StoredDetail::NewLink { upstream, origin } => Detail::NewLink {
                upstream: Asn(upstream),
                origin: Asn(origin),
            },
            StoredDetail::Operator { operator } => Detail::Operator { operator },
        }
    }
}

/// [`Item::Record`] as written: the same bytes, straight from a [`Decision`] (nothing
/// copied but the rare witness lists).
#[derive(Serialize)]
pub(crate) enum ItemRef<'a> {
    Record(RecordRef<'a>),
}

impl<'a> ItemRef<'a> {
    pub(crate) fn of(d: &'a Decision) -> Self {
        ItemRef::Record(RecordRef {
            seq: d.seq,
            time: d.time.0,
            outcome: d.outcome,
            previous: d.previous,
            cause: d.cause,
            peer: d.peer,
            peer_asn: d.peer_asn.0,
            prefix: d.prefix,
            path_id: d.path_id,
            origin: d.origin.map(|a| a.0),
            as_path: d.as_path.as_ref().map(|p| p.words()),
            since: d.since.0,
            reasons: ReasonsRef(&d.reasons),
            policy: &d.policy,
            rpki_serial: d.rpki_serial,
        })
    }
}

/// [`Record`] as written, field for field.
#[derive(Serialize)]
pub(crate) struct RecordRef<'a> {
    seq: u64,
    time: i64,
    outcome: Outcome,
    previous: Outcome,
    cause: Cause,
    peer: IpAddr,
    peer_asn: u32,
    prefix: IpNet,
    path_id: Option<u32>,
    origin: Option<u32>,
    as_path: Option<&'a [u32]>,
    since: i64,
    reasons: ReasonsRef<'a>,
    policy: &'a str,
    rpki_serial: Option<u64>,
}

/// A decision's reasons, written as [`StoredReason`]s one by one.
pub(crate) struct ReasonsRef<'a>(&'a [Reason]);

impl Serialize for ReasonsRef<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|r| StoredReason {
            rule: Cow::Borrowed(&r.rule),
            action: r.action,
            detail: StoredDetail::of(&r.detail),
        }))
    }
}

impl Record<'_> {
    pub(crate) fn into_decision(self) -> Decision {
        Decision {
            seq: self.seq,
            time: EventTime(self.time),
            outcome: self.outcome,
            previous: self.previous,
            cause: self.cause,
            peer: self.peer,
            peer_asn: Asn(self.peer_asn),
            prefix: self.prefix,
            path_id: self.path_id,
            origin: self.origin.map(Asn),
            as_path: self.as_path.map(|w| AsPath::from_words(&w)),
            since: EventTime(self.since),
            reasons: self
                .reasons
                .into_iter()
                .map(|r| Reason {
                    rule: Cow::Owned(r.rule.into_owned()),
                    action: r.action,
                    detail: r.detail.back(),
                })
                .collect(),
            policy: Arc::from(self.policy.as_ref()),
            rpki_serial: self.rpki_serial,
            peer_idx: Default::default(),
            prefix_id: Default::default(),
        }
    }
}

/// postcard's output appended to a buffer that outlives it (postcard's own `Vec` flavor
/// takes the buffer by value and loses it on an error; its `io::Write` one costs a call
/// per field).
struct Append<'a>(&'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for Append<'_> {
    type Output = ();
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        // Most are a varint's few bytes: pushed, not handed to memcpy one call each
        // (a fifth of the state thread's time, measured with perf on the BMP bench).
        if data.len() <= 16 {
            self.0.reserve(data.len());
            for &b in data {
                self.0.push(b);
            }
        } else {
            self.0.extend_from_slice(data);
        }
        Ok(())
    }
    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.push(data);
        Ok(())
    }
    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// Appends `value` (an [`Item`], or a snapshot's entry) to a batch.
pub(crate) fn append<T: Serialize>(batch: &mut Vec<u8>, value: &T) {
    // Writing to a Vec cannot fail, and every type here encodes; should one ever not,
    // its partial bytes are cut off rather than left to damage the items after it.
    let len = batch.len();
    if postcard::serialize_with_flavor(value, Append(batch)).is_err() {
        batch.truncate(len);
    }
}

/// The items of a batch, in order; `Err` with those read before the first that does not
/// decode (a damaged row: the rest of it is lost, never guessed at).
pub(crate) fn read(
    mut bytes: &[u8],
) -> Result<Vec<Item<'static>>, (Vec<Item<'static>>, postcard::Error)> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        match postcard::take_from_bytes::<Item<'static>>(bytes) {
            Ok((item, rest)) => {
                out.push(item);
                bytes = rest;
            }
            Err(e) => return Err((out, e)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::decision::{ClaimRef, WitnessCount, WitnessRef};
    use proptest::prelude::*;

    /// A decision with a reason of every kind and every optional field filled in.
    fn full() -> Decision {
        let count = WitnessCount {
            effective: 1.5,
            needed: 2.0,
            witnesses: vec![WitnessRef {
                peer: "2001:db8::1".parse().unwrap(),
                peer_asn: Asn(64500),
                trust: 0.75,
                neighbour: Asn(3356),
                since: EventTime(1_000_000),
                weight: 1.0,
            }],
        };
        let net: IpNet = "192.0.2.0/24".parse().unwrap();
        let details = vec![
            Detail::Rpki {
                rpki: InvalidReasonOrNotFound::WrongOrigin,
                vrps: Some(vec![VrpBrief {
                    prefix: "192.0.0.0/16".parse().unwrap(),
                    max_length: 24,
                    asn: Asn(13335),
                }]),
            },
            Detail::Rpki {
                rpki: InvalidReasonOrNotFound::TooLong,
                vrps: None,
            },
            Detail::Aspa {
                role: PeerRole::Customer,
                bad_hop: Some((Asn(1), Asn(2))),
            },
            Detail::Path {
                asn: Some(Asn(23456)),
            },
            Detail::Prefix {
                block: Some("10.0.0.0/8".parse().unwrap()),
                max_length: Some(24),
            },
            Detail::PrefixSet {
                allowed: vec![Asn(1), Asn(2)],
                max_length: None,
            },
            Detail::Conflict {
                against: vec![ClaimRef {
                    prefix: net,
                    origin: None,
                    established: EventTime(5),
                }],
                witnesses: count.clone(),
            },
            Detail::Squat { lookback_s: 86400 },
            Detail::Unconfirmed {
                window_s: 900,
                witnesses: count.clone(),
            },
            Detail::Untrusted { witnesses: count },
            Detail::NewLink {
                upstream: Asn(7),
                origin: Asn(8),
            },
            Detail::Operator {
                operator: "noc: ticket 42".into(),
            },
        ];
        Decision {
            seq: 300,
            time: EventTime(1_700_000_000_123_456),
            outcome: Outcome::Quarantine,
            previous: Outcome::Propagate,
            cause: Cause::WitnessesChanged,
            peer: "198.51.100.7".parse().unwrap(),
            peer_asn: Asn(4_200_000_000),
            prefix: net,
            path_id: Some(9),
            origin: Some(Asn(64496)),
            as_path: Some(AsPath::from_segments([
                (crate::model::SegmentKind::Sequence, &[3356u32, 64496][..]),
                (crate::model::SegmentKind::Set, &[1u32, 2][..]),
            ])),
            since: EventTime(1_699_999_999_000_000),
            reasons: details
                .into_iter()
                .map(|detail| Reason {
                    rule: Cow::Borrowed("rpki.invalid"),
                    action: Action::Quarantine,
                    detail,
                })
                .collect(),
            policy: Arc::from("sha256:0123456789abcdef"),
            rpki_serial: Some(77),
            peer_idx: Default::default(),
            prefix_id: Default::default(),
        }
    }

    /// What is written straight from a decision is exactly what the stored form encodes,
    /// and reads back as the same decision (the API's JSON included).
    #[test]
    fn a_decision_reads_back_as_written() {
        let d = full();
        let mut direct = Vec::new();
        append(&mut direct, &ItemRef::of(&d));
        let mut items = read(&direct).expect("reads");
        assert_eq!(items.len(), 1);
        let item = items.pop().unwrap();
        let mut again = Vec::new();
        append(&mut again, &item);
        assert_eq!(direct, again, "the stored form encodes as the direct one");
        let back = match item {
            Item::Record(r) => r.into_decision(),
            other => panic!("{other:?}"),
        };
        assert_eq!(back, d);
        assert_eq!(
            serde_json::to_string(&back).unwrap(),
            serde_json::to_string(&d).unwrap()
        );
    }

    /// Two items in a row, the second cut short: the first is kept, the damage said.
    #[test]
    fn a_cut_batch_keeps_what_came_before_the_cut() {
        let d = full();
        let mut batch = Vec::new();
        append(&mut batch, &ItemRef::of(&d));
        let one = batch.len();
        append(
            &mut batch,
            &Item::Json {
                seq: 301,
                json: "{}".into(),
            },
        );
        append(&mut batch, &ItemRef::of(&d));
        let (kept, _) = read(&batch[..batch.len() - 3]).expect_err("damaged");
        assert_eq!(kept.iter().map(Item::seq).collect::<Vec<_>>(), [300, 301]);
        assert_eq!(read(&batch[..one]).unwrap().len(), 1);
    }

    proptest! {
        /// Any bytes: an error or items, never a panic or a runaway allocation.
        #[test]
        fn any_bytes_read_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = read(&bytes);
        }

        /// A real batch with bytes flipped: whatever reads is a decision or an error.
        #[test]
        fn a_damaged_batch_reads_up_to_its_damage(
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        ) {
            let d = full();
            let mut batch = Vec::new();
            for _ in 0..3 {
                append(&mut batch, &ItemRef::of(&d));
            }
            for (at, x) in flips {
                let n = batch.len();
                batch[at % n] ^= x | 1;
            }
            let items = match read(&batch) {
                Ok(items) => items,
                Err((items, _)) => items,
            };
            for i in items {
                let _ = i.json();
            }
        }
    }
}
