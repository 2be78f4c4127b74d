//! The judge: turns route events and their RPKI verdicts into [`Decision`]s that one lying
//! peer, or a few, cannot corrupt. Pure: `events + state + time → decisions`; no I/O, no
//! clock reads, no threads. Replay and (later) the daemon feed it the same way, so a replay
//! is a deterministic function of its inputs.
//!
//! ## Two questions, two kinds of evidence
//!
//! Many observers carrying a route shows that it *propagates*, not that it is *true*: the
//! peers that carried YouTube's hijacker in 2008 were fooled, they did not lie. So the judge
//! asks two questions and keeps them apart:
//!
//! - **Is the origin lying?** (a claim on space someone else holds.) The claim's
//!   **standing** answers it (see [`standing`]): RPKI where it covers (decisive); the holder's
//!   history; the operator's prefix sets; the relationships the paths themselves show.
//!   Witnesses never answer it.
//! - **Is an observer lying?** (a peer or router reporting what nobody else confirms.)
//!   Independent witnesses answer it (below). A claim that contradicts nobody needs none.
//!
//! ## Claims, holders and standing
//!
//! A *claim* is (prefix, origin AS); its *witnesses* are the peers announcing it now (each
//! (peer, ADD-PATH id) once). A claim that contradicts no holder has **standing** from its
//! first trusted sighting (it "is established"): it becomes a *holder* of its prefix, also
//! when only one peer ever showed it (an update stream shows a stable route only when it
//! changes). A claim with standing is remembered for `conflicts.memory` (30 days) after its
//! last witness withdrew it: the holder's history.
//!
//! When a claim first appears (not in a state transfer, below), it is checked against the
//! holders: **MOAS** (a holder of the same prefix with another origin), **sub-prefix**
//! (holders of the most specific covering prefix, none with the same origin: an origin
//! holding any covering prefix is the holder announcing its own more-specific, or fighting
//! back), **squat** (nothing overlapping announced within `conflicts.squat_lookback`; off by
//! default). AS_SET origins and AS_TRANS neither raise nor answer a conflict. Then:
//!
//! - the new origin **related** to a holder ([`standing::Links::related`]: customer,
//!   customer's customer, provider, sibling, shared small upstream, or the holder on the new
//!   route's path; for a MOAS also the upstream carrying it serving both,
//!   `standing.shared_upstream`), each from evidence at least `standing.link_age` older
//!   than the claim:
//!   a **legitimate change**, recorded (`legitimate`), not held. It gains standing only
//!   once independent witnesses confirm it (the observer question: f < k liars forging a
//!   path through the holder cannot make themselves holders); unconfirmed within
//!   `confirm.window` it is refuted and `confirm.on_unconfirmed` applies (default: watch);
//! - **unrelated**, and not seen before: a **suspected hijack** (`conflicts.moas`,
//!   `conflicts.sub_prefix`), held from its first announcement for as long as any peer
//!   carries it. The number of peers carrying it never releases it, and they lose no trust
//!   for it. It never gains standing (a hijack lasting days does not become the holder).
//!   RPKI finding it Valid releases it (a ROA is the holder's own word); an operator can;
//!   a new witness whose path shows a holder carrying it makes it related;
//! - **unrelated, but the same origin claimed the same prefix within the memory**
//!   (held, watched, or seen in a table): `conflicts.recurring`, watched by default. What a
//!   collector's update stream shows again and again is long-standing routes that churn.
//!
//! A route whose last link (X, origin) was never seen, X never seen giving transit and the
//! origin a holder: `conflicts.forged_origin` (type-1, DFOH's question; watched by default).
//!
//! **State transfer is not news**: RIB dump entries, a router's BMP table before
//! End-of-RIB, and a burst of claims new to the judge from one peer (`standing.
//! transfer_burst` in a minute: a table sent again, which an MRT update stream shows
//! without any End-of-RIB) teach the judge: a claim in them that contradicts nobody is
//! learned with standing; one that would contradict a holder is left *unchecked* (neither
//! held nor a holder) until a peer not sending its table announces it as news; the few
//! held before a burst showed are released (cause `transfer`). A table re-sent is no flap
//! and costs no trust. A mass hijack is not a table: one origin claiming the space of many
//! holders within minutes, from two peer ASes or more, is judged even in bursts. Nothing raises a conflict during the first `warmup` (15 min) of a
//! cold judge.
//!
//! A claim only peers below the trust floor make, and without standing, is held
//! (`conflicts.untrusted_source`).

//! ## Counting independent witnesses
//!
//! 1. Only witnesses whose trust is at or above `trust.floor` vote.
//! 2. A witness whose peer AS *is* the claimed origin does not vote: the origin announcing
//!    its own claim is the claimant, not a witness.
//! 3. One vote per **monitored router** (`confirm.one_vote_per_router`, on by default):
//!    over BMP the router writes its peers' addresses and ASes in its per-peer headers
//!    itself, so one router could present any number of made-up peers in any ASes. All
//!    peers seen through one router are one witness domain, which votes once (its lowest
//!    peer AS and neighbour, so the count does not depend on event order). A collector's
//!    MRT peers are BGP sessions the collector holds, each a domain of its own.
//! 4. One vote per peer AS: several sessions (or collectors) with peers in the same AS
//!    are one witness. A peer AS seen with several paths counts once, with the lowest
//!    neighbour AS (so the count does not depend on event order).
//! 5. The votes are grouped by **neighbour AS**, the AS just before the origin on the
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
//! **Why f < k lying peers can never give standing to a claim that contradicts a holder**
//! (an unrelated one never gains any; a related one only through witnesses): every peer AS contributes at
//! most 1 (β ≤ 1 is enforced), and a peer's AS is the session's, not something it can put
//! in a path. So f peers, however they forge their paths, add at most f < k. The neighbour
//! AS comes from the (forgeable) path, but it can only lower a vote's weight, never raise
//! it. Over BMP a peer's AS is the monitored router's word, so the liar is the router: a
//! router contributes at most 1 whatever peers it presents (rule 3), and f lying routers
//! add at most f < k. Property tests (`tests/judge.rs`) check both: f lying peers, and f
//! lying routers with any number of made-up peers each.
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
pub mod standing;
pub mod trust;

pub use decision::{Cause, Decision, Detail, Outcome, Reason};
pub use engine::{
    claim_id, parse_claim_id, Announce, ClaimView, ConflictKind, ConflictRecord, HeldRoute, Judge,
    JudgeStats, OperatorAction, PeerTrust, Resolution, Saved, SavedClaim, SavedOperator,
    SavedTrust,
};
pub use policy::{Action, Policy, PolicyError};
