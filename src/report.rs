//! Rendering the replay report as a table an operator can paste into a ticket.

use crate::replay::{JudgeReport, PolicyDiff, ReplayReport, RouteTrace, StateCounts};
use crate::rpki::RovState;
use std::fmt::Write;

fn share(n: u64, total: u64) -> String {
    if total == 0 {
        "-".into()
    } else {
        format!("{:.2}%", n as f64 * 100.0 / total as f64)
    }
}

fn human_bytes(b: u64) -> String {
    const U: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i < U.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    format!("{v:.1} {}", U[i])
}

fn state_table(out: &mut String, title: &str, c: &StateCounts) {
    let total = c.total();
    let _ = writeln!(out, "{title}");
    for s in RovState::SLOTS {
        let n = c.get(s);
        let _ = writeln!(out, "  {:<24} {:>12} {:>8}", s.label(), n, share(n, total));
    }
    let _ = writeln!(out, "  {:<24} {:>12}", "total", total);
}

/// The report as text.
pub fn table(r: &ReplayReport, vrp_line: &str) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "routewitness replay");
    let _ = writeln!(o, "===================");
    let _ = writeln!(o, "RPKI       {vrp_line}; expiry {}", r.expiry);
    for f in &r.files {
        let _ = writeln!(
            o,
            "input      {} ({:?}, {} decompressed, {} records{})",
            f.path.display(),
            f.compression,
            human_bytes(f.bytes),
            f.records,
            if f.complete { "" } else { ", DAMAGED" }
        );
    }
    if let (Some(a), Some(b)) = (r.first_time, r.last_time) {
        let _ = writeln!(o, "time       {a} .. {b}");
    }
    let _ = writeln!(
        o,
        "records    {}    route events {} ({} announcements, {} withdrawals)",
        r.records, r.route_events, r.announcements, r.withdrawals
    );
    let _ = writeln!(
        o,
        "peers      {}    prefixes {}    peer sessions down {} (routes dropped {})",
        r.peers, r.prefixes, r.peer_downs, r.routes_dropped_by_peer_down
    );
    let skipped: u64 = r.files.iter().map(|f| f.skipped_nlri).sum();
    if skipped > 0 {
        let _ = writeln!(
            o,
            "skipped    {skipped} non-unicast NLRI (multicast, VPN, ...): not judged"
        );
    }
    let _ = writeln!(o);
    state_table(
        &mut o,
        "Judged announcements by RPKI state (RFC 6811)",
        &r.judged,
    );
    let _ = writeln!(o);
    state_table(
        &mut o,
        &format!(
            "Adj-RIB-In at the end: {} routes (peak {}), {} distinct AS paths",
            r.adj_rib_in.routes, r.adj_rib_in.peak_routes, r.adj_rib_in.distinct_paths
        ),
        &r.adj_rib_in.by_state,
    );
    let _ = writeln!(o);
    per_peer(&mut o, r);
    top_invalid(&mut o, r);
    damage(&mut o, r);
    for j in &r.judges {
        judge_section(&mut o, j);
    }
    if let Some(d) = &r.diff {
        diff_section(&mut o, d);
    }
    performance(&mut o, r);
    o
}

/// Announcements and RPKI states per peer, the busiest first.
fn per_peer(o: &mut String, r: &ReplayReport) {
    let _ = writeln!(o, "Per peer");
    let _ = writeln!(
        o,
        "  {:<40} {:>10} {:>9} {:>8} {:>8} {:>9} {:>9} {:>9}",
        "peer", "announced", "withdrawn", "valid", "invalid", "not-found", "invalid%", "held"
    );
    let mut peers: Vec<_> = r.per_peer.iter().collect();
    peers.sort_by_key(|p| std::cmp::Reverse(p.announcements));
    for p in peers {
        let label = format!("{} {}", p.peer.addr, p.peer.asn);
        let _ = writeln!(
            o,
            "  {:<40} {:>10} {:>9} {:>8} {:>8} {:>9} {:>9} {:>9}",
            label,
            p.announcements,
            p.withdrawals,
            p.judged.get(RovState::Valid),
            p.judged.invalid(),
            p.judged.get(RovState::NotFound),
            share(p.judged.invalid(), p.judged.total()),
            p.routes_held
        );
    }
    let _ = writeln!(o);
}

