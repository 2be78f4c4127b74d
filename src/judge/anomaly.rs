//! Bogon prefixes and reserved AS numbers.

use crate::model::{AsPath, Asn};
use ipnet::IpNet;

/// IPv4 special-purpose space that must not appear in the global table (IANA IPv4
/// Special-Purpose Address Registry, RFC 6890 and its updates, plus multicast and the
/// reserved 240/4). A route for one of these or any more-specific is a bogon.
const BOGONS_V4: &[(u32, u8)] = &[
    (0x0000_0000, 8),  // 0.0.0.0/8 "this network"
    (0x0a00_0000, 8),  // 10.0.0.0/8 private
    (0x6440_0000, 10), // 100.64.0.0/10 shared address space
    (0x7f00_0000, 8),  // 127.0.0.0/8 loopback
    (0xa9fe_0000, 16), // 169.254.0.0/16 link local
    (0xac10_0000, 12), // 172.16.0.0/12 private
    (0xc000_0000, 24), // 192.0.0.0/24 IETF protocol assignments
    (0xc000_0200, 24), // 192.0.2.0/24 TEST-NET-1
    (0xc0a8_0000, 16), // 192.168.0.0/16 private
    (0xc612_0000, 15), // 198.18.0.0/15 benchmarking
    (0xc633_6400, 24), // 198.51.100.0/24 TEST-NET-2
    (0xcb00_7100, 24), // 203.0.113.0/24 TEST-NET-3
    (0xe000_0000, 4),  // 224.0.0.0/4 multicast
    (0xf000_0000, 4),  // 240.0.0.0/4 reserved, and the limited broadcast address
];

/// IPv6 special-purpose space inside 2000::/3 (everything outside 2000::/3 is a bogon).
const BOGONS_V6: &[(u128, u8)] = &[
    (0x2001_0db8 << 96, 32), // 2001:db8::/32 documentation
    (0x2001_0002 << 96, 48), // 2001:2::/48 benchmarking
    (0x2001_0010 << 96, 28), // 2001:10::/28 ORCHID (deprecated)
    (0x3ffe << 112, 16),     // 3ffe::/16 the old 6bone
];

fn within_v4(addr: u32, len: u8, net: u32, net_len: u8) -> bool {
    len >= net_len && (net_len == 0 || (addr ^ net) >> (32 - u32::from(net_len)) == 0)
}

fn within_v6(addr: u128, len: u8, net: u128, net_len: u8) -> bool {
    len >= net_len && (net_len == 0 || (addr ^ net) >> (128 - u32::from(net_len)) == 0)
}

/// The special-purpose block `prefix` falls in, if any.
pub fn bogon(prefix: &IpNet) -> Option<IpNet> {
    match prefix {
        IpNet::V4(n) => {
            let a = u32::from(n.network());
            BOGONS_V4
                .iter()
                .find(|(net, len)| within_v4(a, n.prefix_len(), *net, *len))
                .and_then(|(net, len)| ipnet::Ipv4Net::new((*net).into(), *len).ok())
                .map(IpNet::V4)
        }
        IpNet::V6(n) => {
            let a = u128::from(n.network());
            if !within_v6(a, n.prefix_len(), 0x2000 << 112, 3) {
                return "::/0".parse().ok();
            }
            BOGONS_V6
                .iter()
                .find(|(net, len)| within_v6(a, n.prefix_len(), *net, *len))
                .and_then(|(net, len)| ipnet::Ipv6Net::new((*net).into(), *len).ok())
                .map(IpNet::V6)
        }
    }
}

/// Is `asn` one that must not appear in a global AS path: AS0 (RFC 7607), AS_TRANS 23456
/// (RFC 6793), documentation (RFC 5398), private use (RFC 6996) and reserved (RFC 7300,
/// IANA)?
pub fn reserved_asn(asn: u32) -> bool {
    matches!(asn,
        0
        | 23456
        | 64496..=64511
        | 64512..=65534
        | 65535
        | 65536..=65551
        | 65552..=131071
        | 4_200_000_000..=4_294_967_295)
}

/// The first reserved ASN in `path`, if any.
pub fn reserved_in_path(path: &AsPath) -> Option<Asn> {
    path.segments()
        .flat_map(|(_, asns)| asns.iter())
        .find(|a| reserved_asn(**a))
        .map(|a| Asn(*a))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn bogons() {
        assert_eq!(bogon(&p("10.1.0.0/16")), Some(p("10.0.0.0/8")));
        assert_eq!(bogon(&p("192.0.2.0/24")), Some(p("192.0.2.0/24")));
        assert_eq!(bogon(&p("192.0.0.0/16")), None, "covers, is not within");
        assert_eq!(bogon(&p("8.8.8.0/24")), None);
        assert_eq!(bogon(&p("100.64.1.0/24")), Some(p("100.64.0.0/10")));
        assert_eq!(bogon(&p("100.128.0.0/24")), None);
        assert_eq!(bogon(&p("240.1.0.0/16")), Some(p("240.0.0.0/4")));
        assert_eq!(bogon(&p("2001:db8:1::/48")), Some(p("2001:db8::/32")));
        assert_eq!(bogon(&p("fc00::/7")), Some(p("::/0")));
        assert_eq!(bogon(&p("2a00:1450::/32")), None);
        assert_eq!(bogon(&p("0.0.0.0/0")), None);
    }

    #[test]
    fn reserved_asns() {
        for a in [
            0,
            23456,
            64496,
            64512,
            65000,
            65535,
            65551,
            100000,
            4_200_000_000,
        ] {
            assert!(reserved_asn(a), "{a}");
        }
        for a in [1, 3356, 64495, 131072, 4_199_999_999] {
            assert!(!reserved_asn(a), "{a}");
        }
        assert_eq!(
            reserved_in_path(&AsPath::sequence(&[3356, 64512, 1])),
            Some(Asn(64512))
        );
    }
}
