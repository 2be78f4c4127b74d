//! The RPKI task: watches the sources, merges them, and hands each new set on.

use super::channels::{ControlTx, Input};
use super::status::Shared;
use super::{lock, RpkiSources, SourceSpec};
use crate::rpki::sources::Payloads;
use crate::rpki::{AspaSet, VrpIndex};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// One RPKI source's news for the merger: its payloads now (`None`: no usable data).
pub(crate) struct SourceNews {
    payloads: Option<Arc<Payloads>>,
    serial: Option<u64>,
}

/// Where the sources leave their latest news for the merger: one slot per source (a
/// newer set replaces one not yet merged, so nothing queues), and a wake-up.
pub(crate) struct Slots {
    news: Mutex<Vec<Option<SourceNews>>>,
    wake: tokio::sync::Notify,
}

impl Slots {
    fn put(&self, source: usize, news: SourceNews) {
        if let Some(slot) = self
            .news
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(source)
        {
            *slot = Some(news);
        }
        self.wake.notify_one();
    }
}

/// What changes when a file under `dir` is added, removed, replaced or rewritten: the
/// number of files, their total size and the latest modification (`None`: unreadable).
pub(crate) fn tree_stamp(
    dir: &std::path::Path,
) -> Option<(usize, u64, Option<std::time::SystemTime>)> {
    let mut stamp = (0usize, 0u64, None);
    let mut dirs = vec![dir.to_path_buf()];
    std::fs::read_dir(dir).ok()?;
    while let Some(d) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                dirs.push(e.path());
            } else {
                stamp.0 += 1;
                stamp.1 += m.len();
                stamp.2 = stamp.2.max(m.modified().ok());
            }
        }
    }
    Some(stamp)
}

/// What every source's task is given.
struct SourceCtx {
    i: usize,
    n: usize,
    slots: Arc<Slots>,
    stop: watch::Receiver<bool>,
    shared: Arc<Mutex<Shared>>,
    alerts: ControlTx,
    poll: Duration,
}

/// An RTR cache: its data at each End of Data, an alert when it expires.
async fn watch_rtr(cache: String, c: SourceCtx) {
    use crate::rpki::rtr::{RtrClient, RtrConfig, RtrEvent};
    let SourceCtx {
        i,
        n,
        slots,
        stop,
        shared,
        alerts,
        ..
    } = c;
    let mut client = RtrClient::new(RtrConfig::new(&cache));
    let name = cache.clone();
    client
        .run(
            move |e| {
                let (payloads, serial) = match e {
                    RtrEvent::Data(d) => (
                        Some(Arc::new(Payloads::new(&d.vrps(), &d.aspas()))),
                        Some(u64::from(d.serial)),
                    ),
                    RtrEvent::Expired => {
                        // The control channel is unbounded: never dropped.
                        let _ = alerts.send(Input::Alerts(vec![crate::act::alerts::Alert::new(
                            crate::act::alerts::AlertKind::RpkiExpired,
                            crate::act::alerts::Severity::Warning,
                            format!("rpki.expired:{name}"),
                            serde_json::json!({
                                "summary": format!(
                                    "RTR cache {name}: its data is older than its \
                                     expire interval and no longer used"
                                ),
                                "source": name,
                            }),
                        )]));
                        (None, None)
                    }
                };
                slots.put(i, SourceNews { payloads, serial });
            },
            move |st| {
                crate::metrics::rpki_vrps(&st.cache, st.vrps);
                let mut sh = lock(&shared);
                if sh.rtr.len() < n {
                    sh.rtr.resize(n, None);
                }
                sh.rtr[i] = Some(st.clone());
            },
            stop,
        )
        .await;
}

