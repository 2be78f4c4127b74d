//! Routes: announcements, withdrawals and peers going down, each route's evaluation
//! against the policy, and the decisions (with their reasons) it emits.

use super::*;

/// What a decision says changed: the outcome, the one before, why, and since when the
/// hold (or the released hold) began.
#[derive(Clone, Copy, Debug)]
pub(super) struct Change {
    pub(super) outcome: Outcome,
    pub(super) previous: Outcome,
    pub(super) cause: Cause,
    pub(super) since: EventTime,
}

impl<'a> Judge<'a> {
    pub(super) fn reevaluate_claim_routes(
        &mut self,
        c: u32,
        t: EventTime,
        cause: Cause,
        skip: Option<(u32, u32)>,
    ) {
        let n = self.claims[c as usize].witnesses.len();
        for i in 0..n {
            let w = self.claims[c as usize].witnesses[i];
            if skip == Some((w.peer, w.path_id)) {
                continue;
            }
            self.evaluate_route(c, i, t, cause, None);
        }
    }

    pub(super) fn reevaluate_route(&mut self, key: RouteKey, t: EventTime, cause: Cause) {
        if let Some((c, pos)) = self.locate(key.prefix, key.peer, key.path_id) {
            self.evaluate_route(c, pos, t, cause, None);
        }
    }

    /// Computes a route's outcome; emits a decision when it changed.
    pub(super) fn evaluate_route(
        &mut self,
        c: u32,
        wi: usize,
        t: EventTime,
        cause: Cause,
        path: Option<&AsPath>,
    ) {
        let cl = &self.claims[c as usize];
        let w = cl.witnesses[wi];
        let bits = (cl.flags | w.flags) & self.hold_mask;
        let action = if bits == 0 {
            Action::Propagate
        } else {
            self.action_of(bits, cl.set_action)
        };
        let operator = self.operators.get(&c).map(|o| o.0);
        let released = operator == Some(OperatorAction::Release);
        let action = match operator {
            Some(OperatorAction::Hold) => action.max(Action::Quarantine),
            Some(OperatorAction::Release) => Action::Propagate,
            None => action,
        };
        let key = RouteKey {
            peer: w.peer,
            prefix: cl.prefix_id,
            path_id: w.path_id,
        };
        let old = w.outcome.is_held().then_some(Held {
            outcome: w.outcome,
            since: w.held_since,
        });
        let new = Outcome::from_action(action);
        let previous = old.map_or(Outcome::Propagate, |h| h.outcome);
        if previous == new {
            return;
        }
        if let Some(h) = old.filter(|_| !released) {
            if new == Outcome::Propagate {
                let due = EventTime(h.since.0.saturating_add(micros(self.policy.hold_down)));
                if t < due {
                    self.hold_timers.insert((due, key));
                    return;
                }
            }
        }
        let since = match (old, new) {
            (Some(h), Outcome::Propagate) => h.since,
            _ => t,
        };
        let reasons = if new.is_held() && self.keep {
            self.reasons(c, wi, t, path)
        } else {
            Reasons::new()
        };
        {
            let wm = &mut self.claims[c as usize].witnesses[wi];
            wm.outcome = new;
            wm.held_since = since;
        }
        match new {
            Outcome::Propagate => {
                self.peers[w.peer as usize].held -= 1;
                self.stats.released += 1;
            }
            _ => {
                if old.is_none() {
                    self.peers[w.peer as usize].held += 1;
                    // Only a hold for a conflict is evidence of its own: RPKI and ASPA
                    // verdicts were counted when the route came, and a hold for low trust
                    // must not feed on itself.
                    // The peers carrying a suspected hijack were fooled, they did not
                    // lie: only a squat (an observer's claim on space nobody used) costs.
                    if bits & cond::SQUAT != 0 {
                        self.evidence(w.peer, t, Evidence::ConflictHeld);
                    }
                    let idx = self.claims[c as usize].conflict;
                    if let Some(r) = self.conflicts.get_mut(idx as usize) {
                        r.routes_held += 1;
                    }
                }
                match new {
                    Outcome::Reject => self.stats.rejected += 1,
                    _ => self.stats.quarantined += 1,
                }
            }
        }
        let change = Change {
            outcome: new,
            previous,
            cause,
            since,
        };
        self.emit(c, w, t, change, reasons);
    }

