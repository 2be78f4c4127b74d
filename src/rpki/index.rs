//! The covering-VRP index: "all VRPs whose prefix covers this prefix", for IPv4 and IPv6.
//!
//! Chosen by measurement (`cargo bench --bench replay` prints both): prefix-trie's
//! `cover()` does about 3.4 M lookups/s here on random queries; this structure is a sorted
//! array, so lookups are a short binary search in a cache-friendly bucket plus a walk up
//! a precomputed parent chain.
//!
//! How it works. The distinct VRP prefixes are sorted by (start address, length). VRP
//! prefixes are laminar: two of them are either nested or disjoint. For a query prefix
//! q = (s, L), let e be the last entry with (start, len) <= (s, L). Every prefix c that
//! covers q satisfies (c.start, c.len) <= (s, L), so it sorts at or before e; and since c
//! contains s, and e.start lies between c.start and s, c contains e.start, so (laminar) c
//! is e itself or one of e's ancestors. So the covering prefixes are exactly the entries on
//! e's parent chain from the first one that covers q upwards. `parent[i]` (the nearest
//! enclosing VRP prefix) is computed once with a stack. A first-level table on the top
//! address bits narrows the binary search to one bucket.

use super::vrps::{Vrp, VrpSet};
use crate::model::Asn;
use ipnet::IpNet;

const NONE: u32 = u32::MAX;

/// What the index keeps of each VRP for validation (24 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Payload {
    pub asn: Asn,
    pub max_length: u8,
    /// Unix seconds after which the VRP no longer counts; `i64::MAX` when it never expires.
    pub expires: i64,
    /// Position of the full [`Vrp`] in [`VrpIndex::vrps`].
    pub id: u32,
}

/// An address family's view of an address: its bits as an unsigned integer.
trait Addr: Copy + Ord + Default {
    const BUCKET_BITS: u32;
    fn top_bits(self, n: u32) -> usize;
    /// Does the prefix (start, len) contain `addr`?
    fn covers(start: Self, len: u8, addr: Self) -> bool;
    /// The prefix (start, len).
    fn net(start: Self, len: u8) -> IpNet;
}

impl Addr for u32 {
    const BUCKET_BITS: u32 = 16;
    #[inline]
    fn top_bits(self, n: u32) -> usize {
        (self >> (32 - n)) as usize
    }
    #[inline]
    fn covers(start: u32, len: u8, addr: u32) -> bool {
        len == 0 || (start ^ addr) >> (32 - u32::from(len)) == 0
    }
    #[inline]
    fn net(start: u32, len: u8) -> IpNet {
        // Keys are VRP prefixes: a valid length.
        IpNet::V4(ipnet::Ipv4Net::new(start.into(), len).unwrap_or_default())
    }
}

impl Addr for u128 {
    const BUCKET_BITS: u32 = 20;
    #[inline]
    fn top_bits(self, n: u32) -> usize {
        (self >> (128 - n)) as usize
    }
    #[inline]
    fn covers(start: u128, len: u8, addr: u128) -> bool {
        len == 0 || (start ^ addr) >> (128 - u32::from(len)) == 0
    }
    #[inline]
    fn net(start: u128, len: u8) -> IpNet {
        IpNet::V6(ipnet::Ipv6Net::new(start.into(), len).unwrap_or_default())
    }
}

/// The index for one address family.
struct Family<A> {
    /// Distinct VRP prefixes, sorted by (start, len).
    keys: Vec<(A, u8)>,
    parent: Vec<u32>,
    /// Payloads of `keys[i]` are `payloads[offsets[i]..offsets[i + 1]]`.
    offsets: Vec<u32>,
    payloads: Vec<Payload>,
    /// `bucket[b]` = first key whose start's top bits are >= b.
    bucket: Vec<u32>,
}