/// The RPKI-invalid claims carried by the most peers, with why.
fn top_invalid(o: &mut String, r: &ReplayReport) {
    let _ = writeln!(
        o,
        "Top invalid routes ({} of {} invalid (prefix, origin) claims, by peers carrying them)",
        r.top_invalid.len(),
        r.invalid_claims
    );
    for (i, row) in r.top_invalid.iter().enumerate() {
        let origin = row
            .origin
            .map_or_else(|| "NONE (AS_SET)".to_string(), |a| a.to_string());
        let _ = writeln!(
            o,
            "  {:>3}. {} origin {}: {} peers, {} announcements, first {}",
            i + 1,
            row.prefix,
            origin,
            row.peers,
            row.announcements,
            row.first_seen
        );
        let _ = writeln!(o, "       path {}", row.example_path);
        let _ = writeln!(o, "       {}", row.why);
    }
    let _ = writeln!(o);
}

/// What could not be read, and notes.
fn damage(o: &mut String, r: &ReplayReport) {
    if r.damage_total == 0 {
        let _ = writeln!(o, "Damage: none; every input was read to its end.");
    } else {
        let _ = writeln!(
            o,
            "Damage: {} problems (input INCOMPLETE; exit code 2){}",
            r.damage_total,
            if r.damage.len() < r.damage_total as usize {
                format!(", first {} listed", r.damage.len())
            } else {
                String::new()
            }
        );
        for d in &r.damage {
            let skipped = d
                .skipped_bytes
                .map(|b| format!(", {b} bytes skipped"))
                .unwrap_or_default();
            let _ = writeln!(
                o,
                "  {} @ offset {}{}: {:?}: {}",
                d.file.display(),
                d.offset,
                skipped,
                d.kind,
                d.detail
            );
        }
    }
    for n in &r.notes {
        let _ = writeln!(
            o,
            "Note: {} @ offset {}: {}",
            n.file.display(),
            n.offset,
            n.detail
        );
    }
    let warnings: u64 = r.files.iter().map(|f| f.attribute_warnings).sum();
    if warnings > 0 {
        let _ = writeln!(
            o,
            "Note: {warnings} UPDATEs had minor attribute problems (RFC 7606 attribute-discard); no route was lost"
        );
    }
}

/// How long the run took, its memory and CPU.
fn performance(o: &mut String, r: &ReplayReport) {
    let p = &r.performance;
    let _ = writeln!(o);
    let _ = write!(
        o,
        "Run: {:.2} s, {:.0} route events/s",
        p.elapsed_s, p.route_events_per_s
    );
    if let Some(peak) = p.rss_peak_bytes {
        let _ = write!(o, ", peak RSS {}", human_bytes(peak));
    }
    if let Some(b) = p.bytes_per_stored_route {
        let _ = write!(o, ", {b:.0} B per stored route");
    }
    if let (Some(a), Some(b)) = (p.parser_cpu_s, p.receiver_cpu_s) {
        let _ = write!(
            o,
            "; CPU: parser thread {a:.2} s, receiving thread {b:.2} s"
        );
    }
    let _ = writeln!(o);
}