    /// Records route `w` of claim `c`'s decision at `t`.
    pub(super) fn emit(&mut self, c: u32, w: Witness, t: EventTime, ch: Change, reasons: Reasons) {
        let Change {
            outcome,
            previous,
            cause,
            since,
        } = ch;
        self.seq += 1;
        self.stats.decisions += 1;
        if !self.keep {
            return;
        }
        let cl = &self.claims[c as usize];
        let p = &self.peers[w.peer as usize].peer;
        let d = Decision {
            seq: self.seq,
            time: t,
            outcome,
            previous,
            cause,
            peer: p.addr,
            peer_asn: p.asn,
            prefix: cl.prefix,
            path_id: (w.path_id != 0).then_some(w.path_id),
            origin: cl.origin,
            as_path: None,
            since,
            reasons,
            policy: self.policy_hash.clone(),
            rpki_serial: self.rpki_serial,
            peer_idx: PeerIdx(w.peer),
            prefix_id: PrefixId(cl.prefix_id),
        };
        self.out.push(d);
    }

    /// Everything that holds route `wi` of claim `c` now.
    pub(super) fn reasons(
        &self,
        c: u32,
        wi: usize,
        t: EventTime,
        path: Option<&AsPath>,
    ) -> Reasons {
        let cl = &self.claims[c as usize];
        let w = cl.witnesses[wi];
        let bits = (cl.flags | w.flags) & self.hold_mask;
        let mut out = Reasons::new();
        if let Some((OperatorAction::Hold, note)) = self.operators.get(&c) {
            out.push(Reason {
                rule: Cow::Borrowed("operator.hold"),
                action: Action::Quarantine,
                detail: Detail::Operator {
                    operator: note.to_string(),
                },
            });
        }
        let mut b = bits;
        while b != 0 {
            let i = b.trailing_zeros() as usize;
            let bit = 1u16 << i;
            b &= b - 1;
            let action = if bit == cond::PREFIX_SET {
                cl.set_action
            } else {
                self.actions[i]
            };
            if action == Action::Propagate {
                continue;
            }
            let mut rule = Cow::Borrowed(cond::Cond::ALL[i].rule());
            let detail = match bit {
                cond::RPKI_INVALID | cond::RPKI_NOT_FOUND => Detail::Rpki {
                    rpki: cl
                        .rov
                        .reason()
                        .map_or(InvalidReasonOrNotFound::NotFound, Into::into),
                    vrps: None,
                },
                cond::ASPA_INVALID => {
                    let role = self.peers[w.peer as usize].role;
                    let bad_hop =
                        path.and_then(|p| self.aspa_verdict(p, &cl.prefix, t, w.peer)?.bad_hop);
                    Detail::Aspa { role, bad_hop }
                }
                cond::AS_SET => Detail::Path { asn: None },
                cond::RESERVED_ASN => Detail::Path {
                    asn: path.and_then(anomaly::reserved_in_path),
                },
                cond::BOGON => Detail::Prefix {
                    block: anomaly::bogon(&cl.prefix),
                    max_length: None,
                },
                cond::TOO_SPECIFIC => Detail::Prefix {
                    block: None,
                    max_length: Some(match cl.prefix {
                        IpNet::V4(_) => self.policy.anomalies.max_length_v4,
                        IpNet::V6(_) => self.policy.anomalies.max_length_v6,
                    }),
                },
                cond::PREFIX_SET => {
                    let set = self.policy.prefix_sets.iter().find(|s| {
                        s.prefixes.iter().any(|n| contains(n, &cl.prefix))
                            && (cl.origin.is_none_or(|o| !s.origins.contains(&o))
                                || s.max_length.is_some_and(|m| cl.prefix.prefix_len() > m))
                    });
                    if let Some(s) = set {
                        rule = Cow::Owned(format!("prefix_sets.{}", s.name));
                    }
                    Detail::PrefixSet {
                        allowed: set.map(|s| s.origins.clone()).unwrap_or_default(),
                        max_length: set.and_then(|s| s.max_length),
                    }
                }
                cond::MOAS | cond::SUB_PREFIX | cond::RECURRING => Detail::Conflict {
                    against: self
                        .conflicts
                        .get(cl.conflict as usize)
                        .map(|r| r.against.clone())
                        .unwrap_or_default(),
                    witnesses: self.witness_count(c, t),
                },
                cond::SQUAT => Detail::Squat {
                    lookback_s: self.policy.conflicts.squat_lookback.as_secs(),
                },
                cond::FORGED_ORIGIN => {
                    let asns = path.map(path_asns).unwrap_or_default();
                    let n = asns.len();
                    let (upstream, origin) = if n >= 2 {
                        (Asn(asns[n - 2]), Asn(asns[n - 1]))
                    } else {
                        (Asn(w.neighbour), cl.origin.unwrap_or(Asn::ZERO))
                    };
                    Detail::NewLink { upstream, origin }
                }
                cond::UNCONFIRMED => Detail::Unconfirmed {
                    window_s: self.policy.confirm.window.as_secs(),
                    witnesses: self.witness_count(c, t),
                },
                _ => Detail::Untrusted {
                    witnesses: self.witness_count(c, t),
                },
            };
            out.push(Reason {
                rule,
                action,
                detail,
            });
        }
        out
    }

