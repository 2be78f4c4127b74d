//! RTR PDUs (RFC 8210 and version 2 of draft-ietf-sidrops-8210bis): [`decode`], pure and
//! never panicking (property-tested), reads both layouts of the ASPA PDU (see there);
//! [`encode`] writes what the client and the daemon's own RTR server send.

use crate::rpki::vrps::AspaAfi;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::Serialize;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// The highest version this client speaks.
pub const MAX_VERSION: u8 = 2;
/// Largest PDU accepted (an ASPA with 16k providers; anything longer ends the session).
pub const MAX_PDU: usize = 65_536;

/// Timers from End of Data (RFC 8210 §6), in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Timing {
    pub refresh: u32,
    pub retry: u32,
    pub expire: u32,
}

impl Default for Timing {
    /// RFC 8210 §6's defaults (also what version 0 implies).
    fn default() -> Self {
        Timing {
            refresh: 3600,
            retry: 600,
            expire: 7200,
        }
    }
}

/// One RTR PDU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pdu {
    SerialNotify {
        version: u8,
        session: u16,
        serial: u32,
    },
    SerialQuery {
        version: u8,
        session: u16,
        serial: u32,
    },
    ResetQuery {
        version: u8,
    },
    CacheResponse {
        version: u8,
        session: u16,
    },
    Prefix {
        version: u8,
        announce: bool,
        prefix: IpNet,
        max_length: u8,
        asn: u32,
    },
    EndOfData {
        version: u8,
        session: u16,
        serial: u32,
        timing: Option<Timing>,
    },
    CacheReset {
        version: u8,
    },
    RouterKey {
        version: u8,
    },
    ErrorReport {
        version: u8,
        code: u16,
        text: String,
    },
    Aspa {
        version: u8,
        announce: bool,
        customer: u32,
        /// Set by the 8210bis-10 layout only (the later one covers both families).
        afi: Option<AspaAfi>,
        providers: Vec<u32>,
    },
}

impl Pdu {
    pub fn version(&self) -> u8 {
        match *self {
            Pdu::SerialNotify { version, .. }
            | Pdu::SerialQuery { version, .. }
            | Pdu::ResetQuery { version }
            | Pdu::CacheResponse { version, .. }
            | Pdu::Prefix { version, .. }
            | Pdu::EndOfData { version, .. }
            | Pdu::CacheReset { version }
            | Pdu::RouterKey { version }
            | Pdu::ErrorReport { version, .. }
            | Pdu::Aspa { version, .. } => version,
        }
    }
}

/// Error Report codes (RFC 8210 §12).
pub mod code {
    pub const CORRUPT_DATA: u16 = 0;
    pub const INTERNAL_ERROR: u16 = 1;
    pub const NO_DATA_AVAILABLE: u16 = 2;
    pub const INVALID_REQUEST: u16 = 3;
    pub const UNSUPPORTED_VERSION: u16 = 4;
    pub const UNSUPPORTED_PDU: u16 = 5;
    pub const UNEXPECTED_VERSION: u16 = 8;
}