impl<A: Addr> Family<A> {
    fn build(mut items: Vec<((A, u8), Payload)>) -> Self {
        items.sort_unstable_by_key(|(k, p)| (*k, p.asn, p.max_length, p.expires, p.id));
        let mut keys: Vec<(A, u8)> = Vec::new();
        let mut offsets: Vec<u32> = Vec::new();
        let mut payloads: Vec<Payload> = Vec::with_capacity(items.len());
        for (key, payload) in items {
            if keys.last() != Some(&key) {
                keys.push(key);
                offsets.push(payloads.len() as u32);
            }
            // Exact duplicates (same prefix, AS, maxLength) are one VRP (RFC 8210 set
            // semantics); keep the one that expires last.
            let first_of_key = offsets.last().map_or(0, |o| *o as usize);
            if payloads.len() > first_of_key {
                if let Some(last) = payloads.last_mut() {
                    if last.asn == payload.asn && last.max_length == payload.max_length {
                        last.expires = last.expires.max(payload.expires);
                        continue;
                    }
                }
            }
            payloads.push(payload);
        }
        offsets.push(payloads.len() as u32);

        let mut parent = vec![NONE; keys.len()];
        let mut stack: Vec<u32> = Vec::new();
        for (i, &(start, _)) in keys.iter().enumerate() {
            while let Some(&top) = stack.last() {
                let (ts, tl) = keys[top as usize];
                if A::covers(ts, tl, start) {
                    break;
                }
                stack.pop();
            }
            parent[i] = stack.last().copied().unwrap_or(NONE);
            stack.push(i as u32);
        }

        let nb = 1usize << A::BUCKET_BITS;
        let mut bucket = vec![0u32; nb + 1];
        let mut k = 0usize;
        for (b, slot) in bucket.iter_mut().enumerate() {
            while k < keys.len() && keys[k].0.top_bits(A::BUCKET_BITS) < b {
                k += 1;
            }
            *slot = k as u32;
        }
        Family {
            keys,
            parent,
            offsets,
            payloads,
            bucket,
        }
    }

    /// The deepest VRP prefix covering (s, l), or NONE.
    #[inline]
    fn deepest_covering(&self, s: A, l: u8) -> u32 {
        if self.keys.is_empty() {
            return NONE;
        }
        let b = s.top_bits(A::BUCKET_BITS);
        let lo = self.bucket[b] as usize;
        let hi = self.bucket[b + 1] as usize;
        let pos = lo + self.keys[lo..hi].partition_point(|k| *k <= (s, l));
        let mut e = match pos.checked_sub(1) {
            Some(e) => e as u32,
            None => return NONE,
        };
        while e != NONE {
            let (es, el) = self.keys[e as usize];
            if el <= l && A::covers(es, el, s) {
                return e;
            }
            e = self.parent[e as usize];
        }
        NONE
    }

    /// Prefetches what [`Self::for_each_from`] reads first for `e`: stage 0 the entry's
    /// key, parent and offsets; stage 1 (once those are cached) its first payload.
    #[inline]
    fn prefetch(&self, e: u32, stage: u8) {
        let i = e as usize;
        if i >= self.keys.len() {
            return;
        }
        if stage == 0 {
            crate::mem::prefetch(&self.keys[i]);
            crate::mem::prefetch(&self.parent[i]);
            crate::mem::prefetch(&self.offsets[i]);
        } else if let Some(p) = self.payloads.get(self.offsets[i] as usize) {
            crate::mem::prefetch(p);
        }
    }

    /// Walks the parent chain from `e` (a [`Self::deepest_covering`] result).
    #[inline]
    /// [`Self::for_each_from`] with each VRP's prefix, from the key (no look-up in the
    /// full VRP list).
    fn for_each_net_from(&self, mut e: u32, mut f: impl FnMut(IpNet, &Payload)) {
        while e != NONE {
            let i = e as usize;
            let (start, len) = self.keys[i];
            let net = A::net(start, len);
            for p in &self.payloads[self.offsets[i] as usize..self.offsets[i + 1] as usize] {
                f(net, p);
            }
            e = self.parent[i];
        }
    }

    fn for_each_from(&self, mut e: u32, mut f: impl FnMut(u8, &Payload)) {
        while e != NONE {
            let i = e as usize;
            let len = self.keys[i].1;
            for p in &self.payloads[self.offsets[i] as usize..self.offsets[i + 1] as usize] {
                f(len, p);
            }
            e = self.parent[i];
        }
    }

    fn heap_bytes(&self) -> usize {
        self.keys.capacity() * std::mem::size_of::<(A, u8)>()
            + self.parent.capacity() * 4
            + self.offsets.capacity() * 4
            + self.payloads.capacity() * std::mem::size_of::<Payload>()
            + self.bucket.capacity() * 4
    }
}

/// Where the covering VRPs of one prefix start in a [`VrpIndex`]: the deepest covering VRP
/// prefix, found once by [`VrpIndex::cover`] and walked by [`VrpIndex::for_each_in_cover`].
/// Callers that see the same prefix again and again (a RIB keeps every prefix it holds)
/// cache it per prefix, so validating a route becomes a short walk up the parent chain.
/// A `Cover` belongs to the index that made it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cover(u32);

