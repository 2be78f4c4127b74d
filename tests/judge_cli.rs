//! The judge through `routewitness replay`: the decision log (golden file, determinism),
//! policies from files, and `--diff`.

mod common;
use common::*;

const GOLDEN_DUMP: &str = "formats/bgpkit__rrc00_updates.20000102.2014.gz";
const GOLDEN: &str = "tests/golden/rrc00_updates.20000102.2014.decisions.jsonl";

fn decisions(files: &[String], policy: &str, extra: &[&str]) -> (i32, Vec<u8>, String) {
    let out = tempfile("decisions.jsonl");
    let mut args: Vec<String> = vec![
        "replay".into(),
        "--no-progress".into(),
        "--policy".into(),
        policy.into(),
        "--decisions".into(),
        out.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend(files.iter().cloned());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = routewitness(&refs);
    let bytes = std::fs::read(&out).unwrap_or_default();
    let _ = std::fs::remove_file(&out);
    (
        o.status.code().unwrap_or(-1),
        bytes,
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
    )
}

fn tempfile(name: &str) -> std::path::PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!("rw-{}-{n}-{name}", std::process::id()))
}

/// Two processes (their own hash seeds and address layouts) judging the same real dumps
/// at once write the same decisions, byte for byte: nothing in the judge depends on
/// iteration order of a randomly seeded map or on addresses.
#[test]
fn two_processes_write_identical_decisions() {
    let files = [
        fixture("mrt/routeviews2_updates.20080224.1839.bz2")
            .display()
            .to_string(),
        fixture("mrt/routeviews2_updates.20080224.1854.bz2")
            .display()
            .to_string(),
    ];
    let runs: Vec<_> = (0..2)
        .map(|_| {
            let files = files.clone();
            std::thread::spawn(move || decisions(&files, "default", &[]))
        })
        .collect();
    let [(ca, a, oa), (cb, b, ob)]: [_; 2] = runs
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect::<Vec<_>>()
        .try_into()
        .ok()
        .unwrap();
    assert_eq!((ca, cb), (0, 0), "{oa}\n{ob}");
    assert!(a.len() > 1_000_000, "{} bytes of decisions", a.len());
    assert!(a == b, "the two processes' decision logs differ");
}

/// The decision log of one real dump, byte for byte. `UPDATE_GOLDEN=1` rewrites it after
/// an intended change (review the diff).
#[test]
fn decisions_of_a_real_dump_match_the_golden_file() {
    let (code, got, out) = decisions(
        &[fixture(GOLDEN_DUMP).display().to_string()],
        "tests/golden/golden.toml",
        &[],
    );
    assert_eq!(code, 0, "{out}");
    let path = root().join(GOLDEN);
    if std::env::var("UPDATE_GOLDEN").as_deref() == Ok("1") {
        std::fs::write(&path, &got).unwrap();
    }
    let want = std::fs::read(&path).expect("golden file");
    if got != want {
        let got = String::from_utf8_lossy(&got);
        let want = String::from_utf8_lossy(&want);
        let first = got
            .lines()
            .zip(want.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(got.lines().count().min(want.lines().count()));
        panic!(
            "decisions differ from {GOLDEN} at line {}:\n got: {}\nwant: {}",
            first + 1,
            got.lines().nth(first).unwrap_or("<end>"),
            want.lines().nth(first).unwrap_or("<end>")
        );
    }
    // What the golden file shows, so that an empty or trivial one cannot pass.
    let text = String::from_utf8(want).unwrap();
    for needle in [
        r#""rule":"conflicts.moas""#,
        r#""rule":"rpki.invalid""#,
        r#""outcome":"withdrawn""#,
        r#""outcome":"quarantine""#,
        // The suspected hijack's route replaced by the holder's: a closing decision for
        // the hijack's claim (the dump's only release before issue 16).
        r#""outcome":"withdrawn","previous":"quarantine","cause":"announced""#,
    ] {
        assert!(text.contains(needle), "golden file lacks {needle}");
    }
}

/// Same input twice: byte-identical decision logs, over several files and all policies.
#[test]
fn decisions_are_deterministic_over_the_bundled_hijack_window() {
    let files: Vec<String> = [
        "mrt/routeviews2_updates.20080224.1839.bz2",
        "mrt/routeviews2_updates.20080224.1854.bz2",
    ]
    .iter()
    .map(|f| fixture(f).display().to_string())
    .collect();
    for policy in ["default", "strict"] {
        let (c1, a, o1) = decisions(&files, policy, &[]);
        let (c2, b, _) = decisions(&files, policy, &[]);
        assert_eq!((c1, c2), (0, 0), "{o1}");
        assert!(
            a.len() > 1000,
            "{policy}: only {} bytes of decisions",
            a.len()
        );
        assert!(a == b, "{policy}: two runs decided differently");
    }
}

/// The Pakistan Telecom hijack of YouTube (2008-02-24 18:47:57) is held at its first
/// announcement, with the VRPs that condemn it.
#[test]
fn the_youtube_hijack_is_quarantined_at_its_first_announcement() {
    let files = vec![fixture("mrt/routeviews2_updates.20080224.1839.bz2")
        .display()
        .to_string()];
    let (code, log, out) = decisions(&files, "default", &[]);
    assert_eq!(code, 0, "{out}");
    let text = String::from_utf8(log).unwrap();
    let first = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|d| d["prefix"] == "208.65.153.0/24" && d["origin"] == 17557)
        .expect("a decision for the hijack");
    assert_eq!(first["outcome"], "quarantine");
    assert_eq!(first["time"], "2008-02-24T18:47:57Z");
    assert_eq!(first["reasons"][0]["rule"], "rpki.invalid");
    assert!(first["explanation"]
        .as_str()
        .unwrap()
        .contains("AS17557 not authorised by 208.65.153.0/24-24 AS36040"));
}

