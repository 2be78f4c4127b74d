//! Shared helpers for the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(rel: &str) -> PathBuf {
    root().join("fixtures").join(rel)
}

/// Runs the built `routewitness` binary from the crate root.
pub fn routewitness(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_routewitness"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("run routewitness")
}

/// `replay --format json` on the given files; returns (exit code, report).
pub fn replay_json(files: &[&Path], extra: &[&str]) -> (i32, serde_json::Value) {
    let mut args: Vec<String> = vec!["replay".into(), "--format".into(), "json".into()];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend(files.iter().map(|p| p.display().to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = routewitness(&refs);
    let code = out.status.code().expect("exit code");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "report is not JSON ({e}); exit {code}; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (code, report)
}

/// Whether an external tool is installed. Under CI=true a missing tool is a failure, never a
/// silent skip; elsewhere the test says loudly that it did not run.
pub fn need_tool(name: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{name} is required under CI=true (scripts/test installs it)");
        }
        eprintln!("NOT RUN: {name} is not installed; run scripts/test to install it");
    }
    found
}

pub fn damage_kinds(report: &serde_json::Value) -> Vec<String> {
    report["damage"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["kind"].as_str().unwrap().to_string())
        .collect()
}
