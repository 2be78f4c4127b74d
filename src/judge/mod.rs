//! The judge: turns route events and their RPKI verdicts into [`Decision`]s that one lying
//! peer, or a few, cannot corrupt. Pure: `events + state + time → decisions`; no I/O, no
//! clock reads, no threads. Replay and (later) the daemon feed it the same way, so a replay
//! is a deterministic function of its inputs.
//!
//! ## Claims and witnesses
//!
//! A *claim* is (prefix, origin AS). Its *witnesses* are the peers announcing it now (each
//! (peer, ADD-PATH id) once). A claim becomes **established** the first time enough
//! independent, trusted witnesses announce it at once (below). Established claims are
//! remembered for `conflicts.memory` after their last witness withdraws, so a hijack in
//! the gap is still a conflict.
//!
//! When a claim first appears, it is checked against the established ones:
//! - **MOAS**: the prefix has an established claim with another origin;
//! - **sub-prefix**: established prefixes cover it, and none of them has an established
//!   claim with the same origin; it is reported against the most specific one (a
//!   customer's more-specific of its provider's block, with the customer's origin, is one
//!   of these until witnesses confirm it; an AS announcing more-specifics of its own
//!   block anywhere below is not);
//! - **squat**: nothing overlapping it (covering or covered) was announced within
//!   `conflicts.squat_lookback`, and the judge has watched for at least that long.
//!
//! A conflicting claim whose origin RPKI says is Valid is not held (unless
//! `conflicts.hold_rpki_valid`): a ROA is the holder's own word. Nor is one whose prefix
//! or origin is on the allow-list. Routes from RIB dumps (state transfer, not news) are
//! learned without conflict checks.
//!
//! A held conflict ends when the claim is **confirmed** (established: its routes are
//! released), when every witness withdraws it, or when `confirm.window` passes without
//! confirmation: the claim is then **refuted**, its witnesses lose trust, and
//! `confirm.on_unconfirmed` applies to its routes from then on.
//!
//! ## Counting independent witnesses
//!
//! 1. Only witnesses whose trust is at or above `trust.floor` vote.
//! 2. A witness whose peer AS *is* the claimed origin does not vote: the origin announcing
//!    its own claim is the claimant, not a witness.
//! 3. One vote per peer AS: several sessions (or collectors) with peers in the same AS
//!    are one witness. A peer AS seen with several paths counts once, with the lowest
//!    neighbour AS (so the count does not depend on event order).
//! 4. The votes are grouped by **neighbour AS**, the AS just before the origin on the
//!    witness's path (prepends collapsed). The first peer AS of each group counts 1; each
//!    further peer AS in the same group counts `confirm.same_neighbour_weight` (β, 0.5 by
//!    default). Peers that all enter the origin through one neighbour saw one
//!    announcement, relayed by that neighbour: if the neighbour lies, or leaks, they all
//!    repeat it, so they are less independent than peers reaching the origin through
//!    different neighbours.
//!
//! effective = Σ over neighbour groups g of (1 + β·(m_g − 1)), with m_g the distinct
//! trusted peer ASes in group g; the claim is confirmed when effective ≥ `confirm.k`.
//!
//! **Why f < k lying peers can never establish a claim**: every peer AS contributes at
//! most 1 (β ≤ 1 is enforced), and a peer's AS is the session's, not something it can put
//! in a path. So f peers, however they forge their paths, add at most f < k. The neighbour
//! AS comes from the (forgeable) path, but it can only lower a vote's weight, never raise
//! it. A property test (`tests/judge.rs`) checks this.
//!
//! ## Trust
//!
//! See [`trust`]: a decayed Beta-reputation score toward `trust.prior`, lowered by
//! RPKI-invalid, ASPA-invalid, quarantined and flapping announcements and refuted claims,
//! raised by announcements of established claims that RPKI finds valid (or, weighted
//! less, not covered). A claim that only peers below the floor announce, and that is not
//! established, is held (`conflicts.untrusted_source`); a peer's fall below the floor
//! takes effect on its claims at their next change.
//!
//! ## Decisions
//!
//! Every condition a route meets maps to an action (policy); the route's outcome is the
//! strictest: reject > quarantine > propagate. A [`Decision`] is emitted only when a
//! route's outcome changes; routes start as propagate, so a clean route produces none. A
//! release is held back until `hold_down` after the quarantine began. A held route that is
//! withdrawn (or whose session goes down) gets a closing `withdrawn` decision.

pub mod anomaly;
pub mod decision;
pub mod engine;
pub mod policy;
pub mod trust;

pub use decision::{Cause, Decision, Detail, Outcome, Reason};
pub use engine::{
    claim_id, parse_claim_id, Announce, ClaimView, ConflictKind, ConflictRecord, HeldRoute, Judge,
    JudgeStats, OperatorAction, PeerTrust, Resolution, Saved, SavedClaim, SavedOperator,
    SavedTrust,
};
pub use policy::{Action, Policy, PolicyError};