/// A directory of signed objects, validated again whenever a file in it changes.
async fn watch_directory(dir: std::path::PathBuf, tals: Vec<std::path::PathBuf>, c: SourceCtx) {
    let SourceCtx {
        i,
        slots,
        mut stop,
        poll,
        ..
    } = c;
    let name = dir.display().to_string();
    let tals = match crate::rpki::signed::read_tals(&tals) {
        Ok(t) => Arc::new(t),
        Err(e) => {
            // Checked at start; a TAL gone since leaves the source silent.
            tracing::error!("RPKI repository {name}: TAL {e}; not read");
            return;
        }
    };
    if tals.is_empty() {
        tracing::warn!(
            "RPKI repository {name}: no TAL given: any self-signed certificate \
             in it is taken as a trust anchor"
        );
    }
    let mut seen = None;
    loop {
        let d = dir.clone();
        let stamp = tokio::task::spawn_blocking(move || tree_stamp(&d)).await;
        let Ok(stamp) = stamp else { return };
        if stamp.is_none() && seen.is_some() {
            // Gone or unreadable: what it gave stays until it reads again.
            tracing::error!("RPKI repository {name}: cannot be read; its previous data stays");
            seen = None;
        }
        if stamp.is_some() && stamp != seen {
            seen = stamp;
            let (d, t) = (dir.clone(), tals.clone());
            let scanned =
                tokio::task::spawn_blocking(move || crate::rpki::signed::scan_repository(&d, &t))
                    .await;
            let Ok(scan) = scanned else { return };
            for (state, n) in [("valid", scan.accepted), ("invalid", scan.rejected.len())] {
                crate::metrics::rpki_objects(&name, state, n);
            }
            crate::metrics::rpki_vrps(&name, scan.vrps.len());
            tracing::info!(
                "RPKI repository {name}: {} of {} ROAs and ASPAs valid: {} VRPs, {} ASPAs",
                scan.accepted,
                scan.objects,
                scan.vrps.len(),
                scan.aspas.len()
            );
            for (f, why) in scan.rejected.iter().take(20) {
                tracing::warn!("RPKI repository {name}: {} not used: {why}", f.display());
            }
            if scan.rejected.len() > 20 {
                tracing::warn!(
                    "RPKI repository {name}: {} more objects not used",
                    scan.rejected.len() - 20
                );
            }
            let payloads = Some(Arc::new(Payloads::new(&scan.vrps, &scan.aspas)));
            slots.put(
                i,
                SourceNews {
                    payloads,
                    serial: None,
                },
            );
        }
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = stop.changed() => return,
        }
    }
}

