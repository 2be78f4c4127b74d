//! Claims: found, added and unlinked; evaluated, established, resolved, refuted,
//! forgotten and emptied as their witnesses come and go.

use super::*;

impl<'a> Judge<'a> {
    pub(super) fn find_claim(&self, prefix_id: u32, origin: Option<Asn>) -> Option<u32> {
        let mut c = *self.heads.get(prefix_id as usize)?;
        while c != NONE {
            let claim = &self.claims[c as usize];
            if claim.origin == origin {
                return Some(c);
            }
            c = claim.next;
        }
        None
    }

    /// The claim and position of the witness (peer, path id) for a prefix, if any.
    pub(super) fn locate(&self, prefix_id: u32, peer: u32, path_id: u32) -> Option<(u32, usize)> {
        let mut c = *self.heads.get(prefix_id as usize)?;
        while c != NONE {
            let claim = &self.claims[c as usize];
            if let Some(pos) = claim
                .witnesses
                .iter()
                .position(|w| w.peer == peer && w.path_id == path_id)
            {
                return Some((c, pos));
            }
            c = claim.next;
        }
        None
    }

    pub(super) fn new_claim(&mut self, a: &Announce<'_>, t: EventTime) -> u32 {
        self.add_claim(a.prefix, a.prefix_id.0, a.origin, a.rov, t)
    }

    pub(super) fn add_claim(
        &mut self,
        prefix: IpNet,
        pid: u32,
        origin: Option<Asn>,
        rov: RovState,
        t: EventTime,
    ) -> u32 {
        if self.heads.len() <= pid as usize {
            self.heads.resize(pid as usize + 1, NONE);
        }
        let (flags, set_action) = self.prefix_conditions(&prefix, origin);
        let claim = Claim {
            prefix,
            prefix_id: pid,
            origin,
            next: self.heads[pid as usize],
            gen: 0,
            live: true,
            flags: flags | Self::rov_flags(rov),
            set_action,
            rov,
            first_seen: t,
            established: None,
            gone_since: None,
            conflict: NONE,
            awaiting: false,
            unchecked: false,
            witnesses: SmallVec::new(),
        };
        let c = match self.free.pop() {
            Some(c) => {
                let gen = self.claims[c as usize].gen.wrapping_add(1);
                self.claims[c as usize] = Claim { gen, ..claim };
                c
            }
            None => {
                self.claims.push(claim);
                (self.claims.len() - 1) as u32
            }
        };
        let (word, bit) = (c as usize / 64, c % 64);
        if self.live.len() <= word {
            self.live.resize(word + 1, 0);
        }
        self.live[word] |= 1 << bit;
        self.heads[pid as usize] = c;
        if !self.restored_ops.is_empty() {
            if let Some(op) = self.restored_ops.remove(&(pid, origin)) {
                self.operators.insert(c, (op.action, op.note));
            }
        }
        c
    }

    pub(super) fn unlink(&mut self, c: u32) {
        let pid = self.claims[c as usize].prefix_id as usize;
        let next = self.claims[c as usize].next;
        if self.heads[pid] == c {
            self.heads[pid] = next;
        } else {
            let mut x = self.heads[pid];
            while x != NONE {
                if self.claims[x as usize].next == c {
                    self.claims[x as usize].next = next;
                    break;
                }
                x = self.claims[x as usize].next;
            }
        }
        self.live[c as usize / 64] &= !(1 << (c % 64));
        self.operators.remove(&c);
        if !self.suspects.is_empty() {
            self.suspects.remove(&c);
        }
        let claim = &mut self.claims[c as usize];
        claim.live = false;
        claim.witnesses = SmallVec::new();
        claim.next = NONE;
        self.free.push(c);
    }

    /// Re-judges a claim's standing after its witnesses changed: establishment and the
    /// untrusted-source hold. Routes whose outcome changes get decisions (`skip`, the
    /// route being announced now, is left to the caller).
    pub(super) fn evaluate_claim(&mut self, c: u32, t: EventTime, skip: Option<(u32, u32)>) {
        let (before, established, empty) = {
            let cl = &self.claims[c as usize];
            (cl.flags, cl.established.is_some(), cl.witnesses.is_empty())
        };
        if empty {
            return;
        }
        let mut cause = Cause::WitnessesChanged;
        let mut flags = before;
        if !established && before & cond::SUSPECT == 0 && !self.claims[c as usize].unchecked {
            // A suspected hijack never gains standing, however many carry it. A claim that
            // contradicts nobody has standing from its first trusted sighting; one that
            // contradicts other observers (a related MOAS, a squat) once independent
            // witnesses confirm it.
            let awaiting = self.claims[c as usize].awaiting || before & cond::SQUAT != 0;
            let (effective, any_trusted, _) = if awaiting {
                self.count(c, t, false)
            } else {
                (0.0, self.any_trusted(c, t), Vec::new())
            };
            let confirmed =
                awaiting && effective >= self.policy.confirm.k && before & cond::UNCONFIRMED == 0;
            // RPKI is decisive where it covers: an invalid claim is nobody's holder.
            let invalid = matches!(self.claims[c as usize].rov, RovState::Invalid(_));
            if confirmed || (!awaiting && !invalid && (any_trusted || self.learning(t))) {
                if confirmed {
                    cause = Cause::Confirmed;
                    flags &= !cond::CONFLICT;
                    self.claims[c as usize].awaiting = false;
                    self.stats.conflicts_confirmed += 1;
                    self.resolve(c, t, Resolution::Confirmed);
                }
                flags &= !cond::UNTRUSTED;
                self.establish(c, t);
            } else if !any_trusted && !self.learning(t) {
                flags |= cond::UNTRUSTED;
            } else {
                flags &= !cond::UNTRUSTED;
            }
        }
        self.claims[c as usize].flags = flags;
        if flags != before {
            self.reevaluate_claim_routes(c, t, cause, skip);
        }
    }

