//! The commands behind the `routewitness` binary. `main.rs` parses arguments and maps the
//! [`Outcome`] to an exit code; everything else happens here: this file holds the command
//! line's shape, the errors and what the commands share (loading VRPs, the bundled
//! fixtures); `run_cmd.rs` the daemon's command, `replay_cmds.rs` `replay`, `eval` and
//! `validate`, `tools.rs` the small ones.

use crate::judge::Policy;
use crate::model::{Asn, EventTime};
use crate::replay::{self, Judging, ReplayConfig};
use crate::rpki::{self, AspaSet, LoadOptions, RovState, VrpFormat, VrpIndex, VrpSet};
use clap::{Args, Parser, Subcommand, ValueEnum};
use ipnet::IpNet;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};

mod replay_cmds;
mod run_cmd;
mod tools;

pub use replay_cmds::*;
pub use run_cmd::*;
pub use tools::*;

/// How a command ended; `main` turns it into the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 0: done.
    Ok,
    /// 2: done, but some input was damaged or truncated (everything readable was used).
    Incomplete,
}

/// A command failed; the message says why. Exit code 1.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Failed(pub String);

/// Why a command did not do its job: a failure (exit 1) or bad usage or configuration,
/// such as a policy that does not parse (exit 64).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Failed(#[from] Failed),
    #[error("{0}")]
    Usage(String),
}

#[derive(Parser, Debug)]
#[command(
    name = "routewitness",
    version,
    about = "Byzantine-tolerant BGP route validation",
    long_about = "Byzantine-tolerant BGP route validation.\n\nExit codes: 0 ok, 1 failure, \
                  2 input incomplete (damage reported), 64 bad usage."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log filter for stderr (tracing EnvFilter syntax), e.g. `debug` or `routewitness=trace`.
    /// Default: `info` for `run`, `warn` otherwise.
    #[arg(long, global = true, env = "ROUTEWITNESS_LOG")]
    pub log: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Replay MRT dumps through origin validation and print a report.
    ///
    /// With no files, replays the bundled fixtures (a Route Views RIB slice and update
    /// dumps, judged against a 723k-VRP rpki-client snapshot).
    Replay(ReplayArgs),
    /// Show the RPKI state of one route and the VRPs that decide it.
    Validate(ValidateArgs),
    /// Measure a policy on real days: replay MRT with labelled incidents (a labels file,
    /// and/or hijacks injected into the real background with `--inject`) and report,
    /// per incident, whether and when it was held and whether it stayed held until it
    /// ended; outside them, the false holds (claims, the busiest minute, route-hours by
    /// rule).
    Eval(EvalArgs),
    /// The daemon: judge BMP from routers live (and replay MRT as a demo feed first),
    /// answer the HTTP API, until SIGTERM or SIGINT.
    ///
    /// With no options: BMP on 127.0.0.1:11019, the API on 127.0.0.1:9179, the bundled
    /// VRPs and MRT fixtures, the default policy.
    Run(Box<RunArgs>),
    /// Check a configuration file (`--check`) or print it with every default filled in
    /// (`--print`). Exit 64 when it cannot be used, naming the file, key and line.
    Config(ConfigArgs),
    /// Re-encode MRT BGP4MP updates as a BMP stream (Route Monitoring, pre-policy), e.g.
    /// to feed recorded routes to `run` with `nc 127.0.0.1 11019 < out.bmp`.
    Mrt2bmp(Mrt2BmpArgs),
    /// RPKI objects: `rpki inspect FILE...` reads signed objects (.roa, .asa, .mft),
    /// certificates and CRLs, says what they assert, and with `--repo DIR` checks their
    /// signatures and certificate chain up to the trust anchor.
    Rpki(RpkiArgs),
    /// Acting on routers: `act config bird|frr` prints the router configuration that
    /// takes routewitness's RTR feeds (the RPKI data and the quarantine).
    Act(ActArgs),
    /// Make webhook signing keys (Standard Webhooks): an ed25519 pair (`whsk_` to sign,
    /// `whpk_` for receivers), or with `--shared` an HMAC secret (`whsec_`).
    Keygen(KeygenArgs),
    /// Standard Webhooks signatures: `webhook sign` and `webhook verify`, for receivers'
    /// own tests.
    Webhook(WebhookArgs),
    /// The state file: `state check FILE` (is it whole?) and `state repair FILE` (keep
    /// what reads of a damaged one).
    State(StateArgs),
}

