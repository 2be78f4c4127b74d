//! # routewitness
//!
//! A Byzantine-tolerant BGP route-validation daemon. Routers believe what their peers tell
//! them; routewitness believes a route only when the evidence agrees.
//!
//! ## The pipeline
//!
//! ```text
//!  ingest                          judge (one thread)                                  report / act
//!  ──────                          ──────────────────                                  ────────────
//!  MRT files ─► input ─► ingest::mrt ─► batches of ─► pipeline::RovStage ─► pipeline::Pipeline ─► replay::Tally ─► ReplayReport
//!  (plain/gz/bz2,  (decompress  (bgpkit-parser,  RouteEvents  intern prefixes   rib::AdjRibIn        (counters,       (table/json)
//!   time order)     thread)      recovering      (bounded     (rib::PrefixTable), + the judges         claims)          JSONL route log
//!                                iterator;       channel)     ROV (RFC 6811)         │
//!                                damage with        ▲         over rpki::VrpIndex    ▼
//!                                offsets)           │                          judge::Judge ──────► Decisions (JSONL)
//!                                                   │                          claims + witnesses,  trust table,
//!                                                   │                          standing (holders,   conflicts, --diff
//!                                                   │                          links, relations),
//!                                                   │                          conflicts, trust,
//!                                                   │                          ASPA, policy
//!                                                   └──── judged batches go back to be dropped and reused
//!
//!  `run` (daemon::run, configured by config::Loaded: the file or the defaults, the options over it;
//!  the tasks and channels are drawn at the top of src/daemon/mod.rs): the same RovStage, Pipeline
//!  and Judge (no Tally), on one pipeline thread (daemon::pipeline::Live)
//!  routers ─BMP/TCP─► session task per router ─► data: bounded ─► daemon pipeline thread ────► HTTP API (api::router):
//!                     (tokio: ingest::bmp        (64 batches)     RovStage ─► Pipeline ─► Judge  /v1/status, /v1/peers,
//!                      frame, caps; UPDATEs      control: unbounded, (restored from the state   /v1/routes, /v1/quarantine,
//!                      in place, else bgpkit;    emptied first: holds, at start; checkpoints)   /v1/decisions (from the
//!                      BmpConverter: peers by    releases, RPKI sets,  │ decisions, alerts at     log), /metrics (metrics)
//!                      router+view, views, EoR,  policy, alerts        │ the event, checkpoints
//!                      FRR prepend, session end)                       ▼ (bounded: 16 x 8,192)
//!                                                           state thread ─► state::Store (SQLite: decision log as binary
//!                                                           (commits before the API       records per batch, held routes
//!                                                            shows a decision)            as a snapshot + the log after it,
//!                                                             │                           trust, claims, operators, actions)
//!                                                             │ alerts (act::alerts: per claim, deduplicated)
//!                                                             ▼
//!                                                  act::outbox (SQLite outbox table) ─► delivery thread ─► webhooks
//!                                                  (signed: act::webhook; retries, Retry-After, 410, dead letters)
//!  MRT demo feed (bundled fixtures) ─► ingest::mrt ─────────► (replayed first on a new state, same thread)
//!
//!  RPKI sources (daemon, tokio tasks):                        ▲ Input::Rpki: a new VrpIndex + AspaSet;
//!  RTR caches ─► rpki::rtr::RtrClient (v2/v1/v0) ─┐           │ Pipeline::set_rpki re-judges every live
//!  VRP files (polled) ─► rpki::vrps::load ────────┼─► rpki::sources::merge (quorum, per-source
//!  repository copies (polled) ─►                  │   disagreement) ─► rpki::slurm ─► Freeze
//!    rpki::signed::scan_repository (ROAs, ASPAs ──┤
//!    valid now: CMS, EE, resources, CRL, chain    │
//!    to a TAL's trust anchor) ────────────────────┘
//!                                                      (sudden loss held off) ─► index (blocking thread)
//!
//!  act (routers obey through their own interfaces):
//!  merged RPKI set (above) ─► act::rtr_server::Feed "rpki" ──RTR (v0-v2, notify)──► BIRD / FRR roa_check
//!  judge decisions ─► act::quarantine::QuarantineSet ─► Feed "quarantine" ──RTR──► BIRD: reject when
//!  (pipeline thread; caps      (held claims as VRPs;      (only the listed          roa_check(quarantine,
//!   stop acting; monitor-only   restored holds kept)       routers)                  net, origin) = VALID
//!   serves nothing)            act::router_config: the BIRD text that takes both feeds (`act config bird`)
//!        each feed change ─► act::verify (a task per BIRD) ─► act::bird (control socket: show route
//!        (broadcast)          [filtered] where net = P && bgp_path.last = O) ─► audit log (state: actions)
//!                         ─► act::frr (a task per FRR: route-map RW-QUARANTINE through vtysh,
//!                             clear soft in, show bgp json) ─────────────────► audit log
//!  API: GET /v1/actions (audit log), GET /v1/alerts (outbox), POST /v1/act/resume (after a cap)
//!
//!  `eval` (eval::Tracker, a replay::Observer): the same replay with labelled incidents, and
//!  hijacks injected into the real background (eval::plan_injections, merged in time order
//!  by ReplayConfig::inject) ─► per incident: held at first, held whole, rules; outside
//!  them: false holds (claims, busiest minute, route-hours by rule)
//!
//!  VRP export ─► rpki::cache (a parsed copy by the file's hash) / rpki::vrps::load ─►
//!               rpki::VrpIndex + rpki::AspaSet (immutable; replaced whole, never edited,
//!               held as rpki::RpkiRef)
//!  signed objects ─► rpki::signed::inspect (rpki crate: decode, CMS/EE, chain to a TA)
//!  (rpki-client / Routinator / StayRTR JSON, CSV)
//!  policies/*.toml ─► judge::Policy (hash recorded in every decision)
//! ```
//!
//! Threads: a decompressor per compressed file, the MRT parser, and the judging thread,
//! talking through bounded channels (`std::sync::mpsc::sync_channel`), so a slow stage holds
//! the one before it back instead of buffering. [`pipeline::RovStage`] runs over a whole
//! batch before [`pipeline::Pipeline`] records it, prefetching a few events ahead (the table
//! look-ups of consecutive events then overlap in the CPU instead of each waiting for
//! memory), on the receiving thread; with a judge, which makes that thread the busier,
//! the parser thread interns the prefixes and the receiving thread only validates. Judged
//! batches return to the parser thread, so the AS paths' reference counts and allocations
//! never cross cores. [`pipeline::Pipeline`] feeds each route event, with its RFC 6811
//! verdict, to the Adj-RIB-In and one [`judge::Judge`] per policy, and hands their decisions
//! to a [`pipeline::DecisionSink`]: the replay's [`replay::Tally`] (which also builds the
//! report) or the daemon's pipeline thread.
//!
//! Time is a value: every [`model::RouteEvent`] carries the MRT record's time; VRP expiry,
//! confirmation windows, hold-downs and trust decay are all judged against it, and the
//! judge never reads a clock, so a replay is a deterministic function of its inputs.
//!
//! What exists today: MRT and BMP ingest, VRP and ASPA loading, origin validation, ASPA
//! path verification, the per-peer Adj-RIB-In, the judge (claims, independent witnesses,
//! peer trust, policies, decisions), the replay report (`routewitness replay`,
//! `routewitness validate`) and the daemon (`routewitness run`: BMP listener, HTTP API,
//! metrics, a configuration file, SQLite state that survives kill -9, SIGHUP reload, RPKI
//! from RTR caches, files and signed repository copies in quorum with SLURM and live
//! re-judging), `rpki inspect`,
//! and acting over RTR (an RTR server for routers' RPKI and a quarantine feed, taken by
//! BIRD, each change verified over BIRD's control socket and logged; on FRR through
//! vtysh), and alerts to the NOC over signed webhooks (`act::alerts`, `act::outbox`,
//! `act::webhook`): decisions, RPKI freezes, failed actions and lost BMP sessions raise
//! them; the state thread writes them to the outbox; a delivery thread sends them.
//!
//! ## Modules
//! - [`act`]: acting on routers: the RTR server ([`act::rtr_server`]), the quarantine it
//!   serves ([`act::quarantine`]), the router configuration ([`act::router_config`]),
//!   BIRD's control socket ([`act::bird`]) and verification there ([`act::verify`]),
//!   FRR through vtysh ([`act::frr`]), alerts ([`act::alerts`]), their outbox and
//!   delivery ([`act::outbox`]) and signatures ([`act::webhook`]).
//! - [`model`]: the words: [`model::Asn`], [`model::EventTime`], [`model::Peer`],
//!   [`model::AsPath`], [`model::RouteEvent`].
//! - [`input`]: opening plain/gzip/bzip2 files, decompressing off-thread.
//! - [`ingest`]: feeds to events ([`ingest::mrt`], [`ingest::bmp`]; UPDATEs in
//!   [`ingest::bgp`]).
//! - [`rpki`]: VRPs and ASPAs ([`rpki::vrps`]), the covering index ([`rpki::index`]),
//!   origin validation ([`rpki::rov`]), ASPA path verification ([`rpki::aspa`]), the RTR
//!   client ([`rpki::rtr`]), SLURM ([`rpki::slurm`]), sources in quorum
//!   ([`rpki::sources`]), signed objects ([`rpki::signed`]).
//! - [`judge`]: claims and witnesses, standing ([`judge::standing`]: holders, the links
//!   and relationships the paths show), conflicts, peer trust, policies, decisions (pure).
//! - [`eval`]: `routewitness eval`: a policy measured on real days against labelled and
//!   injected incidents.
//! - [`rib`]: the Adj-RIB-In with interned prefixes and AS paths.
//! - [`pipeline`]: what `replay` and `run` share: the ROV stage, the Adj-RIB-In and the
//!   judges, and the sink their decisions go to.
//! - [`replay`]: the replay command's threads and its report ([`replay::Tally`]);
//!   [`report`] renders it.
//! - [`daemon`]: `routewitness run`: wiring and shutdown, BMP sessions, the pipeline
//!   thread, the state thread, the RPKI task, SIGHUP (`src/daemon/`).
//! - [`api`]: the HTTP API (read the snapshot, post holds and releases, auth).
//! - [`metrics`]: every metric's name, labels and help in one place.
//! - [`config`]: `routewitness.toml`, its feed files, and the command line's overrides.
//! - [`state`]: the daemon's SQLite state (decision log in binary records, the held
//!   routes' snapshot, the judge's saved state).
//! - [`mem`]: memory helpers (the one prefetch allowed `unsafe`).
//! - [`cli`]: the commands behind the binary.

#![deny(unsafe_code)]

pub mod act;
pub mod api;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod eval;
pub mod ingest;
pub mod input;
pub mod judge;
pub mod mem;
pub mod metrics;
pub mod model;
pub mod pipeline;
pub mod replay;
pub mod report;
pub mod rib;
pub mod rpki;
pub mod state;