impl Cover {
    /// No VRP covers the prefix.
    pub const NONE: Cover = Cover(NONE);
    /// A placeholder for "not looked up yet", which no index returns (an IPv6 entry at
    /// position 2^31 - 2). Walking or prefetching it does nothing.
    pub const UNSET: Cover = Cover(NONE - 1);
    const V6: u32 = 1 << 31;

    pub fn is_none(self) -> bool {
        self.0 == NONE
    }
}

/// The covering-VRP index over a whole [`VrpSet`].
pub struct VrpIndex {
    v4: Family<u32>,
    v6: Family<u128>,
    /// The VRPs indexed, for explaining verdicts.
    pub vrps: Vec<Vrp>,
}

impl VrpIndex {
    pub fn new(set: &VrpSet) -> Self {
        Self::from_vrps(set.vrps.clone())
    }

    pub fn from_vrps(vrps: Vec<Vrp>) -> Self {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for (id, v) in vrps.iter().enumerate() {
            let payload = Payload {
                asn: v.asn,
                max_length: v.max_length,
                expires: v.expires.unwrap_or(i64::MAX),
                id: id as u32,
            };
            match v.prefix {
                IpNet::V4(n) => v4.push(((u32::from(n.network()), n.prefix_len()), payload)),
                IpNet::V6(n) => v6.push(((u128::from(n.network()), n.prefix_len()), payload)),
            }
        }
        VrpIndex {
            v4: Family::build(v4),
            v6: Family::build(v6),
            vrps,
        }
    }

    /// Calls `f(vrp_prefix_len, payload)` for every VRP whose prefix covers `prefix`,
    /// deepest first. Expired VRPs are included: the caller decides what time it is.
    #[inline]
    pub fn for_each_covering(&self, prefix: &IpNet, f: impl FnMut(u8, &Payload)) {
        self.for_each_in_cover(self.cover(prefix), f)
    }

    /// The start of `prefix`'s covering chain.
    #[inline]
    pub fn cover(&self, prefix: &IpNet) -> Cover {
        let e = match prefix {
            IpNet::V4(n) => self
                .v4
                .deepest_covering(u32::from(n.network()), n.prefix_len()),
            IpNet::V6(n) => {
                match self
                    .v6
                    .deepest_covering(u128::from(n.network()), n.prefix_len())
                {
                    NONE => NONE,
                    e => e | Cover::V6,
                }
            }
        };
        Cover(e)
    }

    /// Starts loading what validating against `cover` reads first: call with stage 0 a
    /// few prefixes ahead, then stage 1 a few later (it reads what stage 0 loaded).
    #[inline]
    pub fn prefetch(&self, cover: Cover, stage: u8) {
        match cover.0 {
            NONE => {}
            e if e & Cover::V6 != 0 => self.v6.prefetch(e & !Cover::V6, stage),
            e => self.v4.prefetch(e, stage),
        }
    }

    /// Like [`Self::for_each_covering`], from a [`Cover`] of this index.
    #[inline]
    pub fn for_each_in_cover(&self, cover: Cover, f: impl FnMut(u8, &Payload)) {
        match cover.0 {
            NONE => {}
            e if e & Cover::V6 != 0 => self.v6.for_each_from(e & !Cover::V6, f),
            e => self.v4.for_each_from(e, f),
        }
    }

    /// Calls `f` with every VRP covering `prefix` as (its prefix, its payload), deepest
    /// first: the VRPs themselves, without reading [`Self::vrps`] (one cache miss each on a
    /// full table).
    pub fn for_each_covering_net(&self, prefix: &IpNet, f: impl FnMut(IpNet, &Payload)) {
        match self.cover(prefix).0 {
            NONE => {}
            e if e & Cover::V6 != 0 => self.v6.for_each_net_from(e & !Cover::V6, f),
            e => self.v4.for_each_net_from(e, f),
        }
    }

    /// The VRPs covering `prefix` (deepest first), expired ones too.
    pub fn covering(&self, prefix: &IpNet) -> Vec<&Vrp> {
        let mut out = Vec::new();
        self.for_each_covering(prefix, |_, p| out.push(&self.vrps[p.id as usize]));
        out
    }