#[derive(Debug, thiserror::Error)]
pub enum RtrError {
    #[error("malformed PDU: {0}")]
    Malformed(String),
    #[error("PDU of {0} bytes is over the {MAX_PDU}-byte cap")]
    TooLong(usize),
    #[error("the cache reported error {code}: {text}")]
    Report { code: u16, text: String },
    #[error("protocol: {0}")]
    Protocol(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// An IPv4 (type 4) or IPv6 (type 6) Prefix PDU of the right length.
fn prefix_pdu(version: u8, v6: bool, b: &[u8]) -> Result<Pdu, RtrError> {
    let len = b.len();
    let (flags, plen, max_length) = (b[8], b[9], b[10]);
    let asn = be32(&b[len - 4..]);
    let prefix = if v6 {
        let mut a = [0u8; 16];
        a.copy_from_slice(&b[12..28]);
        Ipv6Net::new(Ipv6Addr::from(a), plen).map(IpNet::V6)
    } else {
        Ipv4Net::new(Ipv4Addr::from(be32(&b[12..16])), plen).map(IpNet::V4)
    }
    .map_err(|_| RtrError::Malformed(format!("prefix length {plen}")))?;
    let top = if v6 { 128 } else { 32 };
    if max_length < plen || max_length > top {
        return Err(RtrError::Malformed(format!(
            "max length {max_length} for a /{plen}"
        )));
    }
    Ok(Pdu::Prefix {
        version,
        announce: flags & 1 == 1,
        prefix: prefix.trunc(),
        max_length,
        asn,
    })
}

/// An ASPA PDU (type 11) in either layout (see [`decode`]); `header_flags` is the
/// header's byte 2.
fn aspa_pdu(version: u8, header_flags: u8, b: &[u8]) -> Result<Pdu, RtrError> {
    let len = b.len();
    let draft10 = header_flags == 0
        && len >= 16
        && b[8] <= 1
        && b[9] <= 1
        && len == 16 + 4 * be16(&b[10..12]) as usize;
    let (announce, afi, customer, rest) = if draft10 {
        let afi = if b[9] == 1 {
            AspaAfi::Ipv6
        } else {
            AspaAfi::Ipv4
        };
        (b[8] & 1 == 1, Some(afi), be32(&b[12..16]), &b[16..])
    } else {
        if len < 12 || !(len - 12).is_multiple_of(4) {
            return Err(RtrError::Malformed(format!("ASPA of length {len}")));
        }
        (header_flags & 1 == 1, None, be32(&b[8..12]), &b[12..])
    };
    Ok(Pdu::Aspa {
        version,
        announce,
        customer,
        afi,
        providers: rest.chunks_exact(4).map(be32).collect(),
    })
}

/// Reads one PDU from the start of `buf`: `Ok(None)` when it is not all there yet, else
/// the PDU and its length.
///
/// ASPA (type 11) comes in two layouts: 8210bis-10 (StayRTR 0.5.1) puts flags, AFI and a
/// provider count in the 4 bytes after the header, the header's own flags byte zero; the
/// later drafts put the flags in the header's byte 2 and the customer right after it.
/// A PDU is read as 8210bis-10 when its header flags byte is 0, its byte 8 (flags) and
/// byte 9 (AFI) are 0 or 1, and its length is exactly 16 + 4 × the count in bytes 10-11;
/// read the later way, that PDU would be a withdrawal of a customer AS below 2^17 whose
/// provider count is one more than its own low 16 bits, which nothing sends.
pub fn decode(buf: &[u8]) -> Result<Option<(Pdu, usize)>, RtrError> {
    if buf.len() < 8 {
        return Ok(None);
    }
    let version = buf[0];
    let kind = buf[1];
    let session = be16(&buf[2..4]);
    let len = be32(&buf[4..8]) as usize;
    if len < 8 {
        return Err(RtrError::Malformed(format!(
            "length {len} is shorter than the header"
        )));
    }
    if len > MAX_PDU {
        return Err(RtrError::TooLong(len));
    }
    if buf.len() < len {
        return Ok(None);
    }
    let b = &buf[..len];
    let want = |n: usize| -> Result<(), RtrError> {
        if len == n {
            Ok(())
        } else {
            Err(RtrError::Malformed(format!(
                "PDU type {kind} of length {len}, expected {n}"
            )))
        }
    };
    let pdu = match kind {
        0 | 1 => {
            want(12)?;
            let serial = be32(&b[8..12]);
            if kind == 0 {
                Pdu::SerialNotify {
                    version,
                    session,
                    serial,
                }
            } else {
                Pdu::SerialQuery {
                    version,
                    session,
                    serial,
                }
            }
        }
        2 => {
            want(8)?;
            Pdu::ResetQuery { version }
        }
        3 => {
            want(8)?;
            Pdu::CacheResponse { version, session }
        }
        4 | 6 => {
            want(if kind == 6 { 32 } else { 20 })?;
            prefix_pdu(version, kind == 6, b)?
        }
        7 => {
            let timing = if version == 0 {
                want(12)?;
                None
            } else {
                want(24)?;
                Some(Timing {
                    refresh: be32(&b[12..16]),
                    retry: be32(&b[16..20]),
                    expire: be32(&b[20..24]),
                })
            };
            Pdu::EndOfData {
                version,
                session,
                serial: be32(&b[8..12]),
                timing,
            }
        }
        8 => {
            want(8)?;
            Pdu::CacheReset { version }
        }
        9 => Pdu::RouterKey { version },
        10 => {
            let bad = || RtrError::Malformed("error report lengths".into());
            let elen = be32(b.get(8..12).ok_or_else(bad)?) as usize;
            let tstart = 12usize.checked_add(elen).ok_or_else(bad)?;
            let tlen = be32(b.get(tstart..tstart + 4).ok_or_else(bad)?) as usize;
            let text = b.get(tstart + 4..tstart + 4 + tlen).ok_or_else(bad)?;
            Pdu::ErrorReport {
                version,
                code: session,
                text: String::from_utf8_lossy(text).into_owned(),
            }
        }
        11 => aspa_pdu(version, buf[2], b)?,
        other => {
            return Err(RtrError::Protocol(format!("unknown PDU type {other}")));
        }
    };
    Ok(Some((pdu, len)))
}

/// A Serial Query or Reset Query, as sent.
pub fn encode_query(version: u8, state: Option<(u16, u32)>) -> Vec<u8> {
    match state {
        Some((session, serial)) => {
            let mut v = vec![version, 1];
            v.extend_from_slice(&session.to_be_bytes());
            v.extend_from_slice(&12u32.to_be_bytes());
            v.extend_from_slice(&serial.to_be_bytes());
            v
        }
        None => {
            let mut v = vec![version, 2, 0, 0];
            v.extend_from_slice(&8u32.to_be_bytes());
            v
        }
    }
}

/// Appends `pdu` as sent (what [`decode`] reads back). ASPA PDUs take the later
/// 8210bis layout (flags in the header, no AFI): an `afi` is not written. Router Keys
/// are not served (an empty one is written as the bare header).
pub fn encode(pdu: &Pdu, out: &mut Vec<u8>) {
    let head = |out: &mut Vec<u8>, version: u8, kind: u8, field: u16, len: usize| {
        out.extend_from_slice(&[version, kind]);
        out.extend_from_slice(&field.to_be_bytes());
        out.extend_from_slice(&(len as u32).to_be_bytes());
    };
    match pdu {
        &Pdu::SerialNotify {
            version,
            session,
            serial,
        }
        | &Pdu::SerialQuery {
            version,
            session,
            serial,
        } => {
            let kind = u8::from(matches!(pdu, Pdu::SerialQuery { .. }));
            head(out, version, kind, session, 12);
            out.extend_from_slice(&serial.to_be_bytes());
        }
        &Pdu::ResetQuery { version } => head(out, version, 2, 0, 8),
        &Pdu::CacheResponse { version, session } => head(out, version, 3, session, 8),
        &Pdu::Prefix {
            version,
            announce,
            prefix,
            max_length,
            asn,
        } => {
            let (kind, len) = match prefix {
                IpNet::V4(_) => (4, 20),
                IpNet::V6(_) => (6, 32),
            };
            head(out, version, kind, 0, len);
            out.extend_from_slice(&[u8::from(announce), prefix.prefix_len(), max_length, 0]);
            match prefix {
                IpNet::V4(p) => out.extend_from_slice(&p.network().octets()),
                IpNet::V6(p) => out.extend_from_slice(&p.network().octets()),
            }
            out.extend_from_slice(&asn.to_be_bytes());
        }
        &Pdu::EndOfData {
            version,
            session,
            serial,
            timing,
        } => {
            let timing = if version == 0 {
                None
            } else {
                Some(timing.unwrap_or_default())
            };
            head(
                out,
                version,
                7,
                session,
                if timing.is_some() { 24 } else { 12 },
            );
            out.extend_from_slice(&serial.to_be_bytes());
            if let Some(t) = timing {
                for v in [t.refresh, t.retry, t.expire] {
                    out.extend_from_slice(&v.to_be_bytes());
                }
            }
        }
        &Pdu::CacheReset { version } => head(out, version, 8, 0, 8),
        &Pdu::RouterKey { version } => head(out, version, 9, 0, 8),
        Pdu::ErrorReport {
            version,
            code,
            text,
        } => {
            head(out, *version, 10, *code, 16 + text.len());
            out.extend_from_slice(&0u32.to_be_bytes());
            out.extend_from_slice(&(text.len() as u32).to_be_bytes());
            out.extend_from_slice(text.as_bytes());
        }
        Pdu::Aspa {
            version,
            announce,
            customer,
            providers,
            ..
        } => {
            let providers: &[u32] = if *announce { providers } else { &[] };
            out.extend_from_slice(&[*version, 11, u8::from(*announce), 0]);
            out.extend_from_slice(&((12 + 4 * providers.len()) as u32).to_be_bytes());
            out.extend_from_slice(&customer.to_be_bytes());
            for p in providers {
                out.extend_from_slice(&p.to_be_bytes());
            }
        }
    }
}

/// An Error Report with no encapsulated PDU (what the client sends before it drops a
/// session over the cache's data).
pub(super) fn encode_error(version: u8, code: u16, text: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(16 + text.len());
    encode(
        &Pdu::ErrorReport {
            version,
            code,
            text: text.into(),
        },
        &mut v,
    );
    v
}
