//! FRR through vtysh (`vtysh --vty_socket DIR`): the quarantine as a route-map that the
//! router's inbound policy applies, each change verified with `show bgp ... json`.
//!
//! FRR's RPKI takes several caches only as alternatives (one set of VRPs), so the
//! quarantine cannot be a second RTR feed there as it is in BIRD. Instead routewitness
//! keeps the entries of `route-map RW-QUARANTINE`: one `deny` entry per held claim,
//! matching its prefix (`ip[v6] prefix-list RWQ-N`) and its origin (`bgp as-path
//! access-list RWQ-N permit _ORIGIN$`), and a final `permit 65535`. The router applies it
//! inbound (`neighbor X route-map RW-QUARANTINE in`, or `call RW-QUARANTINE` from its own
//! map: the text `act config frr` prints). After each change, `clear bgp ipv4|ipv6
//! unicast * soft in` re-runs the inbound policy at once (FRR would otherwise wait for
//! its route-map delay timer, 5 s by default).
//!
//! At start (and after vtysh fails) the route-map is rebuilt from nothing: every
//! `RWQ-` list and the route-map are removed (from `show running-config`), then the
//! current quarantine is written. A claim is verified when `show bgp ... P json` has no
//! path of its origin any more (quarantine) or has one again (release); a quarantine of a
//! route FRR did not have is `absent`.

use super::rtr_server::VrpKey;
use super::ActionRecord;
use super::ActionResult;
use ipnet::IpNet;
use rustc_hash::FxHashMap;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc, watch};

/// The route-map routewitness keeps.
pub const ROUTE_MAP: &str = "RW-QUARANTINE";

/// An FRR to act on.
#[derive(Clone, Debug)]
pub struct FrrTarget {
    pub name: String,
    /// vtysh's `--vty_socket` directory.
    pub vty: PathBuf,
    pub timeout: Duration,
}

/// What `/v1/status` says about one FRR.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FrrStatus {
    pub name: String,
    pub vty: String,
    pub reachable: bool,
    /// Claims in its route-map now.
    pub entries: usize,
    #[serde(flatten)]
    pub results: super::verify::Verifications,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

fn family(p: &IpNet) -> &'static str {
    match p {
        IpNet::V4(_) => "ipv4",
        IpNet::V6(_) => "ipv6",
    }
}

/// The vtysh commands (inside `configure terminal`) that add (`on`) or remove the entry
/// `seq` for claim `k`.
pub fn entry_commands(k: VrpKey, seq: u16, on: bool) -> Vec<String> {
    let (prefix, _, origin) = k;
    let pl = if matches!(prefix, IpNet::V4(_)) {
        "ip"
    } else {
        "ipv6"
    };
    let name = format!("RWQ-{seq}");
    if on {
        vec![
            format!("{pl} prefix-list {name} seq 5 permit {prefix}"),
            format!("bgp as-path access-list {name} seq 5 permit _{origin}$"),
            format!("route-map {ROUTE_MAP} deny {seq}"),
            format!("match {pl} address prefix-list {name}"),
            format!("match as-path {name}"),
            "exit".into(),
        ]
    } else {
        vec![
            format!("no route-map {ROUTE_MAP} deny {seq}"),
            format!("no {pl} prefix-list {name}"),
            format!("no bgp as-path access-list {name}"),
        ]
    }
}

/// The commands that remove everything routewitness left in `running` (a `show
/// running-config`): its lists and its route-map.
pub fn cleanup_commands(running: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for l in running.lines() {
        let mut f = l.split_whitespace();
        let (a, b, c) = (f.next(), f.next(), f.next());
        let list = match (a, b, c) {
            (Some(pl @ ("ip" | "ipv6")), Some("prefix-list"), Some(n)) if n.starts_with("RWQ-") => {
                format!("no {pl} prefix-list {n}")
            }
            (Some("bgp"), Some("as-path"), Some("access-list")) => match f.next() {
                Some(n) if n.starts_with("RWQ-") => format!("no bgp as-path access-list {n}"),
                _ => continue,
            },
            (Some("route-map"), Some(ROUTE_MAP), _) => format!("no route-map {ROUTE_MAP}"),
            _ => continue,
        };
        if seen.insert(list.clone()) {
            out.push(list);
        }
    }
    out
}