    /// Number of distinct VRPs indexed (exact duplicates merged).
    pub fn len(&self) -> usize {
        self.v4.payloads.len() + self.v6.payloads.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes used by the lookup structures (not counting [`Self::vrps`]).
    pub fn heap_bytes(&self) -> usize {
        self.v4.heap_bytes() + self.v6.heap_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn vrp(p: &str, max: u8, asn: u32) -> Vrp {
        Vrp {
            prefix: p.parse().unwrap(),
            max_length: max,
            asn: Asn(asn),
            ta: None,
            expires: None,
        }
    }

    fn linear(vrps: &[Vrp], q: &IpNet) -> Vec<Vrp> {
        let mut v: Vec<Vrp> = vrps
            .iter()
            .filter(|v| v.prefix.contains(q))
            .cloned()
            .collect();
        v.sort_by_key(|v| (v.prefix, v.asn, v.max_length));
        v.dedup_by_key(|v| (v.prefix, v.asn, v.max_length));
        v
    }

    fn indexed(idx: &VrpIndex, q: &IpNet) -> Vec<Vrp> {
        // The VRPs as the keys and payloads give them, in the same order as the full list.
        let mut keyed = Vec::new();
        idx.for_each_covering_net(q, |net, p| keyed.push((net, p.max_length, p.asn)));
        let full: Vec<_> = idx
            .covering(q)
            .into_iter()
            .map(|v| (v.prefix, v.max_length, v.asn))
            .collect();
        assert_eq!(keyed, full, "query {q}");
        let mut v: Vec<Vrp> = idx.covering(q).into_iter().cloned().collect();
        v.sort_by_key(|v| (v.prefix, v.asn, v.max_length));
        v
    }

    #[test]
    fn nested_and_sibling_prefixes() {
        let vrps = vec![
            vrp("10.0.0.0/8", 8, 1),
            vrp("10.0.0.0/16", 24, 2),
            vrp("10.0.1.0/24", 24, 3),
            vrp("10.0.2.0/24", 24, 4),
            vrp("10.1.0.0/16", 16, 5),
            vrp("0.0.0.0/0", 32, 0),
            vrp("2001:db8::/32", 48, 6),
        ];
        let idx = VrpIndex::from_vrps(vrps.clone());
        for q in [
            "10.0.0.0/8",
            "10.0.0.0/12",
            "10.0.0.0/24",
            "10.0.1.0/24",
            "10.0.1.128/25",
            "10.0.3.0/24",
            "10.2.0.0/16",
            "11.0.0.0/8",
            "0.0.0.0/0",
            "2001:db8:1::/48",
            "2001:db9::/32",
        ] {
            let q: IpNet = q.parse().unwrap();
            assert_eq!(indexed(&idx, &q), linear(&vrps, &q), "query {q}");
        }
    }

    #[test]
    fn duplicates_merge_and_empty_index_works() {
        let idx = VrpIndex::from_vrps(vec![vrp("10.0.0.0/8", 8, 1), vrp("10.0.0.0/8", 8, 1)]);
        assert_eq!(idx.len(), 1);
        let empty = VrpIndex::from_vrps(vec![]);
        assert!(empty.covering(&"10.0.0.0/8".parse().unwrap()).is_empty());
        assert!(empty.covering(&"::/0".parse().unwrap()).is_empty());
    }

    fn arb_v4() -> impl Strategy<Value = IpNet> {
        // A small space (10.0.0.0/14 and its supernets) so that prefixes nest often.
        (0u32..(1 << 14), 0u8..=32).prop_map(|(bits, len)| {
            let addr = (10u32 << 24) | (bits << 10);
            IpNet::V4(
                ipnet::Ipv4Net::new(std::net::Ipv4Addr::from(addr), len)
                    .unwrap()
                    .trunc(),
            )
        })
    }

    fn arb_v6() -> impl Strategy<Value = IpNet> {
        (0u128..(1 << 16), 0u8..=128).prop_map(|(bits, len)| {
            let addr = (0x2001_0db8u128 << 96) | (bits << 80);
            IpNet::V6(
                ipnet::Ipv6Net::new(std::net::Ipv6Addr::from(addr), len)
                    .unwrap()
                    .trunc(),
            )
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn index_equals_linear_scan(
            v4 in proptest::collection::vec((arb_v4(), 0u8..3, 0u32..4), 0..60),
            v6 in proptest::collection::vec((arb_v6(), 0u8..3, 0u32..4), 0..30),
            q4 in proptest::collection::vec(arb_v4(), 1..40),
            q6 in proptest::collection::vec(arb_v6(), 1..20),
        ) {
            let vrps: Vec<Vrp> = v4.into_iter().chain(v6).map(|(p, extra, asn)| Vrp {
                prefix: p,
                max_length: (p.prefix_len() + extra).min(p.max_prefix_len()),
                asn: Asn(asn),
                ta: None,
                expires: None,
            }).collect();
            let idx = VrpIndex::from_vrps(vrps.clone());
            for q in q4.iter().chain(q6.iter()) {
                prop_assert_eq!(indexed(&idx, q), linear(&vrps, q), "query {}", q);
            }
        }
    }
}