#[derive(Args, Debug, Clone)]
pub struct VrpArgs {
    /// VRP export (rpki-client/Routinator/StayRTR JSON or CSV; plain, .gz or .bz2).
    /// Default: the bundled snapshot.
    #[arg(long, value_name = "FILE")]
    pub vrps: Option<PathBuf>,
    /// Format of --vrps.
    #[arg(long, value_enum, default_value = "auto")]
    pub vrp_format: VrpFormat,
    /// Skip malformed VRP entries with a warning instead of rejecting the file.
    #[arg(long)]
    pub skip_invalid_vrps: bool,
    /// Ignore VRP expiry (by default a VRP counts only until its `expires` time).
    #[arg(long)]
    pub ignore_expires: bool,
    /// A SLURM file (RFC 8416; version 2 with ASPA) applied on top of the RPKI data:
    /// its filters remove VRPs and ASPAs, its assertions add them.
    #[arg(long, value_name = "FILE")]
    pub slurm: Option<PathBuf>,
}

/// The SLURM file of `--slurm`, checked.
pub fn load_slurm(args: &VrpArgs) -> Result<Option<crate::rpki::slurm::Slurm>, Failed> {
    args.slurm
        .as_deref()
        .map(crate::rpki::slurm::Slurm::load)
        .transpose()
        .map_err(|e| Failed(format!("cannot use SLURM: {e}")))
}

/// Where the bundled fixtures are: `./fixtures` when run from a checkout, otherwise the
/// directory this crate was built from.
pub fn fixtures_dir() -> PathBuf {
    let local = Path::new("fixtures");
    if local.join("README.md").is_file() {
        local.to_path_buf()
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
    }
}

/// The bundled VRP snapshot.
pub const BUNDLED_VRPS: &str = "vrp/rpki-client_20250720T093135Z.json.bz2";
/// The bundled MRT dumps replayed by default.
pub const BUNDLED_MRT: &[&str] = &[
    "mrt/routeviews2_rib.20140523.0600_slice.mrt.gz",
    "mrt/routeviews2_updates.20080224.1839.bz2",
    "mrt/routeviews2_updates.20080224.1854.bz2",
    "mrt/routeviews2_updates.20080224.1909.bz2",
    "mrt/routeviews2_updates.20080224.1924.bz2",
    "mrt/routeviews2_updates.20080224.1939.bz2",
    "mrt/routeviews2_updates.20080224.1954.bz2",
    "mrt/routeviews2_updates.20080224.2009.bz2",
];

/// Loads the VRPs named by the arguments (or the bundled ones) and logs what was loaded.
pub fn load_vrps(args: &VrpArgs) -> Result<VrpSet, Failed> {
    let path = args
        .vrps
        .clone()
        .unwrap_or_else(|| fixtures_dir().join(BUNDLED_VRPS));
    let set = crate::rpki::cache::load(
        &path,
        LoadOptions {
            format: args.vrp_format,
            skip_invalid: args.skip_invalid_vrps,
        },
    )
    .map_err(|e| Failed(format!("cannot use VRPs: {e}")))?;
    for w in &set.warnings {
        tracing::warn!("{}: {w}", path.display());
    }
    if !set.warnings.is_empty() {
        eprintln!(
            "warning: {} malformed VRP entries skipped in {} (see --log warn)",
            set.warnings.len(),
            path.display()
        );
    }
    let mut set = set;
    if let Some(slurm) = load_slurm(args)? {
        let e = slurm.apply(&mut set.vrps, &mut set.aspas);
        tracing::info!(
            "SLURM {}: {} VRPs filtered, {} added; {} ASPAs filtered or replaced, {} asserted",
            e.file,
            e.vrps_filtered,
            e.vrps_added,
            e.aspas_filtered,
            e.aspas_asserted
        );
    }
    Ok(set)
}

/// "723521 VRPs, 100 ASPAs from FILE (rpki-client-json, built ...)".
pub fn describe_vrps(set: &VrpSet, index: &VrpIndex) -> String {
    let mut s = format!("{} VRPs", index.len());
    s.push_str(&format!(", {} ASPAs", set.aspas.len()));
    if let Some(src) = &set.source {
        let fmt = serde_json::to_value(src.format)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        s.push_str(&format!(" from {} ({fmt}", src.path.display()));
        if let Some(g) = src.generated {
            s.push_str(&format!(", built {}", EventTime::from_secs(g)));
        }
        s.push(')');
    }
    s
}
