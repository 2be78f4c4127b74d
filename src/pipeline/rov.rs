//! The ROV stage: interns each prefix (caching where its covering VRPs start) and gives
//! every announcement its RFC 6811 [`Verdict`], a whole batch at a time, with prefetches a
//! few events ahead so the table look-ups of consecutive events overlap. Its two halves
//! ([`Interner`], [`Validator`]) can run on two threads, one after the other (the replay
//! does so when a judge makes the receiving thread the busier).

use crate::ingest::IngestEvent;
use crate::judge::Announce;
use crate::model::{Asn, RouteAction, RouteEvent};
use crate::rib::{PrefixId, PrefixTable};
use crate::rpki::{validate_in, Cover, RovState, RpkiRef, VrpIndex};
use ipnet::IpNet;

/// Interns every route event's prefix, pushing one verdict per route event (RPKI state
/// left for [`validate_all`]), prefetching each prefix's table slot a few events ahead.
pub(crate) fn intern_all(
    events: &[IngestEvent],
    interner: &mut Interner,
    verdicts: &mut Vec<Verdict>,
) {
    const AHEAD: usize = 8;
    for ev in events.iter().take(AHEAD) {
        interner.prefetch(ev);
    }
    for (i, ev) in events.iter().enumerate() {
        if let Some(next) = events.get(i + AHEAD) {
            interner.prefetch(next);
        }
        if let Some(v) = interner.intern(ev) {
            verdicts.push(v);
        }
    }
}

/// Fills in the RPKI state of the verdicts of `events`' route events (`verdicts`: one per
/// route event, from [`intern_all`]), prefetching in a pipeline: a prefix's cover 3 * STEP events ahead, its VRP
/// entry's key, parent and offsets 2 * STEP ahead, its first payload STEP ahead
/// (measured on the 4.6 M event update bench: with the slot prefetches of
/// [`intern_all`], ROV on the parser thread went from 0.67 to 0.36 s).
pub(crate) fn validate_all(
    events: &[IngestEvent],
    validator: &mut Validator,
    verdicts: &mut [Verdict],
) {
    const STEP: usize = 4;
    let routes = events.iter().filter_map(|ev| match ev {
        IngestEvent::Route(r) => Some(r),
        _ => None,
    });
    for (i, r) in routes.enumerate() {
        if let Some(v) = verdicts.get(i + 3 * STEP) {
            validator.prefetch_cover(v);
        }
        if let Some(v) = verdicts.get(i + 2 * STEP) {
            validator.prefetch_vrps(v, 0);
        }
        if let Some(v) = verdicts.get(i + STEP) {
            validator.prefetch_vrps(v, 1);
        }
        if let Some(v) = verdicts.get_mut(i) {
            validator.validate(r, v);
        }
    }
}

/// What [`RovStage`] says about one route event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// The interned prefix; `None` for a withdrawal of a prefix never announced.
    pub prefix: Option<PrefixId>,
    /// The RFC 6811 route origin (announcements only).
    pub origin: Option<Asn>,
    /// The validation state (announcements only; `NotFound` for withdrawals).
    pub state: RovState,
}

impl Verdict {
    /// The judge's view of an announcement `r` that this is the verdict of (`None` for a
    /// withdrawal).
    pub fn announce<'p>(&self, r: &'p RouteEvent) -> Option<Announce<'p>> {
        let RouteAction::Announce(path) = &r.action else {
            return None;
        };
        Some(Announce {
            time: r.time,
            peer: r.peer,
            prefix: r.prefix,
            prefix_id: self.prefix?,
            path_id: r.path_id,
            path,
            origin: self.origin,
            rov: self.state,
            snapshot: r.snapshot,
        })
    }
}

/// The ROV side of the pipeline: sees every event in order, interns prefixes and validates
/// announcements. Owns no per-route state, so it can run on its own thread ahead of
/// [`super::Pipeline`]; its two halves can also run on two threads, one after the other.
pub struct RovStage<'a> {
    pub(crate) interner: Interner,
    pub(crate) validator: Validator<'a>,
}

impl<'a> RovStage<'a> {
    pub fn new(index: impl Into<RpkiRef<'a, VrpIndex>>, honour_expires: bool) -> Self {
        RovStage {
            interner: Interner::default(),
            validator: Validator::new(index, honour_expires),
        }
    }

    /// The verdicts of a run of events, one per route event, in order: the batched
    /// form of [`Self::annotate`], with its prefetching (what the replay uses).
    pub fn annotate_all(&mut self, events: &[IngestEvent], verdicts: &mut Vec<Verdict>) {
        let start = verdicts.len();
        intern_all(events, &mut self.interner, verdicts);
        validate_all(events, &mut self.validator, &mut verdicts[start..]);
    }