    // ----- events -----

    /// An announcement (new route, or an implicit replacement of the peer's route).
    pub fn announce(&mut self, a: Announce<'_>) {
        self.advance(a.time);
        let t = self.now;
        let p = a.peer.0;
        self.ensure_peer(p);
        let pid = a.prefix_id.0;
        let path_id = a.path_id.unwrap_or(0);
        if !a.snapshot && !self.withdrawn.is_empty() {
            if let Some(when) = self.withdrawn.remove(&(p, pid)) {
                if t.0 - when.0 <= micros(self.policy.trust.flap_interval) {
                    self.evidence(p, t, Evidence::Flap);
                }
            }
        }
        let peer_asn = self.peers[p as usize].peer.asn;
        // State transfer (a RIB dump entry, a router's initial table, or a burst of new
        // claims from one peer: a table sent again) teaches without raising conflicts.
        let witness = Witness {
            peer: p,
            path_id,
            since: t,
            neighbour: neighbour_of(a.path, a.origin, peer_asn),
            flags: self.path_flags(&a, p),
            outcome: Outcome::Propagate,
            held_since: EventTime(0),
        };
        let old = self.locate(pid, p, path_id);
        let target = self.find_claim(pid, a.origin);
        // `entered`: the route joins this claim now (a new route, or a new origin). Evidence
        // about the peer is taken then, once per route and claim: re-announcing the same
        // claim is churn, which flaps measure.
        let mut old_neighbour = NONE;
        let (c, wi, entered, old_flags) = match (old, target) {
            (Some((oc, pos)), Some(tc)) if oc == tc => {
                let w = &mut self.claims[tc as usize].witnesses[pos];
                let old_flags = w.flags;
                old_neighbour = w.neighbour;
                w.neighbour = witness.neighbour;
                w.flags = witness.flags;
                (tc, pos, false, old_flags)
            }
            _ => {
                if let Some((oc, pos)) = old {
                    // The route moves to another claim (a new origin): a hold it had
                    // there ends with a closing decision for that claim, and it is
                    // judged afresh under the new one, so every claim's routes have
                    // their last decision (what the state keeps) right.
                    self.gone_route(oc, pos, t, Cause::Announced);
                    self.detach(oc, pos, t);
                }
                // The old claim may have been removed and its slot reused: look again.
                let c = match self.find_claim(pid, a.origin) {
                    Some(c) => c,
                    None => self.enter_new_claim(&a, p, t),
                };
                let cl = &mut self.claims[c as usize];
                if cl.witnesses.is_empty() && cl.gone_since.take().is_some() {
                    self.claims_version += 1;
                    if let Some(seen) = self.seen.as_mut() {
                        seen.insert(a.prefix, EventTime(i64::MAX));
                    }
                }
                cl.witnesses.push(witness);
                (c, cl.witnesses.len() - 1, true, 0)
            }
        };
        {
            let cl = &mut self.claims[c as usize];
            cl.rov = a.rov;
            cl.flags =
                (cl.flags & !(cond::RPKI_INVALID | cond::RPKI_NOT_FOUND)) | Self::rov_flags(a.rov);
        }
        // An invalid route that enough independent peers already carry (established)
        // tells about its origin, not about this peer relaying it; it counts against the
        // peer only while the peer is among the few carrying it.
        if entered && self.claims[c as usize].established.is_none() {
            if let RovState::Invalid(_) = a.rov {
                self.evidence(p, t, Evidence::RpkiInvalid);
            }
        }
        if witness.flags & cond::ASPA_INVALID != 0 && old_flags & cond::ASPA_INVALID == 0 {
            self.evidence(p, t, Evidence::AspaInvalid);
        }
        if entered
            && self.claims[c as usize].flags & cond::SUSPECT != 0
            && !self.suspects.is_empty()
        {
            self.recheck_suspect(c, t, a.path);
        }
        // A claim learned unchecked from a table, now announced as news (by a peer not
        // sending a table, or while its origin is mass claiming): judge it. Its sighting
        // counts towards its origin's mass claiming there (`check_conflict`).
        if entered
            && self.claims[c as usize].unchecked
            && !a.snapshot
            && (!self.sending_table(p, t) || self.mass_claiming(self.claims[c as usize].origin, t))
        {
            self.claims[c as usize].unchecked = false;
            self.check_conflict(c, t, a.path, p);
            if self.claims[c as usize].flags & cond::SUSPECT != 0 {
                self.reevaluate_claim_routes(c, t, Cause::Announced, Some((p, path_id)));
            }
        }
        let established = self.claims[c as usize].established.is_some();
        if established {
            if entered {
                match a.rov {
                    RovState::Valid => self.evidence(p, t, Evidence::ConfirmedValid),
                    RovState::NotFound => self.evidence(p, t, Evidence::ConfirmedNotFound),
                    RovState::Invalid(_) => {}
                }
            }
        } else {
            self.evaluate_claim(c, t, Some((p, path_id)));
        }
        // The claim may have been re-judged; find this route's witness again.
        let wi = match self.claims[c as usize].witnesses.get(wi) {
            Some(w) if w.peer == p && w.path_id == path_id => wi,
            _ => match self.locate(pid, p, path_id) {
                Some((_, pos)) => pos,
                None => return,
            },
        };
        self.check_new_link(c, wi, &a, t);
        self.evaluate_route(c, wi, t, Cause::Announced, Some(a.path));
        // The link at the origin joins the history, unless the route is held: a hijack
        // must not become its own evidence.
        let w = self.claims[c as usize].witnesses[wi];
        if let Some(o) = a.origin {
            let suspect = self.claims[c as usize].flags & cond::SUSPECT != 0;
            if !w.outcome.is_held() && !suspect {
                if entered || w.neighbour != old_neighbour {
                    self.links.note(w.neighbour, o.0, t);
                }
                // The routes of one UPDATE share their path: its carriers once (and only
                // when forged origins are looked for, the one rule that reads them).
                let seen = self.action(cond::Cond::ForgedOrigin) == Action::Propagate
                    || self
                        .last_carried
                        .as_ref()
                        .is_some_and(|p| p.same_allocation(a.path));
                if !seen {
                    self.links.note_transit(&path_asns(a.path));
                    self.last_carried = Some(a.path.clone());
                }
            }
        }
    }

