//! Standard Webhooks signatures checked by an independent implementation
//! (tests/webhook_check.py: the PyPI `standardwebhooks` package for v1, Python's
//! `cryptography` for v1a), both ways: what routewitness signs, Python verifies; what
//! Python signs, `routewitness webhook verify` accepts; anything changed, both refuse.
//! scripts/test fetches the package's wheel into target/python and installs
//! python3-cryptography; a missing one fails under CI=true.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The `standardwebhooks` wheel, or `None` (reported) outside CI.
fn wheel() -> Option<PathBuf> {
    let w = root().join("target/python/standardwebhooks-1.1.0-py3-none-any.whl");
    let crypto = Command::new("python3")
        .args(["-c", "import cryptography"])
        .status()
        .is_ok_and(|s| s.success());
    if w.is_file() && crypto {
        return Some(w);
    }
    let why =
        "needs target/python/standardwebhooks-1.1.0-py3-none-any.whl and python3-cryptography \
               (scripts/test fetches and installs them)";
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{why}");
    }
    eprintln!("SKIPPED: {why}");
    None
}

fn routewitness(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_routewitness"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn python(wheel: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("python3")
        .arg(root().join("tests/webhook_check.py"))
        .arg(wheel)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// `routewitness keygen`'s (secret, public) keys.
fn pair() -> (String, String) {
    let (ok, out) = routewitness(&["keygen"]);
    assert!(ok, "{out}");
    let get = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap()
            .trim()
            .to_string()
    };
    (get("secret_key:"), get("public_key:"))
}

fn field(out: &str, name: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(name))
        .unwrap_or_else(|| panic!("no {name} in {out}"))
        .trim()
        .to_string()
}

#[test]
fn signatures_interoperate_with_an_independent_implementation() {
    let Some(wheel) = wheel() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("rw-webhook-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let body = dir.join("body.json");
    std::fs::write(
        &body,
        r#"{"type":"hijack.suspected","timestamp":"2026-11-26T23:59:00Z","data":{"prefix":"1.51.7.0/24","origin":666}}"#,
    )
    .unwrap();
    let body_s = body.to_str().unwrap();
    let (sk, pk) = pair();
    let (sk2, pk2) = pair();
    let (ok, out) = routewitness(&["keygen", "--shared"]);
    assert!(ok, "{out}");
    let shared = field(&out, "secret:");

    // routewitness signs with two ed25519 keys (a rotation) and the HMAC secret.
    let (ok, out) = routewitness(&[
        "webhook", "sign", "--key", &sk, "--key", &sk2, "--key", &shared, "--id", "msg_2b9",
        "--body", body_s,
    ]);
    assert!(ok, "{out}");
    let (id, ts, sig) = (
        field(&out, "webhook-id:"),
        field(&out, "webhook-timestamp:"),
        field(&out, "webhook-signature:"),
    );
    assert_eq!(sig.split(' ').count(), 3, "{sig}");
    // Python verifies each: either public key (v1a), the shared secret (v1).
    for key in [&pk, &pk2, &shared] {
        let (ok, out) = python(&wheel, &["verify", key, &id, &ts, &sig, body_s]);
        assert!(ok, "{key}: {out}");
    }
    // ... and refuses a changed body, another id, a key of nobody's.
    let tampered = dir.join("tampered.json");
    std::fs::write(
        &tampered,
        std::fs::read_to_string(&body)
            .unwrap()
            .replace("666", "667"),
    )
    .unwrap();
    let (_, stranger) = pair();
    for (key, id, file) in [
        (&pk, id.as_str(), tampered.to_str().unwrap()),
        (&shared, id.as_str(), tampered.to_str().unwrap()),
        (&pk, "msg_other", body_s),
        (&stranger, id.as_str(), body_s),
    ] {
        let (ok, out) = python(&wheel, &["verify", key, id, &ts, &sig, file]);
        assert!(!ok, "{key} {id} {file} verified: {out}");
    }

    // Python signs; routewitness verifies with the public key or the secret.
    let now = ts.clone();
    for (signer, verifier, version) in [(&sk, &pk, "v1a"), (&shared, &shared, "v1")] {
        let (ok, out) = python(&wheel, &["sign", signer, "msg_py", &now, body_s]);
        assert!(ok, "{out}");
        let py_sig = out.trim().to_string();
        assert!(py_sig.starts_with(&format!("{version},")), "{py_sig}");
        let verify = |key: &str, file: &str| {
            routewitness(&[
                "webhook",
                "verify",
                "--key",
                key,
                "--id",
                "msg_py",
                "--timestamp",
                &now,
                "--signature",
                &py_sig,
                "--body",
                file,
            ])
        };
        let (ok, out) = verify(verifier, body_s);
        assert!(ok && out.contains(version), "{out}");
        let (ok, out) = verify(verifier, tampered.to_str().unwrap());
        assert!(!ok && out.contains("no signature verifies"), "{out}");
        let (ok, _) = verify(&pk2, body_s);
        assert!(!ok);
    }
    // A request from long ago is refused (the spec's replay protection).
    let (ok, out) = routewitness(&[
        "webhook",
        "verify",
        "--key",
        &pk,
        "--id",
        &id,
        "--timestamp",
        "1000000000",
        "--signature",
        &sig,
        "--body",
        body_s,
    ]);
    assert!(!ok && out.contains("beyond the tolerance"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}
