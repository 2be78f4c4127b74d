//! The RTR client against real caches: StayRTR's captured answers (v0, v1, v2), and the
//! real StayRTR from Debian on loopback (full load, incremental update after SIGHUP,
//! Serial Notify, empty deltas, cache restart, v2 -> v1 fall-back).

mod lab;

use lab::repo_file;
use routewitness::model::Asn;
use routewitness::rpki::rtr::{decode, Pdu, RtrClient, RtrConfig, RtrData, RtrEvent, RtrStatus};
use routewitness::rpki::vrps::AspaAfi;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Every PDU of StayRTR's recorded answers decodes; the v2 answer's ASPAs (8210bis-10
/// layout) are the lab's, announced.
#[test]
fn stayrtr_captures_decode() {
    for (file, version, prefixes, aspas) in [
        ("stayrtr-reset-v0.bin", 0, 6, 0),
        ("stayrtr-reset-v1.bin", 1, 6, 0),
        ("stayrtr-reset-v2.bin", 2, 6, 2),
        ("stayrtr-reset-v2_from-rpki-client-json.bin", 2, 2, 2),
    ] {
        let bytes = std::fs::read(repo_file("fixtures/rtr").join(file)).unwrap();
        let mut at = 0;
        let mut pdus = Vec::new();
        while at < bytes.len() {
            let (pdu, n) = decode(&bytes[at..])
                .unwrap_or_else(|e| panic!("{file} at {at}: {e}"))
                .unwrap_or_else(|| panic!("{file}: cut at {at}"));
            assert_eq!(pdu.version(), version, "{file}: {pdu:?}");
            pdus.push(pdu);
            at += n;
        }
        let n = |f: fn(&Pdu) -> bool| pdus.iter().filter(|p| f(p)).count();
        assert_eq!(
            n(|p| matches!(p, Pdu::Prefix { announce: true, .. })),
            prefixes,
            "{file}"
        );
        assert_eq!(
            n(|p| matches!(p, Pdu::Aspa { announce: true, .. })),
            aspas,
            "{file}"
        );
        assert!(
            matches!(pdus.first(), Some(Pdu::CacheResponse { .. })),
            "{file}"
        );
        assert!(matches!(pdus.last(), Some(Pdu::EndOfData { .. })), "{file}");
        if version == 2 && file.ends_with("v2.bin") {
            assert!(pdus.contains(&Pdu::Aspa {
                version: 2,
                announce: true,
                customer: 65002,
                afi: Some(AspaAfi::Ipv4),
                providers: vec![65001, 65003],
            }));
        }
    }
}

/// StayRTR's answer to a Serial Query after an edit: one announcement, one withdrawal.
/// The capture is the lab's exchange log: records of a direction byte (`>` sent by the
/// client, `<` received from the cache), a 32-bit length and the bytes.
#[test]
fn stayrtr_incremental_capture_decodes() {
    let bytes = std::fs::read(repo_file("fixtures/rtr/stayrtr-incremental-v1.bin")).unwrap();
    let (mut at, mut pdus, mut queries) = (0, Vec::new(), Vec::new());
    while at < bytes.len() {
        let dir = bytes[at];
        let len = u32::from_be_bytes(bytes[at + 1..at + 5].try_into().unwrap()) as usize;
        let body = &bytes[at + 5..at + 5 + len];
        at += 5 + len;
        let mut i = 0;
        while i < body.len() {
            let (pdu, n) = decode(&body[i..]).unwrap().expect("whole PDUs");
            i += n;
            if dir == b'>' {
                queries.push(pdu);
            } else {
                pdus.push(pdu);
            }
        }
    }
    assert!(
        matches!(queries[0], Pdu::ResetQuery { version: 1 }),
        "{queries:?}"
    );
    assert!(queries
        .iter()
        .any(|q| matches!(q, Pdu::SerialQuery { serial: 0, .. })));
    assert!(pdus
        .iter()
        .any(|p| matches!(p, Pdu::SerialNotify { serial: 1, .. })));
    let announced = pdus.iter().any(|p| {
        matches!(p, Pdu::Prefix { announce: true, prefix, asn: 65002, .. } if prefix.to_string() == "198.18.0.0/24")
    });
    let withdrawn = pdus.iter().any(|p| {
        matches!(p, Pdu::Prefix { announce: false, prefix, asn: 65099, .. } if prefix.to_string() == "203.0.113.0/24")
    });
    assert!(announced && withdrawn, "{pdus:?}");
}

/// A client on its own runtime thread, reporting its data sets and status.
struct Running {
    data: mpsc::Receiver<RtrEvent>,
    status: Arc<Mutex<RtrStatus>>,
    stop: tokio::sync::watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    fn start(cache: std::net::SocketAddr, version: u8) -> Running {
        let (tx, data) = mpsc::channel();
        let status = Arc::new(Mutex::new(RtrStatus::default()));
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let st = status.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let mut cfg = RtrConfig::new(&cache.to_string());
            cfg.version = version;
            let mut client = RtrClient::new(cfg);
            rt.block_on(client.run(
                move |e| {
                    let _ = tx.send(e);
                },
                move |s| *st.lock().unwrap() = s.clone(),
                stop_rx,
            ));
        });
        Running {
            data,
            status,
            stop,
            thread: Some(thread),
        }
    }

    /// The next data set, within `secs`.
    fn next(&self, secs: u64) -> Arc<RtrData> {
        match self.data.recv_timeout(Duration::from_secs(secs)) {
            Ok(RtrEvent::Data(d)) => d,
            other => panic!(
                "no data set: {other:?}; status {:?}",
                self.status.lock().unwrap()
            ),
        }
    }

    fn status(&self) -> RtrStatus {
        self.status.lock().unwrap().clone()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn lab_json() -> String {
    std::fs::read_to_string(repo_file("fixtures/bmp/lab/vrps.json")).unwrap()
}

fn has(d: &RtrData, prefix: &str, asn: u32) -> bool {
    d.vrps()
        .iter()
        .any(|v| v.prefix.to_string() == prefix && v.asn == Asn(asn))
}

/// Version 2 from the real StayRTR: the lab's 6 VRPs and 2 ASPAs; then an edit and
/// SIGHUP: Serial Notify, a Serial Query, the delta applied (one VRP more, one less);
/// an unchanged file with ASPAs: StayRTR 0.5.1 still notifies, with an empty delta,
/// which changes nothing; a cache restart: a new session id, so a reset.
#[test]
fn stayrtr_full_load_incremental_update_empty_delta_and_restart() {
    if !lab::StayRtr::require() {
        return;
    }
    let cache = lab::StayRtr::start(&lab_json(), &[]);
    let c = Running::start(cache.addr, 2);
    let d = c.next(20);
    assert_eq!(d.version, 2);
    assert_eq!(d.vrp_count(), 6);
    let aspas = d.aspas();
    assert_eq!(aspas.len(), 2, "{aspas:?}");
    let v4 = aspas.iter().find(|a| a.afi == Some(AspaAfi::Ipv4)).unwrap();
    assert_eq!(v4.customer, Asn(65002));
    assert_eq!(v4.providers, vec![Asn(65001), Asn(65003)]);
    let first_serial = d.serial;

    // + 198.18.0.0/24 AS65002, - 203.0.113.0/24 AS65099.
    let edited = lab_json().replace(
        r#"{ "prefix": "203.0.113.0/24",    "maxLength": 24, "asn": 65099,     "ta": "lab" },"#,
        r#"{ "prefix": "198.18.0.0/24",    "maxLength": 24, "asn": 65002,     "ta": "lab" },"#,
    );
    assert_ne!(edited, lab_json());
    cache.serve(&edited);
    let d = c.next(20);
    assert!(d.serial != first_serial);
    assert_eq!(d.vrp_count(), 6);
    assert!(has(&d, "198.18.0.0/24", 65002));
    assert!(!has(&d, "203.0.113.0/24", 65099));
    let s = c.status();
    assert_eq!((s.updates, s.resets), (2, 1), "{s:?}");

    // The same file again: a notify and an empty delta (counted, no new data set).
    cache.serve(&edited);
    let empty = lab::wait_for(Duration::from_secs(20), || {
        let s = c.status();
        (s.empty_deltas >= 1).then_some(s)
    })
    .unwrap_or_else(|| panic!("no empty delta: {:?}\n{}", c.status(), cache.proc.log()));
    assert_eq!(empty.vrps, 6);
    assert!(
        c.data.try_recv().is_err(),
        "an empty delta is not a new data set"
    );

    // The cache restarts: new session id, the client resets and has the data again.
    let cache = cache.restart(&[]);
    let d = c.next(30);
    assert_eq!(d.vrp_count(), 6);
    assert!(has(&d, "198.18.0.0/24", 65002));
    let s = c.status();
    assert_eq!(s.resets, 2, "{s:?}");
    drop(cache);
}

/// A cache that speaks version 1 only (StayRTR -protocol 1): the client falls back from
/// 2 to 1 and gets the VRPs, without ASPAs.
#[test]
fn a_version_1_cache_makes_the_client_fall_back() {
    if !lab::StayRtr::require() {
        return;
    }
    let cache = lab::StayRtr::start(&lab_json(), &["-protocol", "1"]);
    let c = Running::start(cache.addr, 2);
    let d = c.next(20);
    assert_eq!(d.version, 1, "{:?}", c.status());
    assert_eq!(d.vrp_count(), 6);
    assert_eq!(d.aspa_count(), 0);
}

/// The bundled 723,521-VRP snapshot served by the real StayRTR arrives whole and equal:
/// every (prefix, max length, AS) the file has, nothing else.
#[test]
fn stayrtr_serves_the_723k_snapshot_whole() {
    if !lab::StayRtr::require() {
        return;
    }
    use routewitness::rpki::vrps::{load, to_rpki_client_json, LoadOptions};
    let set = load(
        &repo_file("fixtures/vrp/rpki-client_20250720T093135Z.json.bz2"),
        LoadOptions::default(),
    )
    .unwrap();
    // Without `expires`: StayRTR drops what has expired (all of it, July 2025).
    let cache = lab::StayRtr::start(
        &to_rpki_client_json(&set, "2025-07-20T09:31:35Z", false),
        &[],
    );
    lab::wait_for(Duration::from_secs(60), || {
        cache.proc.log().contains("Server started").then_some(())
    })
    .expect("StayRTR loaded the snapshot");
    let c = Running::start(cache.addr, 2);
    let d = c.next(60);
    let key = |v: &routewitness::rpki::Vrp| (v.prefix, v.max_length, v.asn);
    let mut want: Vec<_> = set.vrps.iter().map(key).collect();
    want.sort();
    want.dedup();
    let mut got: Vec<_> = d.vrps().iter().map(key).collect();
    got.sort();
    assert_eq!(got.len(), want.len());
    assert!(got == want, "the sets differ");
    assert_eq!(d.vrp_count(), 723_521);
    // The snapshot's 100 ASPAs, each served for both families (8210bis-10 has one PDU per
    // AFI), with the same providers.
    let per_afi: usize = set
        .aspas
        .iter()
        .map(|a| if a.afi.is_none() { 2 } else { 1 })
        .sum();
    assert_eq!(d.aspa_count(), per_afi);
    for a in d.aspas() {
        let src = set.aspas.iter().find(|s| s.customer == a.customer).unwrap();
        assert_eq!(a.providers, src.providers, "AS{}", a.customer.0);
    }
}