    /// A claim new to the judge, announced by peer `p`: made, and judged as news or
    /// learned as state transfer.
    fn enter_new_claim(&mut self, a: &Announce<'_>, p: u32, t: EventTime) -> u32 {
        let c = self.new_claim(a, t);
        let mut transfer = a.snapshot || self.new_claim_burst(p, t);
        if transfer && !a.snapshot && !self.learning(t) {
            // One origin claiming many holders' space within minutes is a
            // mass hijack reaching this peer, not its table.
            if let Some((_, against)) = self.find_conflict(c, t) {
                let holders = against.iter().filter_map(|h| h.origin);
                if self.note_origin_conflict(a.origin, holders, p, t) {
                    transfer = false;
                }
            }
        }
        // Squats are judged before this prefix counts as seen. State
        // transfer is not news: a claim in it that contradicts nobody
        // is learned; one that would is left unchecked (no hold, no
        // standing) until a peer not sending a table announces it, so a
        // hijack carried by others is still judged when it reaches them.
        if !self.learning(t) {
            if !transfer {
                self.check_conflict(c, t, a.path, p);
                if self.claims[c as usize].flags & cond::SUSPECT != 0 {
                    let gen = self.claims[c as usize].gen;
                    let ps = &mut self.peers[p as usize];
                    if ps.burst_suspects.len() < 64 {
                        ps.burst_suspects.push((c, gen));
                    }
                }
            } else if self.find_conflict(c, t).is_some() {
                self.stats.transfer_routes += 1;
                self.claims[c as usize].unchecked = true;
                // Seen in a table: announced as news later, it is recurring
                // (a long-standing route), not new.
                self.note_tried(c, t);
            }
        }
        if let Some(seen) = self.seen.as_mut() {
            seen.insert(a.prefix, EventTime(i64::MAX));
        }
        c
    }