    pub(super) fn establish(&mut self, c: u32, t: EventTime) {
        self.stats.claims_established += 1;
        self.claims_version += 1;
        let (prefix, pid, rov, origin) = {
            let cl = &mut self.claims[c as usize];
            cl.established = Some(t);
            (cl.prefix, cl.prefix_id, cl.rov, cl.origin)
        };
        // Origins holding this prefix together are siblings (standing's evidence).
        if let Some(o) = origin {
            let mut x = self.heads[pid as usize];
            while x != NONE {
                let other = &self.claims[x as usize];
                if x != c && other.established.is_some() {
                    if let Some(h) = other.origin {
                        self.links.note_siblings(o.0, h.0, t);
                    }
                }
                x = other.next;
            }
        }
        self.established.insert(prefix, pid);
        let e = match rov {
            RovState::Valid => Some(Evidence::ConfirmedValid),
            RovState::NotFound => Some(Evidence::ConfirmedNotFound),
            RovState::Invalid(_) => None,
        };
        if let Some(e) = e {
            let peers: Vec<u32> = self.claims[c as usize]
                .witnesses
                .iter()
                .map(|w| w.peer)
                .collect();
            for p in peers {
                self.evidence(p, t, e);
            }
        }
    }

    pub(super) fn resolve(&mut self, c: u32, t: EventTime, r: Resolution) {
        let idx = self.claims[c as usize].conflict;
        if idx == NONE {
            return;
        }
        let wc = self.witness_count(c, t);
        if let Some(rec) = self.conflicts.get_mut(idx as usize) {
            rec.resolution = r;
            rec.resolved_at = Some(t);
            rec.witnesses = wc;
        }
    }

    pub(super) fn refute(&mut self, c: u32, gen: u32, t: EventTime) {
        let Some(cl) = self.claims.get(c as usize) else {
            return;
        };
        if !cl.live || cl.gen != gen || !(cl.awaiting || cl.flags & cond::SQUAT != 0) {
            return;
        }
        let peers: Vec<u32> = cl.witnesses.iter().map(|w| w.peer).collect();
        self.stats.conflicts_refuted += 1;
        self.resolve(c, t, Resolution::Refuted);
        // Reporting what nobody confirms costs trust only where the policy holds such
        // claims: a route few observers carry is not suspect for that alone.
        if self.action(cond::Cond::Unconfirmed) != Action::Propagate {
            for p in peers {
                self.evidence(p, t, Evidence::Refuted);
            }
        }
        let cl = &mut self.claims[c as usize];
        cl.awaiting = false;
        cl.flags = (cl.flags & !cond::SQUAT) | cond::UNCONFIRMED;
        self.reevaluate_claim_routes(c, t, Cause::WindowExpired, None);
    }

    pub(super) fn forget(&mut self, c: u32, gen: u32, since: EventTime) {
        let Some(cl) = self.claims.get(c as usize) else {
            return;
        };
        if !cl.live || cl.gen != gen || !cl.witnesses.is_empty() || cl.gone_since != Some(since) {
            return;
        }
        let (prefix, pid) = (cl.prefix, cl.prefix_id);
        self.stats.claims_forgotten += 1;
        self.claims_version += 1;
        self.unlink(c);
        // Keep the prefix in the trie while another claim of it is established.
        let mut x = self.heads[pid as usize];
        let mut still = false;
        while x != NONE {
            still |= self.claims[x as usize].established.is_some();
            x = self.claims[x as usize].next;
        }
        if !still {
            self.established.remove(&prefix);
        }
    }

    /// A claim lost its last witness.
    pub(super) fn emptied(&mut self, c: u32, t: EventTime) {
        let (established, flags, pid, prefix) = {
            let cl = &self.claims[c as usize];
            (cl.established.is_some(), cl.flags, cl.prefix_id, cl.prefix)
        };
        if established {
            let cl = &mut self.claims[c as usize];
            cl.gone_since = Some(t);
            let gen = cl.gen;
            self.gone.push_back((t, c, gen));
            self.claims_version += 1;
        } else {
            if flags & cond::CONFLICT != 0 || self.claims[c as usize].awaiting {
                self.stats.conflicts_withdrawn += 1;
                self.resolve(c, t, Resolution::Withdrawn);
            }
            self.unlink(c);
        }
        // Squat bookkeeping: the prefix is no longer announced by anyone.
        if self.seen.is_some() {
            let mut x = self.heads[pid as usize];
            let mut announced = false;
            while x != NONE {
                announced |= !self.claims[x as usize].witnesses.is_empty();
                x = self.claims[x as usize].next;
            }
            if !announced {
                if let Some(seen) = self.seen.as_mut() {
                    seen.insert(prefix, t);
                }
            }
        }
    }

    /// Removes a witness; re-judges its claim for the others.
    pub(super) fn detach(&mut self, c: u32, pos: usize, t: EventTime) {
        self.claims[c as usize].witnesses.swap_remove(pos);
        if self.claims[c as usize].witnesses.is_empty() {
            self.emptied(c, t);
        } else {
            self.evaluate_claim(c, t, None);
        }
    }

    // ----- routes and decisions -----
}
