//! VRP exports of every supported kind, `validate`, and the cross-check of origin
//! validation against an independent implementation over bgpdump's output.

mod common;
mod rpki_repo;
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
        // FORT's outputs: the minimal "roas" JSON (read as StayRTR's) and its own CSV header.
        ("vrp/fort-1.5.4_lab.json", 2, 0, StayrtrJson),
        ("vrp/fort-1.5.4_lab.csv", 2, 0, RoutinatorCsv),
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

/// Every RPKI object in the fixtures (the RPKI conformance suite, rpki-prover's real
/// objects, the lab's signed repository) is inspected without a panic, alone and against
/// the lab repository.
#[test]
fn every_signed_object_fixture_is_inspected_without_a_panic() {
    use routewitness::rpki::signed::inspect;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/rpki");
    let repo = root.join("lab-repo/repo");
    let mut stack = vec![root.clone()];
    let mut n = 0;
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let a = inspect(&p, None, &[]);
        let b = inspect(&p, Some(&repo), &[]);
        assert_eq!(a.decoded, b.decoded, "{}", p.display());
        n += 1;
    }
    assert!(n > 500, "{n}");
}

/// The lab's signed test repository (made with rpkimancer, accepted by rpki-client 8.2):
/// its trust anchor and CA certificate validate as a chain. Its ROA, ASPA and manifests
/// carry no CMS signing-time attribute, which the rpki crate (0.20) requires: they are
/// reported as not decoded, with that reason, rather than guessed at.
#[test]
fn the_lab_repository_chain_validates_and_its_objects_say_why_not() {
    use routewitness::rpki::signed::inspect;
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/rpki/lab-repo/repo");
    let base = repo.join("rpki.example.net/rpki");
    let ta = inspect(&base.join("TA.cer"), Some(&repo), &[]);
    assert_eq!(ta.signature, "valid", "{ta:?}");
    let ca = inspect(&base.join("TA/CA.cer"), Some(&repo), &[]);
    assert_eq!(ca.signature, "valid", "{ca:?}");
    // The CA certificate itself, then the trust anchor above it.
    assert_eq!(ca.chain.len(), 2, "{ca:?}");
    assert!(
        ca.chain[1].ends_with("(trust anchor, not pinned: no TAL)"),
        "{ca:?}"
    );
    // The lab's own TAL pins that trust anchor.
    let tals =
        routewitness::rpki::signed::read_tals(&[std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/rpki/lab-repo/tals/TA.tal")])
        .unwrap();
    let pinned = inspect(&base.join("TA/CA.cer"), Some(&repo), &tals);
    assert_eq!(pinned.signature, "valid", "{pinned:?}");
    assert!(
        pinned.chain[1].ends_with("(trust anchor, pinned by its TAL)"),
        "{pinned:?}"
    );
    let roa = std::fs::read_dir(base.join("TA/CA"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "roa"))
        .unwrap();
    let r = inspect(&roa, Some(&repo), &[]);
    assert!(!r.decoded);
    assert!(
        r.error.as_deref().unwrap().contains("signing time"),
        "{r:?}"
    );
    // Without the repository the chain is not checked, and says so.
    let alone = inspect(&base.join("TA/CA.cer"), None, &[]);
    assert_eq!(alone.signature, "unchecked");
}

/// The RPKI conformance suite (BBN, via rpki-commons): every `bad*` ROA and manifest is
/// rejected (not decoded, or not strictly conformant), and the counts of the whole suite
/// are pinned as measured. Known gaps, from the rpki crate: its `good*` ROAs and half its
/// good manifests carry no signing-time attribute, which the crate requires (see the
/// lab-repository test); 51 `bad*` certificates and 12 `bad*` CRLs are syntax errors that
/// only the crate's full validation against the issuer (`--repo`) looks at.
#[test]
fn the_conformance_suite_bad_signed_objects_are_rejected() {
    use routewitness::rpki::signed::inspect;
    use std::collections::BTreeMap;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/rpki/conformance");
    let mut stack = vec![dir];
    let mut counts: BTreeMap<(String, &str, bool), usize> = BTreeMap::new();
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let group = if name.starts_with("good") {
            "good"
        } else if name.starts_with("bad") {
            "bad"
        } else {
            continue;
        };
        let i = inspect(&p, None, &[]);
        let accepted = i.decoded && i.strict.is_none();
        if group == "bad" && matches!(i.kind, "roa" | "manifest") {
            assert!(!accepted, "{name} accepted: {i:?}");
        }
        *counts
            .entry((group.to_string(), i.kind, accepted))
            .or_default() += 1;
    }
    let c = |g: &str, k: &str, a: bool| counts.get(&(g.to_string(), k, a)).copied().unwrap_or(0);
    assert_eq!(
        (c("bad", "roa", false), c("bad", "manifest", false)),
        (116, 24)
    );
    assert_eq!(
        (
            c("bad", "certificate", false),
            c("bad", "certificate", true)
        ),
        (56, 51)
    );
    assert_eq!(
        (c("good", "certificate", true), c("good", "manifest", true)),
        (18, 3)
    );
}

/// `routewitness rpki inspect`: text per object, exit 0 when everything decoded and
/// validated, 2 when something did not.
#[test]
fn rpki_inspect_command_reports_and_exits_by_outcome() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/rpki/lab-repo/repo");
    let base = repo.join("rpki.example.net/rpki");
    let out = Command::new(env!("CARGO_BIN_EXE_routewitness"))
        .args(["rpki", "inspect", "--repo"])
        .arg(&repo)
        .arg(base.join("TA.cer"))
        .arg(base.join("TA/CA.cer"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("signature valid").count(), 2, "{text}");
    let out = Command::new(env!("CARGO_BIN_EXE_routewitness"))
        .args(["rpki", "inspect", "--json"])
        .arg(base.join("TA/CA"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "the .gbr and the objects without signing time"
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 5);
}

/// The real snapshots: three sources, one of which has lost the ARIN trust anchor's VRPs
/// (as when a TA breaks). In quorum the loss is outvoted and the broken source reported;
/// alone, the same loss is a sudden loss the freeze holds off.
#[test]
fn a_lost_trust_anchor_is_outvoted_in_quorum_and_frozen_alone() {
    use routewitness::rpki::sources::{majority, merge, Freeze, Payloads, Verdict};
    use std::time::{Duration, Instant};
    let a = load("vrp/rpki-client_20250720T093135Z.json.bz2");
    let b = load("vrp/rpki-client_20250720T100145Z.json.bz2");
    let mut broken = b.clone();
    broken.vrps.retain(|v| v.ta.as_deref() != Some("arin"));
    let lost = b.vrps.len() - broken.vrps.len();
    assert!(lost > 100_000, "{lost}");
    let (pa, pb, pc) = (
        Payloads::from_set(&a),
        Payloads::from_set(&b),
        Payloads::from_set(&broken),
    );
    let m = merge(
        &[
            ("09:31".into(), Some(&pa)),
            ("10:01".into(), Some(&pb)),
            ("10:01 without ARIN".into(), Some(&pc)),
        ],
        majority(3),
    );
    // Everything two snapshots share: the broken source changes nothing.
    assert!(m.vrps.len() >= b.vrps.len() - 1_000, "{}", m.vrps.len());
    let r = &m.reports[2];
    assert!(r.missing >= lost - 1_000 && r.extra == 0, "{r:?}");
    // One source only: the loss is frozen, then a whole set ends the freeze.
    let mut f = Freeze::new(0.1, Duration::from_secs(3600));
    let t = Instant::now();
    assert_eq!(f.check(pb.vrp_count(), t), Verdict::Take);
    assert!(matches!(f.check(pc.vrp_count(), t), Verdict::Hold { .. }));
    assert_eq!(f.check(pa.vrp_count(), t), Verdict::Take);
}

/// A repository signed now (by the `rpki` crate's builders): the directory scan keeps
/// exactly the ROAs and ASPAs whose signature, EE certificate, resources, CRL and chain
/// to the TAL's trust anchor validate, and says why it drops the others.
#[test]
fn a_signed_repository_gives_the_payloads_of_its_valid_objects_only() {
    use routewitness::rpki::signed::{read_tals, scan_repository};
    use std::net::Ipv4Addr;
    let root = std::env::temp_dir().join(format!("rw-repo-scan-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let mut repo = rpki_repo::Repo::new(&root, &[(Ipv4Addr::new(10, 0, 0, 0), 8)], (64496, 64511));
    repo.roa(
        "a.roa",
        64500,
        &[(Ipv4Addr::new(10, 1, 0, 0), 16, Some(24))],
    );
    repo.roa(
        "b.roa",
        64501,
        &[
            (Ipv4Addr::new(10, 2, 0, 0), 16, None),
            (Ipv4Addr::new(10, 3, 0, 0), 24, None),
        ],
    );
    repo.aspa("c.asa", 64500, &[64511, 64510]);
    let (_, revoked) = repo.roa(
        "revoked.roa",
        64502,
        &[(Ipv4Addr::new(10, 4, 0, 0), 16, None)],
    );
    repo.revoke(&[revoked]);
    // Outside the CA's 10.0.0.0/8: the EE certificate overclaims.
    repo.roa(
        "overclaim.roa",
        64503,
        &[(Ipv4Addr::new(192, 0, 2, 0), 24, None)],
    );
    // A signature byte flipped.
    let (tampered, _) = repo.roa(
        "tampered.roa",
        64504,
        &[(Ipv4Addr::new(10, 5, 0, 0), 16, None)],
    );
    let mut bytes = std::fs::read(&tampered).unwrap();
    let n = bytes.len();
    bytes[n - 10] ^= 0xff;
    std::fs::write(&tampered, bytes).unwrap();

    let tals = read_tals(&[repo.tal.clone()]).unwrap();
    let scan = scan_repository(&repo.dir, &tals);
    assert_eq!((scan.objects, scan.accepted), (6, 3), "{:?}", scan.rejected);
    let mut vrps: Vec<String> = scan
        .vrps
        .iter()
        .map(|v| {
            format!(
                "{} {} AS{} {}",
                v.prefix,
                v.max_length,
                v.asn.0,
                v.ta.as_deref().unwrap_or("")
            )
        })
        .collect();
    vrps.sort();
    assert_eq!(
        vrps,
        [
            "10.1.0.0/16 24 AS64500 test",
            "10.2.0.0/16 16 AS64501 test",
            "10.3.0.0/24 24 AS64501 test"
        ]
    );
    assert!(scan.vrps.iter().all(|v| v
        .expires
        .is_some_and(|e| e > chrono::Utc::now().timestamp())));
    assert_eq!(scan.aspas.len(), 1);
    assert_eq!(scan.aspas[0].customer, Asn(64500));
    assert_eq!(scan.aspas[0].providers, [Asn(64510), Asn(64511)]);
    let why = |name: &str| {
        scan.rejected
            .iter()
            .find(|(p, _)| p.ends_with(name))
            .map(|(_, e)| e.clone())
            .unwrap_or_else(|| panic!("{name} not rejected: {:?}", scan.rejected))
    };
    assert!(
        why("revoked.roa").contains("revoked"),
        "{}",
        why("revoked.roa")
    );
    assert!(
        why("overclaim.roa").contains("overclaiming"),
        "{}",
        why("overclaim.roa")
    );
    assert!(
        why("tampered.roa").contains("signature"),
        "{}",
        why("tampered.roa")
    );
    // Nothing else was refused.
    assert_eq!(scan.rejected.len(), 3, "{:?}", scan.rejected);

    // Pinned to another trust anchor, nothing is taken; unpinned, the same three.
    let other = read_tals(&[repo.other_tal.clone()]).unwrap();
    let scan = scan_repository(&repo.dir, &other);
    assert_eq!((scan.accepted, scan.rejected.len()), (0, 6));
    assert!(
        all_say(&scan.rejected, "no TAL has its key"),
        "{:?}",
        scan.rejected
    );
    assert_eq!(scan_repository(&repo.dir, &[]).accepted, 3);

    // `rpki inspect` with the TAL: the valid ones say so, the revoked one is not checked
    // against the CRL there (inspect reads one object; the scan is what the daemon uses).
    let out = routewitness(&[
        "rpki",
        "inspect",
        "--repo",
        repo.dir.to_str().unwrap(),
        "--tal",
        repo.tal.to_str().unwrap(),
        repo.dir.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    let line = |name: &str| {
        text.lines()
            .find(|l| l.contains(&format!("/{name}: ")))
            .unwrap_or_else(|| panic!("no {name} in {text}"))
            .to_string()
    };
    assert!(line("a.roa").contains("roa {\"asn\":64500"), "{text}");
    for ok in ["a.roa", "b.roa", "c.asa", "revoked.roa", "ca.cer", "ta.cer"] {
        assert!(line(ok).contains("signature valid"), "{text}");
    }
    for bad in ["overclaim.roa", "tampered.roa"] {
        assert!(line(bad).contains("signature invalid"), "{text}");
    }
    assert_eq!(out.status.code(), Some(2), "{text}");
    let _ = std::fs::remove_dir_all(&root);
}

/// Every object was refused for a reason saying `needle`.
fn all_say(rejected: &[(std::path::PathBuf, String)], needle: &str) -> bool {
    rejected.iter().all(|(_, e)| e.contains(needle))
}