    /// A withdrawal of the peer's route for the prefix (a no-op when it has none).
    pub fn withdraw(
        &mut self,
        time: EventTime,
        peer: PeerIdx,
        prefix_id: PrefixId,
        path_id: Option<u32>,
    ) {
        self.advance(time);
        let t = self.now;
        let p = peer.0;
        let path_id = path_id.unwrap_or(0);
        if let Some((c, pos)) = self.locate(prefix_id.0, p, path_id) {
            self.gone_route(c, pos, t, Cause::Withdrawn);
            self.detach(c, pos, t);
            if self.policy.trust.weights.flap > 0.0 {
                self.withdrawn.insert((p, prefix_id.0), t);
            }
        }
    }

    /// The route is going away: a held route gets its closing decision.
    pub(super) fn gone_route(&mut self, c: u32, pos: usize, t: EventTime, cause: Cause) {
        let w = self.claims[c as usize].witnesses[pos];
        if !w.outcome.is_held() {
            return;
        }
        self.claims[c as usize].witnesses[pos].outcome = Outcome::Propagate;
        self.peers[w.peer as usize].held -= 1;
        self.stats.withdrawn_while_held += 1;
        let change = Change {
            outcome: Outcome::Withdrawn,
            previous: w.outcome,
            cause,
            since: w.held_since,
        };
        self.emit(c, w, t, change, Reasons::new());
    }

    /// The peer's session went down: all its routes are gone.
    pub fn peer_down(&mut self, time: EventTime, peer: PeerIdx) {
        self.advance(time);
        let t = self.now;
        let p = peer.0;
        for word in 0..self.live.len() {
            let mut bits = self.live[word];
            while bits != 0 {
                let c = (word * 64) as u32 + bits.trailing_zeros();
                bits &= bits - 1;
                self.drop_peer_routes(c, p, t);
            }
        }
    }

    /// Detaches every route of peer `p` from claim `c` (when it is still live: handling
    /// earlier claims may have freed it).
    pub(super) fn drop_peer_routes(&mut self, c: u32, p: u32, t: EventTime) {
        if !self.claims[c as usize].live {
            return;
        }
        while let Some(pos) = self.claims[c as usize]
            .witnesses
            .iter()
            .position(|w| w.peer == p)
        {
            self.gone_route(c, pos, t, Cause::PeerDown);
            self.detach(c, pos, t);
            if !self.claims[c as usize].live {
                break;
            }
        }
    }
}
