//! `replay`, `eval` and `validate`: their arguments and what they run.

use super::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Table,
    Json,
}

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// MRT files (TABLE_DUMP, TABLE_DUMP_V2, BGP4MP, BGP4MP_ET; plain, gzip or bzip2),
    /// replayed in the order of their first record's time.
    #[arg(value_name = "MRT")]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub vrp: VrpArgs,
    /// Report format on stdout.
    #[arg(long, value_enum, default_value = "table")]
    pub format: ReportFormat,
    /// Write one JSON line per judged announcement to FILE (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Rows in the top-invalid table.
    #[arg(long, default_value_t = 20)]
    pub top: usize,
    /// No progress bar, even on a terminal.
    #[arg(long)]
    pub no_progress: bool,
    /// Judge policy: a built-in name (default, strict, monitor-only) or a TOML file.
    #[arg(long, value_name = "NAME|FILE", default_value = "default")]
    pub policy: String,
    /// Write one JSON line per judge decision to FILE (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    pub decisions: Option<PathBuf>,
    /// Shadow mode: judge the same events under two policies and report what the second
    /// would have done differently (decisions are logged for POLICY_A).
    #[arg(long, num_args = 2, value_names = ["POLICY_A", "POLICY_B"], conflicts_with = "no_judge")]
    pub diff: Option<Vec<String>>,
    /// Origin validation only: no judge, no decisions.
    #[arg(long)]
    pub no_judge: bool,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// MRT files, replayed in the order of their first record's time (history first).
    #[arg(value_name = "MRT", required = true)]
    pub files: Vec<PathBuf>,
    /// Labelled incidents: one JSON object per line, `{"id", "kind": "origin" |
    /// "sub-prefix" | "forged-origin" | "leak" | "other", "prefix", "origin"?, "path"?
    /// (the routes' path ends with these ASes), "start", "end"}` (RFC 3339 or Unix
    /// seconds).
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,
    /// Inject N hijacks into the real background (origin, sub-prefix and forged-origin in
    /// turn), each from every peer with a route to the attacker, along that route.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub inject: usize,
    /// Seed of the injection's choices (the same seed gives the same cases).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Kinds to inject (repeatable; default: origin, sub-prefix, forged-origin, leak).
    #[arg(long = "inject-kind", value_enum, value_name = "KIND")]
    pub inject_kinds: Vec<InjectKind>,
    /// Write the injected incidents' labels to FILE (JSON lines, as --labels reads).
    #[arg(long, value_name = "FILE")]
    pub write_labels: Option<PathBuf>,
    /// Count false holds (and inject) from this time on; what comes before is history
    /// (RFC 3339 or Unix seconds). Default: the whole replay.
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// How many false holds the report explains, first ones first (the table shows 20
    /// of them; JSON all).
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub examples: usize,
    /// Judge without any RPKI data (the world of 2008, and of every prefix without a ROA).
    #[arg(long, conflicts_with = "vrps")]
    pub no_rpki: bool,
    #[command(flatten)]
    pub vrp: VrpArgs,
    /// Judge policy: a built-in name (default, strict, monitor-only) or a TOML file.
    #[arg(long, value_name = "NAME|FILE", default_value = "default")]
    pub policy: String,
    /// Report format on stdout.
    #[arg(long, value_enum, default_value = "table")]
    pub format: ReportFormat,
}

/// Injectable incident kinds.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum InjectKind {
    Origin,
    SubPrefix,
    ForgedOrigin,
    Leak,
}