/// The origins of the paths FRR has for the prefix (from `show bgp ... P json`; a
/// locally originated path has none).
pub fn origins(json: &str) -> Result<Vec<u32>, String> {
    let v: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let Some(paths) = v.get("paths").and_then(|p| p.as_array()) else {
        return Ok(Vec::new());
    };
    Ok(paths
        .iter()
        .filter_map(|p| {
            p.pointer("/aspath/string")?
                .as_str()?
                .split_whitespace()
                .last()?
                .parse()
                .ok()
        })
        .collect())
}

/// Runs vtysh with `cmds` (each one `-c`); its output, or why it failed.
async fn vtysh(vty: &PathBuf, cmds: &[String]) -> Result<String, String> {
    let mut c = tokio::process::Command::new("vtysh");
    c.arg("--vty_socket").arg(vty);
    for x in cmds {
        c.arg("-c").arg(x);
    }
    c.kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(30), c.output())
        .await
        .map_err(|_| "vtysh did not finish within 30 s".to_string())?
        .map_err(|e| format!("vtysh: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!(
            "vtysh failed ({}): {}{}",
            out.status,
            text.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Whether FRR has a path of `origin` for `prefix` now.
async fn has_path(vty: &PathBuf, prefix: &IpNet, origin: u32) -> Result<bool, String> {
    let out = vtysh(
        vty,
        &[format!("show bgp {} unicast {prefix} json", family(prefix))],
    )
    .await?;
    Ok(origins(&out)?.contains(&origin))
}

/// The route-map's entries: claim to its sequence number.
#[derive(Default)]
struct Entries {
    by_claim: FxHashMap<VrpKey, u16>,
    next: u16,
    free: Vec<u16>,
}

impl Entries {
    fn take(&mut self, k: VrpKey) -> Option<u16> {
        if let Some(&s) = self.by_claim.get(&k) {
            return Some(s);
        }
        let s = self.free.pop().or_else(|| {
            (self.next < 65_534).then(|| {
                self.next += 1;
                self.next
            })
        })?;
        self.by_claim.insert(k, s);
        Some(s)
    }
}

/// Acts on one FRR for every change of the quarantine until `stop`; results to `out`.
pub async fn act_frr(
    t: FrrTarget,
    feed: Arc<super::rtr_server::Feed>,
    mut changes: broadcast::Receiver<Arc<super::verify::Change>>,
    out: mpsc::Sender<Vec<ActionRecord>>,
    status: Arc<Mutex<FrrStatus>>,
    mut stop: watch::Receiver<bool>,
) {
    let target = format!("frr:{}", t.name);
    {
        let mut s = status.lock().unwrap_or_else(|e| e.into_inner());
        s.name = t.name.clone();
        s.vty = t.vty.display().to_string();
    }
    let mut entries = Entries::default();
    let mut synced = false;
    loop {
        if !synced {
            match sync(&t, &feed, &mut entries).await {
                Ok(n) => {
                    tracing::info!("{target}: route-map {ROUTE_MAP} rebuilt with {n} claims");
                    synced = true;
                }
                Err(e) => tracing::warn!("{target}: cannot rebuild {ROUTE_MAP}: {e}"),
            }
            let mut s = status.lock().unwrap_or_else(|e| e.into_inner());
            s.reachable = synced;
            s.entries = entries.by_claim.len();
        }
        let c = tokio::select! {
            c = changes.recv() => c,
            _ = tokio::time::sleep(Duration::from_secs(10)), if !synced => continue,
            _ = stop.changed() => return,
        };
        let records = match c {
            Ok(c) if synced => match apply(&t, &target, &c, &mut entries).await {
                Ok(r) => r,
                Err(e) => {
                    synced = false;
                    let mut r = ActionRecord::new(&target, "apply", ActionResult::Failed);
                    r.serial = Some(c.serial);
                    r.detail = e;
                    vec![r]
                }
            },
            Ok(c) => {
                // Not in step: the next sync writes the whole quarantine anyway.
                let mut r = ActionRecord::new(&target, "apply", ActionResult::Failed);
                r.serial = Some(c.serial);
                r.detail = "vtysh unreachable; the route-map is rebuilt when it answers".into();
                vec![r]
            }
            Err(broadcast::error::RecvError::Lagged(n)) => {
                synced = false;
                let mut r = ActionRecord::new(&target, "apply", ActionResult::Failed);
                r.detail = format!("{n} changes missed; rebuilding the route-map");
                vec![r]
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        {
            let mut s = status.lock().unwrap_or_else(|e| e.into_inner());
            s.reachable = synced;
            s.entries = entries.by_claim.len();
            s.results.record(&target, &records);
            if !synced {
                s.last_error = records.last().map(|r| r.detail.clone());
            }
        }
        if out.send(records).await.is_err() {
            return;
        }
    }
}

/// Removes what routewitness left in FRR and writes the current quarantine.
async fn sync(
    t: &FrrTarget,
    feed: &super::rtr_server::Feed,
    entries: &mut Entries,
) -> Result<usize, String> {
    let running = vtysh(&t.vty, &["show running-config".into()]).await?;
    *entries = Entries::default();
    let mut cmds = vec!["configure terminal".to_string()];
    cmds.extend(cleanup_commands(&running));
    cmds.push(format!("route-map {ROUTE_MAP} permit 65535"));
    cmds.push("exit".into());
    let (_, vrps) = feed.vrps();
    for &k in vrps.iter() {
        if let Some(seq) = entries.take(k) {
            cmds.extend(entry_commands(k, seq, true));
        }
    }
    cmds.push("end".into());
    cmds.push("clear bgp ipv4 unicast * soft in".into());
    cmds.push("clear bgp ipv6 unicast * soft in".into());
    vtysh(&t.vty, &cmds).await?;
    Ok(entries.by_claim.len())
}

/// Applies one change and verifies it.
async fn apply(
    t: &FrrTarget,
    target: &str,
    c: &super::verify::Change,
    entries: &mut Entries,
) -> Result<Vec<ActionRecord>, String> {
    // Which quarantined routes FRR has before: the others are absent there.
    let mut before = Vec::with_capacity(c.claims.len());
    for &(k, on) in &c.claims {
        before.push(on && has_path(&t.vty, &k.0, k.2).await?);
    }
    let mut cmds = vec!["configure terminal".to_string()];
    let mut families = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for &(k, on) in &c.claims {
        families.insert(family(&k.0));
        if on {
            match entries.take(k) {
                Some(seq) => cmds.extend(entry_commands(k, seq, true)),
                None => {
                    let mut r = ActionRecord::new(target, "quarantine", ActionResult::Failed)
                        .claim(k, c.serial);
                    r.detail = "route-map full (65,533 entries)".into();
                    out.push(r);
                }
            }
        } else if let Some(seq) = entries.by_claim.remove(&k) {
            entries.free.push(seq);
            cmds.extend(entry_commands(k, seq, false));
        }
    }
    cmds.push("end".into());
    for f in &families {
        cmds.push(format!("clear bgp {f} unicast * soft in"));
    }
    vtysh(&t.vty, &cmds).await?;
    let deadline = c.at + t.timeout;
    let mut pending: Vec<(VrpKey, bool, bool)> = c
        .claims
        .iter()
        .zip(before)
        .map(|(&(k, on), b)| (k, on, b))
        .collect();
    loop {
        let mut i = 0;
        while i < pending.len() {
            let (k, on, had) = pending[i];
            let has = has_path(&t.vty, &k.0, k.2).await?;
            let result = match (on, had, has) {
                (true, true, false) | (false, _, true) => Some(ActionResult::Verified),
                (true, false, false) => Some(ActionResult::Absent),
                _ => None,
            };
            if let Some(result) = result {
                let action = if on { "quarantine" } else { "release" };
                let mut r = ActionRecord::new(target, action, result).claim(k, c.serial);
                r.latency_ms = Some(c.at.elapsed().as_secs_f64() * 1e3);
                out.push(r);
                pending.swap_remove(i);
            } else {
                i += 1;
            }
        }
        if pending.is_empty() || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for (k, on, _) in pending {
        let (action, result, detail) = if on {
            (
                "quarantine",
                ActionResult::Unverified,
                "FRR still has a path of this origin",
            )
        } else {
            (
                "release",
                ActionResult::Absent,
                "FRR has no path of this origin (not sent, or its own policy rejects it)",
            )
        };
        let mut r = ActionRecord::new(target, action, result).claim(k, c.serial);
        r.latency_ms = Some(c.at.elapsed().as_secs_f64() * 1e3);
        r.detail = format!("{detail} after {:?}", t.timeout);
        out.push(r);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(p: &str, o: u32) -> VrpKey {
        let p: IpNet = p.parse().unwrap();
        (p, p.prefix_len(), o)
    }

    #[test]
    fn entries_are_written_and_removed_in_frr_syntax() {
        assert_eq!(
            entry_commands(k("1.51.7.0/24", 666), 3, true),
            [
                "ip prefix-list RWQ-3 seq 5 permit 1.51.7.0/24",
                "bgp as-path access-list RWQ-3 seq 5 permit _666$",
                "route-map RW-QUARANTINE deny 3",
                "match ip address prefix-list RWQ-3",
                "match as-path RWQ-3",
                "exit"
            ]
        );
        assert_eq!(
            entry_commands(k("2001:db8::/32", 1), 9, false),
            [
                "no route-map RW-QUARANTINE deny 9",
                "no ipv6 prefix-list RWQ-9",
                "no bgp as-path access-list RWQ-9"
            ]
        );
    }

    #[test]
    fn what_was_left_is_found_in_the_running_config() {
        // As FRR 8.4.4 prints it (captured).
        let running = "!\nip prefix-list RWQ-10 seq 5 permit 100.64.3.0/24\nip prefix-list \
            OTHER seq 5 permit 10.0.0.0/8\n!\nbgp as-path access-list RWQ-10 seq 5 permit _666$\n\
            !\nroute-map RW-QUARANTINE deny 10\n match as-path RWQ-10\nexit\n!\n\
            route-map RW-QUARANTINE permit 65535\nexit\nroute-map RPKI-IN deny 10\n";
        assert_eq!(
            cleanup_commands(running),
            [
                "no ip prefix-list RWQ-10",
                "no bgp as-path access-list RWQ-10",
                "no route-map RW-QUARANTINE"
            ]
        );
    }

    #[test]
    fn origins_of_frr_json() {
        let j = r#"{"prefix":"1.51.7.0/24","paths":[{"aspath":{"string":"65002 65010 666"}},
            {"aspath":{"string":"Local"}}]}"#;
        assert_eq!(origins(j).unwrap(), vec![666]);
        assert_eq!(origins("{}").unwrap(), Vec::<u32>::new());
        assert!(origins("% Unknown command").is_err());
    }

    #[test]
    fn sequence_numbers_are_reused() {
        let mut e = Entries::default();
        assert_eq!(e.take(k("10.0.0.0/8", 1)), Some(1));
        assert_eq!(e.take(k("10.0.0.0/8", 1)), Some(1));
        assert_eq!(e.take(k("10.0.0.0/8", 2)), Some(2));
        let s = e.by_claim.remove(&k("10.0.0.0/8", 1)).unwrap();
        e.free.push(s);
        assert_eq!(e.take(k("11.0.0.0/8", 1)), Some(1));
    }
}
