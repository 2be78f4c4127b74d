//! The router configuration that makes a router obey routewitness, as text to paste:
//! `routewitness act config bird|frr`. The tests run BIRD on exactly this text, and the
//! README shows it (both checked against the golden files in tests/golden/).

use std::net::SocketAddr;

/// Where the routers reach routewitness's RTR feeds.
#[derive(Clone, Copy, Debug)]
pub struct Endpoints {
    /// The RPKI feed (the VRPs and ASPAs routewitness validates with).
    pub rpki: Option<SocketAddr>,
    /// The quarantine feed.
    pub quarantine: Option<SocketAddr>,
}

/// A wildcard listen address is reached on loopback from the same host; anything else
/// as it is.
fn reach(a: SocketAddr) -> (String, u16) {
    let ip = if a.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        a.ip().to_string()
    };
    (ip, a.port())
}

/// BIRD 2: the RPKI protocol (when the RPKI feed is served), and the quarantine feed in
/// its own ROA tables with the function an import filter calls first. BIRD re-runs the
/// import filters by itself when a ROA table changes if the BGP channel has
/// `import table on` (BIRD 2.0.12; without it, `birdc reload in PROTOCOL` is needed).
/// The settle times make BIRD act on a change within 50 ms instead of about a second.
pub fn bird(e: &Endpoints) -> String {
    let mut out = String::new();
    if let Some(a) = e.rpki {
        let (ip, port) = reach(a);
        out.push_str(&format!(
            "# RPKI from routewitness (RFC 8210): roa_check(rw_roa4 / rw_roa6, ...) as usual.\n\
             roa4 table rw_roa4;\n\
             roa6 table rw_roa6;\n\
             protocol rpki rw_rpki {{\n  \
               roa4 {{ table rw_roa4; }}; roa6 {{ table rw_roa6; }};\n  \
               remote {ip} port {port}; retry keep 5; refresh keep 600; expire keep 7200;\n\
             }}\n"
        ));
    }
    if let Some(a) = e.quarantine {
        let (ip, port) = reach(a);
        out.push_str(&format!(
            "# routewitness's quarantine: one ROA per held (prefix, origin).\n\
             roa4 table rw_quarantine4 {{ min settle time 10 ms; max settle time 50 ms; }};\n\
             roa6 table rw_quarantine6 {{ min settle time 10 ms; max settle time 50 ms; }};\n\
             protocol rpki rw_quarantine {{ roa4 {{ table rw_quarantine4; }}; roa6 {{ table rw_quarantine6; }};\n  \
               remote {ip} port {port}; retry keep 5; refresh keep 60; expire keep 7200; }}\n\
             function rw_quarantined() {{\n  \
               if net.type = NET_IP4 then return roa_check(rw_quarantine4, net, bgp_path.last) = ROA_VALID;\n  \
               return roa_check(rw_quarantine6, net, bgp_path.last) = ROA_VALID;\n\
             }}\n\
             # First line of each BGP import filter (the channel with \"import table on\"):\n\
             #   if rw_quarantined() then reject;\n"
        ));
    }
    out
}

/// FRR: the route-map routewitness keeps (its final permit; the deny entries are
/// routewitness's, written through vtysh) and how a neighbor applies it, and, when the
/// RPKI feed is served, FRR's RPKI cache (bgpd -M rpki, package frr-rpki-rtrlib).
pub fn frr(e: &Endpoints) -> String {
    let mut out = String::new();
    if let Some(a) = e.rpki {
        let (ip, port) = reach(a);
        out.push_str(&format!(
            "! RPKI from routewitness (RFC 8210; bgpd -M rpki): match rpki as usual.\n\
             rpki\n \
             rpki polling_period 600\n \
             rpki cache {ip} {port} preference 1\n\
             exit\n"
        ));
    }
    out.push_str(&format!(
        "! routewitness's quarantine: routewitness writes the deny entries of {map} (one per\n\
         ! held prefix and origin) through vtysh; this last entry lets the rest through.\n\
         route-map {map} permit 65535\n\
         exit\n\
         ! Apply it inbound, on each neighbor or from the inbound route-map you have:\n\
         !   neighbor PEER route-map {map} in\n\
         !   route-map YOURS permit N / call {map}\n",
        map = super::frr::ROUTE_MAP
    ));
    out
}