#[test]
fn a_broken_policy_exits_64_naming_the_key_and_line() {
    let bad = tempfile("bad.toml");
    std::fs::write(&bad, "name = \"x\"\n[confirm]\nk = 2\nwindw = \"5m\"\n").unwrap();
    let out = routewitness(&[
        "replay",
        "--policy",
        bad.to_str().unwrap(),
        fixture("lab/frr-8.4.4_bgp4mp-et.mrt").to_str().unwrap(),
    ]);
    let _ = std::fs::remove_file(&bad);
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("windw") && err.contains("line 4"), "{err}");
    let out = routewitness(&["replay", "--policy", "no-such-policy"]);
    assert_eq!(out.status.code(), Some(64));
}

#[test]
fn diff_shows_what_strict_would_have_done_differently() {
    let (code, report) = replay_json(
        &[&fixture("mrt/routeviews2_updates.20080224.1854.bz2")],
        &["--diff", "default", "strict", "--top", "5"],
    );
    assert_eq!(code, 0);
    let judges = report["judges"].as_array().unwrap();
    assert_eq!(judges.len(), 2);
    assert_eq!(judges[0]["policy"], "default");
    assert_eq!(judges[1]["policy"], "strict");
    assert_ne!(judges[0]["policy_hash"], judges[1]["policy_hash"]);
    // Exact, like the golden decision log: a change of either policy or of the judge
    // shows here and must be explained.
    assert_eq!(judges[1]["stats"]["rejected"].as_u64(), Some(8_036));
    assert_eq!(judges[0]["stats"]["rejected"].as_u64(), Some(0));
    let diff = &report["diff"];
    assert_eq!(diff["held_differently"].as_u64(), Some(6_117), "{diff}");
    let decided = diff["routes_decided"].as_u64().unwrap();
    let parts: u64 = [
        "treated_alike",
        "held_only_by_a",
        "held_only_by_b",
        "held_differently",
    ]
    .iter()
    .map(|k| diff[k].as_u64().unwrap())
    .sum();
    assert_eq!(decided, parts);
    assert_eq!(diff["examples"].as_array().unwrap().len(), 5);
    // The table shows it too.
    let out = routewitness(&[
        "replay",
        "--no-progress",
        "--diff",
        "default",
        "strict",
        fixture("mrt/routeviews2_updates.20080224.1854.bz2")
            .to_str()
            .unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Policy diff: default (A) vs strict (B)"),
        "{text}"
    );
    assert!(text.contains("Peer trust (lowest first;"), "{text}");
}

#[test]
fn monitor_only_decides_like_the_default_but_says_it_never_acts() {
    let files = vec![fixture("mrt/routeviews2_updates.20080224.1854.bz2")
        .display()
        .to_string()];
    let (_, a, _) = decisions(&files, "default", &[]);
    let (_, b, out) = decisions(&files, "monitor-only", &["--format", "json"]);
    let strip = |v: &[u8]| -> Vec<serde_json::Value> {
        String::from_utf8_lossy(v)
            .lines()
            .map(|l| {
                let mut d: serde_json::Value = serde_json::from_str(l).unwrap();
                d.as_object_mut().unwrap().remove("policy");
                d
            })
            .collect()
    };
    assert_eq!(strip(&a), strip(&b));
    assert!(out.contains(r#""act": false"#), "{out}");
}