#[derive(Args, Debug)]
pub struct ValidateArgs {
    /// The route's prefix, e.g. 1.1.1.0/24.
    pub prefix: IpNet,
    /// The route's origin AS, e.g. 13335 or AS13335.
    pub asn: Asn,
    #[command(flatten)]
    pub vrp: VrpArgs,
    /// Judge expiry at this time (RFC 3339 or Unix seconds); default: now.
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// A buffered writer for FILE, `-` for stdout, or nothing.
fn open_sink(path: Option<&Path>) -> Result<Option<BufWriter<Box<dyn Write>>>, Failed> {
    let Some(p) = path else {
        return Ok(None);
    };
    let w: Box<dyn Write> = if p.as_os_str() == "-" {
        Box::new(std::io::stdout())
    } else {
        Box::new(
            std::fs::File::create(p)
                .map_err(|e| Failed(format!("cannot create {}: {e}", p.display())))?,
        )
    };
    Ok(Some(BufWriter::with_capacity(1 << 20, w)))
}

/// `routewitness replay`.
pub fn replay(args: ReplayArgs) -> Result<Outcome, CliError> {
    let files = if args.files.is_empty() {
        let dir = fixtures_dir();
        BUNDLED_MRT.iter().map(|f| dir.join(f)).collect()
    } else {
        args.files.clone()
    };
    let set = load_vrps(&args.vrp)?;
    let mut set = set;
    let index = VrpIndex::new(&set);
    let vrp_line = describe_vrps(&set, &index);
    set.vrps = Vec::new();

    let show_progress = !args.no_progress && std::io::stderr().is_terminal();
    let progress: Option<Box<dyn FnMut(u64, u64)>> = if show_progress {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} replaying [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        Some(Box::new(move |done, total| {
            bar.set_length(total);
            bar.set_position(done);
            if done >= total {
                bar.finish_and_clear();
            }
        }))
    } else {
        None
    };

    let policies = if args.no_judge {
        Vec::new()
    } else {
        let names = args
            .diff
            .clone()
            .unwrap_or_else(|| vec![args.policy.clone()]);
        names
            .iter()
            .map(|n| Policy::load(n).map_err(|e| CliError::Usage(format!("policy: {e}"))))
            .collect::<Result<Vec<_>, _>>()?
    };
    let aspa = AspaSet::new(&set.aspas);
    let rpki_serial = set
        .source
        .as_ref()
        .and_then(|s| s.generated)
        .and_then(|g| u64::try_from(g).ok());
    drop(set);

    let config = ReplayConfig {
        files,
        honour_expires: !args.vrp.ignore_expires,
        top: args.top,
        progress,
        inject: Vec::new(),
    };
    if args.output.as_deref() == Some(Path::new("-"))
        && args.decisions.as_deref() == Some(Path::new("-"))
    {
        return Err(CliError::Usage(
            "--output - and --decisions - cannot both write to stdout".into(),
        ));
    }
    let mut routes_out = open_sink(args.output.as_deref())?;
    let mut decisions_out = open_sink(args.decisions.as_deref())?;
    let judging = (!policies.is_empty()).then(|| Judging {
        policies,
        aspa: &aspa,
        rpki_serial,
        decisions: decisions_out.as_mut().map(|w| w as &mut dyn Write),
        sink: None,
        observer: None,
    });
    let report = replay::run(
        config,
        &index,
        routes_out.as_mut().map(|w| w as &mut dyn Write),
        judging,
    )
    .map_err(|e| Failed(e.to_string()))?;
    for (sink, what) in [(routes_out, "routes"), (decisions_out, "decisions")] {
        if let Some(mut w) = sink {
            w.flush()
                .map_err(|e| Failed(format!("writing {what}: {e}")))?;
        }
    }

    let text = match args.format {
        ReportFormat::Table => crate::report::table(&report, &vrp_line),
        ReportFormat::Json => {
            let mut v = serde_json::to_value(&report)
                .map_err(|e| Failed(format!("cannot encode report: {e}")))?;
            v["rpki"] = serde_json::Value::String(vrp_line);
            let mut s = serde_json::to_string_pretty(&v)
                .map_err(|e| Failed(format!("cannot encode report: {e}")))?;
            s.push('\n');
            s
        }
    };
    let mut out = std::io::stdout().lock();
    // A closed pipe (`| head`) is not a failure of the replay.
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    Ok(if report.complete {
        Outcome::Ok
    } else {
        Outcome::Incomplete
    })
}

/// `routewitness eval`.
pub fn eval(args: EvalArgs) -> Result<Outcome, CliError> {
    use crate::eval::{self, IncidentKind};
    let from = args
        .from
        .as_deref()
        .map(eval::time_arg)
        .transpose()
        .map_err(|e| CliError::Usage(format!("--from: {e}")))?;
    let mut labels = match &args.labels {
        Some(p) => eval::read_labels(p).map_err(CliError::Usage)?,
        None => Vec::new(),
    };
    let mut injected = Vec::new();
    if args.inject > 0 {
        let kinds = args
            .inject_kinds
            .iter()
            .map(|k| match k {
                InjectKind::Origin => IncidentKind::Origin,
                InjectKind::SubPrefix => IncidentKind::SubPrefix,
                InjectKind::ForgedOrigin => IncidentKind::ForgedOrigin,
                InjectKind::Leak => IncidentKind::Leak,
            })
            .collect();
        let plan = eval::InjectPlan {
            count: args.inject,
            seed: args.seed,
            from,
            kinds,
        };
        let (l, evs) = eval::plan_injections(&args.files, &plan).map_err(Failed)?;
        if let Some(path) = &args.write_labels {
            let mut text = String::new();
            for label in &l {
                text.push_str(&serde_json::to_string(label).map_err(|e| Failed(e.to_string()))?);
                text.push('\n');
            }
            std::fs::write(path, text).map_err(|e| Failed(format!("{}: {e}", path.display())))?;
        }
        labels.extend(l);
        injected = evs;
    }
    if labels.is_empty() && args.inject == 0 {
        tracing::warn!("no labels and no --inject: every hold is counted as a false hold");
    }
    let mut set = if args.no_rpki {
        crate::rpki::vrps::VrpSet {
            vrps: Vec::new(),
            aspas: Vec::new(),
            warnings: Vec::new(),
            source: None,
        }
    } else {
        load_vrps(&args.vrp)?
    };
    let index = VrpIndex::new(&set);
    set.vrps = Vec::new();
    let policy = Policy::load(&args.policy).map_err(|e| CliError::Usage(format!("policy: {e}")))?;
    let (name, hash) = (policy.name.clone(), policy.hash());
    let aspa = AspaSet::new(&set.aspas);
    let mut tracker = eval::Tracker::new(&labels, from).map_err(CliError::Usage)?;
    tracker.max_examples = args.examples;
    let config = ReplayConfig {
        files: args.files.clone(),
        honour_expires: !args.vrp.ignore_expires,
        top: 0,
        progress: None,
        inject: injected,
    };
    let started = std::time::Instant::now();
    let judging = Judging {
        policies: vec![policy],
        aspa: &aspa,
        rpki_serial: None,
        decisions: None,
        sink: None,
        observer: Some(&mut tracker),
    };
    let replayed =
        replay::run(config, &index, None, Some(judging)).map_err(|e| Failed(e.to_string()))?;
    let stats = replayed.judges.first().map(|j| j.stats).unwrap_or_default();
    let report = tracker.finish(
        &name,
        &hash,
        args.files.len(),
        started.elapsed().as_secs_f64(),
        stats,
    );
    let text = match args.format {
        ReportFormat::Table => eval::table(&report),
        ReportFormat::Json => {
            let mut s = serde_json::to_string_pretty(&report)
                .map_err(|e| Failed(format!("cannot encode report: {e}")))?;
            s.push('\n');
            s
        }
    };
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    Ok(if replayed.complete {
        Outcome::Ok
    } else {
        Outcome::Incomplete
    })
}

fn parse_time(s: &str) -> Result<i64, Failed> {
    if let Ok(secs) = s.parse::<i64>() {
        return Ok(secs);
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp())
        .map_err(|_| Failed(format!("--at {s:?}: not RFC 3339 or Unix seconds")))
}

/// `routewitness validate`.
pub fn validate(args: ValidateArgs) -> Result<Outcome, Failed> {
    let set = load_vrps(&args.vrp)?;
    let index = VrpIndex::new(&set);
    let prefix = args.prefix.trunc();
    let at = match &args.at {
        Some(s) => Some(parse_time(s)?),
        None if args.vrp.ignore_expires => None,
        None => Some(chrono::Utc::now().timestamp()),
    };
    let at = if args.vrp.ignore_expires { None } else { at };
    let state = rpki::validate(&index, &prefix, Some(args.asn), at);
    let covering = index.covering(&prefix);
    let expired = |v: &rpki::Vrp| matches!((at, v.expires), (Some(t), Some(e)) if e < t);
    let classify = |v: &rpki::Vrp| -> &'static str {
        if expired(v) {
            "expired"
        } else if v.asn == args.asn && v.asn != Asn::ZERO && prefix.prefix_len() <= v.max_length {
            "matched"
        } else if v.asn == args.asn && v.asn != Asn::ZERO {
            "unmatched_length"
        } else {
            "unmatched_as"
        }
    };
    let refs: Vec<replay::VrpRef> = covering
        .iter()
        .map(|v| replay::VrpRef {
            prefix: v.prefix,
            max_length: v.max_length,
            asn: v.asn,
            ta: v.ta.clone(),
            expired: expired(v),
        })
        .collect();
    let why = replay::explain(&prefix, Some(args.asn), state, &refs);
    if args.json {
        let vrps: Vec<serde_json::Value> = covering
            .iter()
            .map(|v| {
                serde_json::json!({
                    "prefix": v.prefix, "max_length": v.max_length, "asn": v.asn,
                    "ta": v.ta, "expires": v.expires, "role": classify(v),
                })
            })
            .collect();
        let out = serde_json::json!({
            "route": {"prefix": prefix, "origin_asn": args.asn},
            "state": state.name(),
            "reason": state.reason(),
            "description": why,
            "at": at.map(|t| EventTime::from_secs(t).rfc3339()),
            "vrps": vrps,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&out).map_err(|e| Failed(e.to_string()))?
        );
    } else {
        println!("{prefix} {}: {}", args.asn, state.label());
        println!("  {why}");
        for v in &covering {
            println!(
                "  {:<17} {}-{} {}{}{}",
                classify(v),
                v.prefix,
                v.max_length,
                v.asn,
                v.ta.as_deref()
                    .map(|t| format!(" ({t})"))
                    .unwrap_or_default(),
                v.expires
                    .map(|e| format!(" expires {}", EventTime::from_secs(e)))
                    .unwrap_or_default()
            );
        }
        let n_expired = covering.iter().filter(|v| expired(v)).count();
        if n_expired > 0 && (state == RovState::NotFound || n_expired == covering.len()) {
            println!(
                "  note: {n_expired} covering VRPs had expired at {}; pass --at TIME or --ignore-expires to judge an older snapshot",
                at.map(|t| EventTime::from_secs(t).rfc3339()).unwrap_or_default()
            );
        }
    }
    Ok(Outcome::Ok)
}