/// A VRP file, read again whenever it changes (`loaded`: already read at start).
async fn watch_file(
    path: std::path::PathBuf,
    options: crate::rpki::LoadOptions,
    loaded: bool,
    c: SourceCtx,
) {
    let SourceCtx {
        i,
        slots,
        mut stop,
        poll,
        ..
    } = c;
    let stamp_of = |p: &std::path::Path| {
        std::fs::metadata(p)
            .ok()
            .map(|m| (m.modified().ok(), m.len()))
    };
    let mut seen = if loaded { stamp_of(&path) } else { None };
    loop {
        let stamp = stamp_of(&path);
        if stamp.is_some() && stamp != seen {
            seen = stamp;
            let p = path.clone();
            let loaded =
                tokio::task::spawn_blocking(move || crate::rpki::vrps::load(&p, options)).await;
            match loaded {
                Ok(Ok(set)) => {
                    crate::metrics::rpki_vrps(&path.display().to_string(), set.vrps.len());
                    let serial = set
                        .source
                        .as_ref()
                        .and_then(|s| s.generated)
                        .and_then(|g| u64::try_from(g).ok());
                    let news = SourceNews {
                        payloads: Some(Arc::new(Payloads::from_set(&set))),
                        serial,
                    };
                    slots.put(i, news);
                }
                Ok(Err(e)) => {
                    crate::metrics::rpki_error(&path.display().to_string());
                    tracing::error!(
                        "RPKI source {}: {e}; its previous data stays",
                        path.display()
                    );
                }
                Err(_) => return,
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = stop.changed() => return,
        }
    }
}

/// An alert per source whose data differs from the merged set.
fn disagreements(reports: &[crate::rpki::sources::Disagreement]) -> Vec<crate::act::alerts::Alert> {
    let mut out = Vec::new();
    for r in reports {
        if r.has_data && (r.missing > 0 || r.extra > 0) {
            out.push(crate::act::alerts::Alert::new(
                crate::act::alerts::AlertKind::RpkiSourceDisagrees,
                crate::act::alerts::Severity::Warning,
                format!("rpki.source_disagrees:{}", r.source),
                serde_json::json!({
                    "summary": format!(
                        "RPKI source {} disagrees with the merged set: lacks {}, adds {}",
                        r.source, r.missing, r.extra
                    ),
                    "report": r,
                }),
            ));
            tracing::warn!(
                "RPKI source {} disagrees with the merged set: lacks {} (e.g. {}), adds {} (e.g. {})",
                r.source,
                r.missing,
                r.missing_examples.join(", "),
                r.extra,
                r.extra_examples.join(", ")
            );
        }
    }
    out
}

/// The alert (and log line) when the merged set would lose too much at once.
fn sudden_loss(had: usize, lost: usize, share: f64, freeze: Duration) -> crate::act::alerts::Alert {
    crate::metrics::rpki_freeze();
    tracing::error!(
        "RPKI: the merged set would lose {lost} of {had} VRPs ({:.0}%) at once: \
         keeping the previous set for up to {} (alert)",
        share * 100.0,
        humantime::format_duration(freeze)
    );
    crate::act::alerts::Alert::new(
        crate::act::alerts::AlertKind::RpkiSuddenLoss,
        crate::act::alerts::Severity::Critical,
        "rpki.sudden_loss".into(),
        serde_json::json!({
            "summary": format!(
                "the merged RPKI set would lose {lost} of {had} VRPs ({:.0}%) at once: \
                 the previous set is kept for up to {}",
                share * 100.0,
                humantime::format_duration(freeze)
            ),
            "had": had, "lost": lost, "share": share,
        }),
    )
}

/// How the set handed on is described in the log and the status.
fn describe(
    rs: &RpkiSources,
    m: &crate::rpki::sources::Merged,
    local: Option<crate::rpki::slurm::SlurmEffect>,
    single: Option<u64>,
    up: usize,
    quorum: usize,
    generation: u64,
) -> String {
    let n = rs.sources.len();
    let (nv, na) = (m.vrps.len(), m.aspas.len());
    let local = local.map_or(String::new(), |e| {
        format!(
            "; SLURM {}: {} VRPs filtered, {} added, {} ASPAs filtered or replaced, {} asserted",
            e.file, e.vrps_filtered, e.vrps_added, e.aspas_filtered, e.aspas_asserted
        )
    });
    if n != 1 {
        return format!(
            "{nv} VRPs, {na} ASPAs carried by at least {quorum} of {n} sources ({up} with \
             data; generation {generation}){local}"
        );
    }
    match &rs.sources[0] {
        SourceSpec::Rtr(c) => match single {
            Some(s) => format!("{nv} VRPs, {na} ASPAs from RTR cache {c} (serial {s}){local}"),
            None => format!("none: RTR cache {c} has no usable data (down or expired){local}"),
        },
        SourceSpec::File { path, .. } => {
            format!("{nv} VRPs, {na} ASPAs from {}{local}", path.display())
        }
        SourceSpec::Directory { dir, .. } => format!(
            "{nv} VRPs, {na} ASPAs from the signed objects in {}{local}",
            dir.display()
        ),
    }
}

/// What the status says of a freeze (`None`: the set is taken).
fn frozen_status(
    verdict: &crate::rpki::sources::Verdict,
    freeze: &crate::rpki::sources::Freeze,
    hold: Duration,
) -> Option<crate::rpki::sources::FrozenStatus> {
    match verdict {
        crate::rpki::sources::Verdict::Hold { had, lost, share } => {
            Some(crate::rpki::sources::FrozenStatus {
                had: *had,
                lost: *lost,
                share: *share,
                for_s: freeze.frozen_since().map_or(0, |t| t.elapsed().as_secs()),
                hold_s: hold.as_secs(),
            })
        }
        crate::rpki::sources::Verdict::Take => None,
    }
}

/// The sources' latest payloads merged in quorum, SLURM applied, on a blocking thread;
/// `None` when the runtime is going away.
async fn merge_off_runtime(
    names: &[String],
    latest: &[Option<Arc<Payloads>>],
    slurm: Option<Arc<crate::rpki::slurm::Slurm>>,
    quorum: usize,
) -> Option<(
    crate::rpki::sources::Merged,
    Option<crate::rpki::slurm::SlurmEffect>,
)> {
    let (names, sources) = (names.to_vec(), latest.to_vec());
    tokio::task::spawn_blocking(move || {
        let input: Vec<(String, Option<&Payloads>)> = names
            .iter()
            .cloned()
            .zip(sources.iter().map(|p| p.as_deref()))
            .collect();
        let mut m = crate::rpki::sources::merge(&input, quorum);
        let local = slurm.map(|s| s.apply(&mut m.vrps, &mut m.aspas));
        (m, local)
    })
    .await
    .ok()
}

/// A merged set indexed (and handed to the routers' RTR feed, as the judge is given it)
/// on a blocking thread; `None` when the runtime is going away.
async fn index_off_runtime(
    m: crate::rpki::sources::Merged,
    feed: Option<Arc<crate::act::rtr_server::Feed>>,
    honour_expires: bool,
) -> Option<(Arc<VrpIndex>, Arc<AspaSet>)> {
    let (vrps, aspas) = (m.vrps, m.aspas);
    tokio::task::spawn_blocking(move || {
        if let Some(f) = feed {
            let now = honour_expires.then(|| chrono::Utc::now().timestamp());
            let (v, a) = crate::act::rtr_server::entries_of(&vrps, &aspas, now);
            f.replace(v, a);
        }
        (
            Arc::new(VrpIndex::from_vrps(vrps)),
            Arc::new(AspaSet::new(&aspas)),
        )
    })
    .await
    .ok()
}

/// The RPKI sources (RTR caches, VRP files polled for changes), merged in quorum (see
/// [`crate::rpki::sources`]), SLURM applied, guarded against sudden loss, indexed off the
/// runtime's threads and handed to the pipeline, which re-judges against each new set.
/// The first set goes out when every source has spoken, or after 30 s.
pub(crate) async fn rpki_sources(
    rs: RpkiSources,
    tx: ControlTx,
    shared: Arc<Mutex<Shared>>,
    feed: Option<Arc<crate::act::rtr_server::Feed>>,
    honour_expires: bool,
    mut stop: watch::Receiver<bool>,
) {
    use crate::rpki::sources::{Freeze, Verdict};
    let n = rs.sources.len();
    let slots = Arc::new(Slots {
        news: Mutex::new((0..n).map(|_| None).collect()),
        wake: tokio::sync::Notify::new(),
    });
    let names: Vec<String> = rs.sources.iter().map(SourceSpec::name).collect();
    let mut tasks = Vec::new();
    for (i, spec) in rs.sources.iter().cloned().enumerate() {
        let c = SourceCtx {
            i,
            n,
            slots: slots.clone(),
            stop: stop.clone(),
            shared: shared.clone(),
            alerts: tx.clone(),
            poll: rs.file_poll,
        };
        tasks.push(match spec {
            SourceSpec::Rtr(cache) => tokio::spawn(watch_rtr(cache, c)),
            SourceSpec::Directory { dir, tals } => tokio::spawn(watch_directory(dir, tals, c)),
            SourceSpec::File {
                path,
                options,
                loaded,
            } => tokio::spawn(watch_file(path, options, loaded, c)),
        });
    }
    let quorum = rs.quorum.unwrap_or(crate::rpki::sources::majority(n));
    tracing::info!(
        "RPKI: {n} sources ({}), a payload used when {quorum} carry it",
        names.join(", ")
    );
    let mut latest: Vec<Option<Arc<Payloads>>> = vec![None; n];
    let mut spoken = vec![false; n];
    let mut serials: Vec<Option<u64>> = vec![None; n];
    let mut freeze = Freeze::new(rs.max_loss, rs.freeze);
    let started = Instant::now();
    let mut generation = 0u64;
    let mut dirty = false;
    // A merged set held off by the freeze, taken when the freeze ends.
    let mut held: Option<(
        crate::rpki::sources::Merged,
        Option<crate::rpki::slurm::SlurmEffect>,
    )> = None;
    loop {
        // Wake for news, for the end of the start-up wait, and while a set is held off
        // to see whether its freeze has run out.
        let startup = Duration::from_secs(30).saturating_sub(started.elapsed());
        let mut wait = Duration::from_secs(3600);
        if !startup.is_zero() {
            wait = wait.min(startup);
        }
        if held.is_some() {
            wait = wait.min(
                rs.freeze
                    .clamp(Duration::from_millis(100), Duration::from_secs(10)),
            );
        }
        tokio::select! {
            _ = slots.wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => break,
        }
        for (i, slot) in slots
            .news
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter_mut()
            .enumerate()
        {
            if let Some(m) = slot.take() {
                latest[i] = m.payloads;
                serials[i] = m.serial;
                spoken[i] = true;
                dirty = true;
            }
        }
        let ready = spoken.iter().all(|s| *s) || started.elapsed() >= Duration::from_secs(30);
        if !ready || !(dirty || held.is_some()) {
            continue;
        }
        let fresh = dirty;
        let (m, local) = if dirty {
            dirty = false;
            held = None;
            let merged = merge_off_runtime(&names, &latest, rs.slurm.clone(), quorum).await;
            let Some(x) = merged else { break };
            x
        } else {
            // Nothing new: only the held-off set's freeze is looked at again.
            let Some(x) = held.take() else { continue };
            x
        };
        if fresh {
            let disagreeing = disagreements(&m.reports);
            if !disagreeing.is_empty() {
                let _ = tx.send(Input::Alerts(disagreeing));
            }
        }
        let verdict = freeze.check(m.vrps.len(), Instant::now());
        {
            let mut sh = lock(&shared);
            sh.rpki_sources = m.reports.clone();
            sh.rpki_frozen = frozen_status(&verdict, &freeze, rs.freeze);
        }
        if let Verdict::Hold { had, lost, share } = verdict {
            if freeze
                .frozen_since()
                .is_some_and(|t| t.elapsed() < Duration::from_millis(500))
            {
                let alert = sudden_loss(had, lost, share, rs.freeze);
                let _ = tx.send(Input::Alerts(vec![alert]));
            }
            held = Some((m, local));
            continue;
        }
        generation += 1;
        let single = (n == 1).then(|| serials[0]).flatten();
        let up = latest.iter().filter(|p| p.is_some()).count();
        let description = describe(&rs, &m, local, single, up, quorum, generation);
        let serial = if n == 1 { single } else { Some(generation) };
        let Some((index, aspa)) = index_off_runtime(m, feed.clone(), honour_expires).await else {
            break;
        };
        let input = Input::Rpki {
            index,
            aspa,
            serial,
            description,
        };
        if tx.send(input).is_err() {
            break;
        }
    }
    for t in tasks {
        let _ = t.await;
    }
}