    /// The verdict for a route event; `None` for other events (peers are noted).
    #[inline]
    pub fn annotate(&mut self, ev: &IngestEvent) -> Option<Verdict> {
        let mut v = self.interner.intern(ev)?;
        if let IngestEvent::Route(r) = ev {
            self.validator.validate(r, &mut v);
        }
        Some(v)
    }

    /// Distinct prefixes announced so far.
    pub fn prefixes(&self) -> usize {
        self.interner.prefixes.len()
    }

    /// The id of a prefix announced so far.
    pub fn prefix_id(&self, prefix: &IpNet) -> Option<PrefixId> {
        self.interner.prefixes.get(prefix)
    }

    /// Validates against `index` from now on (the daemon's RPKI source changed).
    pub fn set_index(&mut self, index: impl Into<RpkiRef<'a, VrpIndex>>) {
        self.validator.index = index.into();
        // Covers are positions in the old index.
        self.validator.covers.clear();
    }

    /// The id of a prefix, given one when new (for state restored from an earlier run).
    pub fn intern_prefix(&mut self, prefix: &IpNet) -> PrefixId {
        self.interner.prefixes.intern(prefix).0
    }
}

/// The first half of [`RovStage`]: prefix ids and route origins.
#[derive(Default)]
pub(crate) struct Interner {
    pub(crate) prefixes: PrefixTable,
    peer_asns: Vec<Asn>,
}

impl Interner {
    /// Starts loading the prefix table slot [`Self::intern`] will need for `ev`.
    #[inline]
    fn prefetch(&self, ev: &IngestEvent) {
        if let IngestEvent::Route(r) = ev {
            self.prefixes.prefetch(&r.prefix);
        }
    }

    /// The verdict for a route event, all but its RPKI state (see [`Validator`]); `None`
    /// for other events (peers are noted).
    #[inline]
    fn intern(&mut self, ev: &IngestEvent) -> Option<Verdict> {
        let r = match ev {
            IngestEvent::Route(r) => r,
            IngestEvent::Peer(idx, peer) => {
                let i = idx.0 as usize;
                if self.peer_asns.len() <= i {
                    self.peer_asns.resize(i + 1, Asn::ZERO);
                }
                self.peer_asns[i] = peer.asn;
                return None;
            }
            _ => return None,
        };
        let path = match &r.action {
            RouteAction::Withdraw => {
                return Some(Verdict {
                    prefix: self.prefixes.get(&r.prefix),
                    origin: None,
                    state: RovState::NotFound,
                })
            }
            RouteAction::Announce(path) => path,
        };
        let (pid, _) = self.prefixes.intern(&r.prefix);
        let speaker = self
            .peer_asns
            .get(r.peer.0 as usize)
            .copied()
            .unwrap_or(Asn::ZERO);
        Some(Verdict {
            prefix: Some(pid),
            origin: path.origin(speaker),
            state: RovState::NotFound,
        })
    }
}

/// The second half of [`RovStage`]: RPKI states, with each prefix's [`Cover`] kept by
/// prefix id, looked up the first time this validator sees the prefix (so it works
/// whatever the order of the ids it is shown).
pub(crate) struct Validator<'a> {
    index: RpkiRef<'a, VrpIndex>,
    honour_expires: bool,
    covers: Vec<Cover>,
}

impl<'a> Validator<'a> {
    fn new(index: impl Into<RpkiRef<'a, VrpIndex>>, honour_expires: bool) -> Self {
        Validator {
            index: index.into(),
            honour_expires,
            covers: Vec::new(),
        }
    }

    #[inline]
    fn prefetch_cover(&self, v: &Verdict) {
        if let (Some(pid), Some(_)) = (v.prefix, v.origin) {
            if let Some(c) = self.covers.get(pid.0 as usize) {
                crate::mem::prefetch(c);
            }
        }
    }

    #[inline]
    fn prefetch_vrps(&self, v: &Verdict, stage: u8) {
        if let (Some(pid), Some(_)) = (v.prefix, v.origin) {
            if let Some(&c) = self.covers.get(pid.0 as usize) {
                self.index.prefetch(c, stage);
            }
        }
    }

    /// Fills in the RPKI state of [`Interner::intern`]'s verdict `v` for route event `r`.
    #[inline]
    fn validate(&mut self, r: &RouteEvent, v: &mut Verdict) {
        let (RouteAction::Announce(_), Some(pid)) = (&r.action, v.prefix) else {
            return;
        };
        let i = pid.0 as usize;
        if i >= self.covers.len() {
            self.covers.resize(i + 1, Cover::UNSET);
        }
        if self.covers[i] == Cover::UNSET {
            self.covers[i] = self.index.cover(&r.prefix);
        }
        let at = self.honour_expires.then(|| r.time.secs());
        v.state = validate_in(
            &self.index,
            self.covers[i],
            r.prefix.prefix_len(),
            v.origin,
            at,
        );
    }
}
