//! VRP exports of every supported kind, `validate`, and the cross-check of origin
//! validation against an independent implementation over bgpdump's output.

mod common;
use common::*;
use routewitness::model::Asn;
use routewitness::rpki::{vrps, LoadOptions, VrpFormat};
use std::process::{Command, Stdio};

fn load(rel: &str) -> routewitness::rpki::VrpSet {
    vrps::load(&fixture(rel), LoadOptions::default()).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn every_vrp_fixture_loads_with_the_right_counts_and_format() {
    use VrpFormat::*;
    for (rel, vrp_count, aspas, format) in [
        (
            "vrp/rpki-client_20250720T093135Z.json.bz2",
            723_521,
            100,
            RpkiClientJson,
        ),
        ("vrp/rpki-client-8.2_lab.json", 2, 2, RpkiClientJson),
        ("vrp/rpki-client-8.2_lab.csv", 2, 0, RpkiClientCsv),
        (
            "vrp/rpki-client_20250720T093135Z_first5000.csv",
            5000,
            0,
            RpkiClientCsv,
        ),
        (
            "vrp/stayrtr__cmd_stayrtr_smalltest.rpki.json",
            2,
            0,
            RpkiClientJson,
        ),
        ("vrp/gortr__cmd_gortr_test.rpki.json", 2, 0, StayrtrJson),
        ("vrp/rtrtr__test-data_vrps.json", 2, 0, StayrtrJson),
        (
            "vrp/rpki-validator-js__tests_test.json",
            5000,
            0,
            StayrtrJson,
        ),
    ] {
        let set = load(rel);
        assert_eq!(set.vrps.len(), vrp_count, "{rel}");
        assert_eq!(set.aspas.len(), aspas, "{rel}");
        assert_eq!(set.source.unwrap().format, format, "{rel}");
    }
}

#[test]
fn historical_csv_with_a_bare_address_is_rejected_at_its_line_or_skipped() {
    // tabi's 2016 export has 20 entries such as "176.100.33.19" without a prefix length.
    let path = fixture("vrp/tabi__examples_annotation_roa.csv");
    let err = vrps::load(&path, LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("line 3279") && err.contains("176.100.33.19"),
        "{err}"
    );
    let set = vrps::load(
        &path,
        LoadOptions {
            skip_invalid: true,
            ..LoadOptions::default()
        },
    )
    .unwrap();
    assert_eq!(set.vrps.len(), 15_949);
    assert_eq!(set.warnings.len(), 20);
    assert_eq!(set.source.unwrap().format, VrpFormat::RoutinatorCsv);
}

#[test]
fn big_snapshot_keeps_expiry_and_aspa_providers() {
    let set = load("vrp/rpki-client_20250720T093135Z.json.bz2");
    let one = set
        .vrps
        .iter()
        .find(|v| v.prefix.to_string() == "1.0.0.0/24")
        .unwrap();
    assert_eq!(one.asn, Asn(13335));
    assert_eq!(one.expires, Some(1_753_453_058));
    assert_eq!(one.ta.as_deref(), Some("apnic"));
    let aspa = set.aspas.iter().find(|a| a.customer == Asn(945)).unwrap();
    assert_eq!(aspa.providers, vec![Asn(13213), Asn(150369)]);
}

#[test]
fn validate_command_reports_state_and_vrps() {
    let at = ["--at", "2025-07-20T10:00:00Z"];
    let run = |prefix: &str, asn: &str| {
        let mut args = vec!["validate", prefix, asn, "--json"];
        args.extend(at);
        let out = routewitness(&args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let v = run("1.1.1.0/24", "AS13335");
    assert_eq!(v["state"], "valid");
    assert_eq!(v["vrps"][0]["role"], "matched");
    let v = run("1.1.1.0/25", "13335");
    assert_eq!(
        (v["state"].as_str(), v["reason"].as_str()),
        (Some("invalid"), Some("too-long"))
    );
    let v = run("1.1.1.0/24", "64496");
    assert_eq!(v["reason"], "wrong-origin");
    assert!(v["description"]
        .as_str()
        .unwrap()
        .contains("AS64496 is not authorised"));
    let v = run("192.0.2.0/24", "64496");
    assert_eq!(v["state"], "not-found");
    // Without --at, "now" is past the snapshot's expiry: the tool says so.
    let out = routewitness(&["validate", "1.1.1.0/24", "13335"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("not-found") && text.contains("expired"),
        "{text}"
    );
}

#[test]
fn a_bad_vrp_file_is_rejected_with_position_or_skipped_on_request() {
    let dir = std::env::temp_dir().join(format!("rw-vrp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.csv");
    std::fs::write(
        &bad,
        "ASN,IP Prefix,Max Length,Trust Anchor\nAS1,10.0.0.0/8,8,x\nAS2,10.0.0.0/8,7,x\n",
    )
    .unwrap();
    let mrt = fixture("formats/mrtparse__quagga_rib");
    let out = routewitness(&[
        "replay",
        "--vrps",
        bad.to_str().unwrap(),
        mrt.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 3") && err.contains("maxLength 7"),
        "{err}"
    );
    let out = routewitness(&[
        "replay",
        "--skip-invalid-vrps",
        "--vrps",
        bad.to_str().unwrap(),
        mrt.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 malformed VRP entries skipped"));
}

/// Per-state counts of `routewitness replay` equal those of tests/rov_oracle.py (an
/// independent RFC 6811 implementation in Python) over `bgpdump -m` of the same dump.
/// The dumps are a TABLE_DUMP_V2 IPv4 unicast RIB and a BGP4MP_ET update stream: bgpdump
/// -m prints multicast MP_REACH NLRI as announcements without saying so (routewitness
/// skips them: ROV is for unicast), so update dumps with multicast peers cannot be
/// compared line for line.
#[test]
fn rov_counts_match_independent_check_over_bgpdump() {
    if !need_tool("bgpdump") || !need_tool("python3") {
        return;
    }
    let vrps = fixture("vrp/rpki-client_20250720T093135Z.json.bz2");
    for rel in [
        "mrt/routeviews2_rib.20140523.0600_slice.mrt.gz",
        "mrt/pch_updates.et-header.20151023.gz",
    ] {
        let mrt = fixture(rel);
        let (_, ours) = replay_json(&[&mrt], &["--top", "0"]);
        let mut dump = Command::new("bgpdump")
            .arg("-m")
            .arg(&mrt)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("bgpdump");
        let oracle = Command::new("python3")
            .arg(root().join("tests/rov_oracle.py"))
            .arg(&vrps)
            .stdin(dump.stdout.take().expect("bgpdump stdout"))
            .output()
            .expect("oracle");
        assert!(dump.wait().expect("bgpdump exit").success());
        assert!(
            oracle.status.success(),
            "{}",
            String::from_utf8_lossy(&oracle.stderr)
        );
        let theirs: serde_json::Value = serde_json::from_slice(&oracle.stdout).unwrap();
        assert_eq!(ours["judged"], theirs, "{rel}");
        assert!(theirs["valid"].as_u64().unwrap() > 1000);
    }
}

/// Every SLURM file of the shared data set (RFC 8416 v1 from Routinator, rpki-rs,
/// rpki-prover, rpki-validator-3, RTRTR, StayRTR, GoRTR; v2 with ASPA from rpki-rs and
/// StayRTR) is read, with what it says.
#[test]
fn every_shared_slurm_file_reads() {
    use routewitness::rpki::slurm::Slurm;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/slurm");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        let s = Slurm::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            !s.prefix_filters.is_empty() || !s.prefix_assertions.is_empty(),
            "{}",
            path.display()
        );
        if path.ends_with("rpki-rs__full_v2.json") {
            assert_eq!(s.version, 2);
            assert_eq!(s.aspa_filters.len(), 1);
            assert_eq!(s.aspa_assertions[0].customer, Asn(64496));
            assert_eq!(s.aspa_assertions[0].providers, vec![Asn(64497), Asn(64498)]);
        }
        n += 1;
    }
    assert_eq!(n, 9);
}