fn judge_section(o: &mut String, j: &JudgeReport) {
    let s = &j.stats;
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "Judge: policy {} ({}){}",
        j.policy,
        j.policy_hash,
        if j.act {
            ""
        } else {
            ", monitor only: decided, never acted on"
        }
    );
    let _ = writeln!(
        o,
        "  decisions {}: quarantined {}, rejected {}, released {}, withdrawn while held {}; held at the end {}",
        s.decisions, s.quarantined, s.rejected, s.released, s.withdrawn_while_held, j.held_at_end
    );
    let _ = writeln!(
        o,
        "  claims established {}, forgotten {}; conflicts {}: confirmed {}, refuted {}, withdrawn {}, pending {}",
        s.claims_established,
        s.claims_forgotten,
        s.conflicts,
        s.conflicts_confirmed,
        s.conflicts_refuted,
        s.conflicts_withdrawn,
        s.conflicts
            - s.conflicts_confirmed
            - s.conflicts_refuted
            - s.conflicts_withdrawn
    );
    if !j.conflicts.is_empty() {
        let _ = writeln!(o, "  Conflicts (most routes held first)");
    }
    for c in &j.conflicts {
        let origin = c.origin.map_or("AS_SET".to_string(), |a| a.to_string());
        let against = c
            .against
            .iter()
            .map(|a| {
                format!(
                    "{} {}",
                    a.prefix,
                    a.origin.map_or("AS_SET".to_string(), |o| o.to_string())
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let _ =
            writeln!(
            o,
            "    {} {} origin {} (RPKI {}) against {}: {}{}; {} routes held; {} of {} witnesses",
            c.kind.name(),
            c.prefix,
            origin,
            c.rpki,
            against,
            c.resolution.name(),
            c.resolved_at.map(|t| format!(" at {t}")).unwrap_or_default(),
            c.routes_held,
            c.witnesses.effective,
            c.witnesses.needed,
        );
        let _ = writeln!(o, "      first seen {}", c.first_seen);
    }
    let _ = writeln!(
        o,
        "  Peer trust (lowest first; counts of evidence: confirmed claims, RPKI-invalid and \
         ASPA-invalid routes, refuted claims, routes held as conflicts, flaps; ! below the floor)"
    );
    let _ = writeln!(
        o,
        "    {:<40} {:>6} {:>9} {:>8} {:>8} {:>8} {:>8} {:>6} {:>8}",
        "peer",
        "trust",
        "confirmed",
        "rpki-inv",
        "aspa-inv",
        "refuted",
        "conflict",
        "flaps",
        "held-now"
    );
    for t in &j.trust {
        let c = &t.counts;
        let _ = writeln!(
            o,
            "    {:<40} {:>6.3}{} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6} {:>8}",
            format!("{} {}", t.peer.addr, t.peer.asn),
            t.score,
            if t.below_floor { "!" } else { " " },
            c.confirmed_valid + c.confirmed_not_found,
            c.rpki_invalid,
            c.aspa_invalid,
            c.refuted,
            c.conflict_held,
            c.flaps,
            t.routes_held
        );
    }
}

fn trace(t: &RouteTrace) -> String {
    match (t.worst, t.last) {
        (None, _) => "never held".into(),
        (Some(w), Some(l)) => format!(
            "{} ({} decisions, ends {})",
            w.name(),
            t.decisions,
            l.name()
        ),
        (Some(w), None) => w.name().into(),
    }
}

fn diff_section(o: &mut String, d: &PolicyDiff) {
    let _ = writeln!(o);
    let _ = writeln!(o, "Policy diff: {} (A) vs {} (B)", d.a, d.b);
    let _ = writeln!(
        o,
        "  routes decided {}: alike {}, held only by A {}, held only by B {}, held differently {}",
        d.routes_decided, d.treated_alike, d.held_only_by_a, d.held_only_by_b, d.held_differently
    );
    for e in &d.examples {
        let _ = writeln!(
            o,
            "    {} from {}: A {}; B {}",
            e.prefix,
            e.peer,
            trace(&e.a),
            trace(&e.b)
        );
        if let Some(x) = e.a.first_hold.as_ref().or(e.b.first_hold.as_ref()) {
            let _ = writeln!(o, "      {x}");
        }
    }
}
