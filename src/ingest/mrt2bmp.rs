//! MRT BGP4MP → BMP: re-encodes the UPDATEs a collector recorded as the Route Monitoring
//! messages a router would have sent, so real routes can be streamed into the daemon (a
//! demo, a benchmark, and the test that BMP and MRT are judged alike).
//!
//! Each BGP4MP / BGP4MP_ET `MESSAGE` or `MESSAGE_AS4` record carrying an UPDATE becomes one
//! Route Monitoring message (RFC 7854 §4.6): pre-policy Adj-RIB-In, the record's peer
//! address and AS, its time as the per-peer timestamp, the A flag for 2-byte AS paths,
//! and the UPDATE PDU byte for byte. A `STATE_CHANGE` out of Established becomes a Peer
//! Down (reason 4, remote close without data). Nothing else is encoded: no Peer Up (an
//! MRT session's first routes are news, not an initial table, and a Peer Up would make
//! the converter treat them as a table transfer), no Initiation, and no `*_LOCAL` or
//! ADD-PATH records (whose NLRI a BMP reader could not decode without the session's
//! capabilities); those are counted.

use serde::Serialize;
use std::net::IpAddr;

/// What the conversion did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Mrt2BmpStats {
    pub records: u64,
    pub route_monitoring: u64,
    pub peer_down: u64,
    /// Records of other types or subtypes, and non-UPDATE BGP messages.
    pub skipped: u64,
    /// Bytes at the end that are not a whole MRT record.
    pub truncated_tail: u64,
}

const BGP4MP: u16 = 16;
const BGP4MP_ET: u16 = 17;

/// Converts uncompressed MRT bytes; appends the BMP stream to `out`.
pub fn convert(mrt: &[u8], out: &mut Vec<u8>) -> Mrt2BmpStats {
    let mut st = Mrt2BmpStats::default();
    let mut at = 0usize;
    while at + 12 <= mrt.len() {
        let h = &mrt[at..at + 12];
        let secs = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
        let kind = u16::from_be_bytes([h[4], h[5]]);
        let sub = u16::from_be_bytes([h[6], h[7]]);
        let len = u32::from_be_bytes([h[8], h[9], h[10], h[11]]) as usize;
        let Some(body) = mrt.get(at + 12..at + 12 + len) else {
            break;
        };
        at += 12 + len;
        st.records += 1;
        let (usecs, body) = match kind {
            BGP4MP => (0u32, body),
            BGP4MP_ET if body.len() >= 4 => (
                u32::from_be_bytes([body[0], body[1], body[2], body[3]]),
                &body[4..],
            ),
            _ => {
                st.skipped += 1;
                continue;
            }
        };
        let done = match sub {
            // MESSAGE (2-byte ASNs), MESSAGE_AS4.
            1 | 4 => message(body, sub == 4, secs, usecs, out),
            // STATE_CHANGE, STATE_CHANGE_AS4.
            0 | 5 => state_change(body, sub == 5, secs, usecs, out),
            _ => None,
        };
        match done {
            Some(Encoded::RouteMonitoring) => st.route_monitoring += 1,
            Some(Encoded::PeerDown) => st.peer_down += 1,
            None => st.skipped += 1,
        }
    }
    st.truncated_tail = (mrt.len() - at) as u64;
    st
}

enum Encoded {
    RouteMonitoring,
    PeerDown,
}

/// (peer AS, peer address, rest of the body after both addresses).
fn peer_of(body: &[u8], as4: bool) -> Option<(u32, IpAddr, &[u8])> {
    let asw = if as4 { 4 } else { 2 };
    let peer_as = if as4 {
        u32::from_be_bytes(body.get(0..4)?.try_into().ok()?)
    } else {
        u32::from(u16::from_be_bytes(body.get(0..2)?.try_into().ok()?))
    };
    let afi_at = 2 * asw + 2;
    let afi = u16::from_be_bytes(body.get(afi_at..afi_at + 2)?.try_into().ok()?);
    let addr_at = afi_at + 2;
    let (peer, rest) = match afi {
        1 => {
            let a: [u8; 4] = body.get(addr_at..addr_at + 4)?.try_into().ok()?;
            (IpAddr::from(a), body.get(addr_at + 8..)?)
        }
        2 => {
            let a: [u8; 16] = body.get(addr_at..addr_at + 16)?.try_into().ok()?;
            (IpAddr::from(a), body.get(addr_at + 32..)?)
        }
        _ => return None,
    };
    Some((peer_as, peer, rest))
}

fn per_peer_header(
    out: &mut Vec<u8>,
    peer: IpAddr,
    peer_as: u32,
    as2: bool,
    secs: u32,
    usecs: u32,
) {
    let mut flags = 0u8;
    if peer.is_ipv6() {
        flags |= 0x80;
    }
    if as2 {
        flags |= 0x20;
    }
    out.push(0); // global instance peer
    out.push(flags);
    out.extend_from_slice(&[0; 8]); // distinguisher
    match peer {
        IpAddr::V4(a) => {
            out.extend_from_slice(&[0; 12]);
            out.extend_from_slice(&a.octets());
        }
        IpAddr::V6(a) => out.extend_from_slice(&a.octets()),
    }
    out.extend_from_slice(&peer_as.to_be_bytes());
    out.extend_from_slice(&[0; 4]); // BGP ID: not in BGP4MP
    out.extend_from_slice(&secs.to_be_bytes());
    out.extend_from_slice(&usecs.to_be_bytes());
}

fn common_header(out: &mut Vec<u8>, kind: u8) -> usize {
    let start = out.len();
    out.extend_from_slice(&[3, 0, 0, 0, 0, kind]);
    start
}

fn finish(out: &mut [u8], start: usize) {
    let len = (out.len() - start) as u32;
    out[start + 1..start + 5].copy_from_slice(&len.to_be_bytes());
}

fn message(body: &[u8], as4: bool, secs: u32, usecs: u32, out: &mut Vec<u8>) -> Option<Encoded> {
    let (peer_as, peer, bgp) = peer_of(body, as4)?;
    // The BGP message: 16-byte marker, length, type; only UPDATEs (type 2).
    let len = usize::from(u16::from_be_bytes(bgp.get(16..18)?.try_into().ok()?));
    if bgp.get(18) != Some(&2) || len < 19 || bgp.len() < len {
        return None;
    }
    let start = common_header(out, 0);
    per_peer_header(out, peer, peer_as, !as4, secs, usecs);
    out.extend_from_slice(&bgp[..len]);
    finish(out, start);
    Some(Encoded::RouteMonitoring)
}

fn state_change(
    body: &[u8],
    as4: bool,
    secs: u32,
    usecs: u32,
    out: &mut Vec<u8>,
) -> Option<Encoded> {
    let (peer_as, peer, rest) = peer_of(body, as4)?;
    let new_state = u16::from_be_bytes(rest.get(2..4)?.try_into().ok()?);
    if new_state == 6 {
        // Established: the MRT reader takes no event from it either.
        return None;
    }
    let start = common_header(out, 2);
    per_peer_header(out, peer, peer_as, !as4, secs, usecs);
    out.push(4); // remote system closed, no data
    finish(out, start);
    Some(Encoded::PeerDown)
}
