//! What the judge shows (held routes, claims, trust) and what it saves and restores.

use super::*;

impl<'a> Judge<'a> {
    /// The slots of the live claims, from the live-claim bitset.
    pub(super) fn live_claims(&self) -> impl Iterator<Item = u32> + '_ {
        self.live.iter().enumerate().flat_map(|(word, bits)| {
            let mut b = *bits;
            std::iter::from_fn(move || {
                (b != 0).then(|| {
                    let c = (word * 64) as u32 + b.trailing_zeros();
                    b &= b - 1;
                    c
                })
            })
        })
    }

    /// Every route held now (quarantined or rejected), with the rules holding it.
    pub fn held(&self) -> Vec<HeldRoute> {
        let mut out = Vec::new();
        for c in self.live_claims() {
            let cl = &self.claims[c as usize];
            for (wi, w) in cl.witnesses.iter().enumerate() {
                if !w.outcome.is_held() {
                    continue;
                }
                let p = &self.peers[w.peer as usize].peer;
                out.push(HeldRoute {
                    id: claim_id(&cl.prefix, cl.origin),
                    prefix: cl.prefix,
                    origin: cl.origin,
                    peer: p.addr,
                    peer_asn: p.asn,
                    path_id: (w.path_id != 0).then_some(w.path_id),
                    outcome: w.outcome,
                    since: w.held_since,
                    rules: self
                        .reasons(c, wi, self.now, None)
                        .iter()
                        .map(|r| r.rule.to_string())
                        .collect(),
                });
            }
        }
        out
    }

    /// The outcome of one route now (`None`: the judge has no such route).
    pub fn route_outcome(
        &self,
        peer: PeerIdx,
        prefix_id: PrefixId,
        path_id: Option<u32>,
    ) -> Option<Outcome> {
        let (c, pos) = self.locate(prefix_id.0, peer.0, path_id.unwrap_or(0))?;
        Some(self.claims[c as usize].witnesses[pos].outcome)
    }

    /// The VRP set this judge decides against (for [`Decision::list_vrps`]).
    pub fn vrp_index(&self) -> RpkiRef<'a, VrpIndex> {
        self.index.clone()
    }

    /// Routes held now (quarantined or rejected).
    pub fn held_routes(&self) -> usize {
        self.peers.iter().map(|p| p.held as usize).sum()
    }

    /// Changes whenever the established claims do (see [`Self::save`]).
    pub fn claims_version(&self) -> u64 {
        self.claims_version
    }

    /// What a restart needs (see [`Saved`]); the established claims only `with_claims`
    /// (they are many; [`Self::claims_version`] says when they changed).
    pub fn save(&self, with_claims: bool) -> Saved {
        let mut trust: Vec<SavedTrust> = self
            .restored_trust
            .iter()
            .map(|((feed, addr, asn), score)| SavedTrust {
                feed: feed.clone(),
                addr: *addr,
                asn: *asn,
                score: *score,
            })
            .collect();
        for p in &self.peers {
            if p.trust != TrustScore::default() && &*p.peer.feed != UNKNOWN_FEED {
                trust.push(SavedTrust {
                    feed: p.peer.feed.clone(),
                    addr: p.peer.addr,
                    asn: p.peer.asn,
                    score: p.trust,
                });
            }
        }
        let mut operators: Vec<SavedOperator> = self.restored_ops.values().cloned().collect();
        for (c, (action, note)) in &self.operators {
            let cl = &self.claims[*c as usize];
            operators.push(SavedOperator {
                prefix: cl.prefix,
                origin: cl.origin,
                action: *action,
                note: note.clone(),
            });
        }
        let claims = with_claims.then(|| {
            self.live_claims()
                .filter_map(|c| {
                    let cl = &self.claims[c as usize];
                    Some(SavedClaim {
                        prefix: cl.prefix,
                        origin: cl.origin,
                        established: cl.established?,
                        gone_since: cl.gone_since,
                    })
                })
                .collect()
        });
        Saved {
            started: self.started,
            now: (self.now.0 != i64::MIN).then_some(self.now),
            seq: self.seq,
            trust,
            claims,
            operators,
        }
    }

    /// Takes up where a saved judge left off, before any event: its clock, numbering,
    /// the peers' trust (given to each peer when it registers), its established claims
    /// and the operators' overrides. `at` is when the restored claims' routes may start
    /// coming back: a claim that was announced at the save and is not announced again
    /// is forgotten `conflicts.memory` after `at` (one already gone at the save keeps its
    /// own time). `intern` gives a prefix its id.
    pub fn restore(
        &mut self,
        saved: Saved,
        at: EventTime,
        mut intern: impl FnMut(&IpNet) -> PrefixId,
    ) {
        self.started = saved.started.or(self.started);
        if let Some(n) = saved.now {
            self.now = self.now.max(n);
        }
        self.seq = self.seq.max(saved.seq);
        for t in saved.trust {
            self.restored_trust.insert((t.feed, t.addr, t.asn), t.score);
        }
        let mut claims = saved.claims.unwrap_or_default();
        claims.sort_by_key(|c| c.gone_since.unwrap_or(at).min(at));
        for sc in claims {
            let pid = intern(&sc.prefix).0;
            if self.find_claim(pid, sc.origin).is_some() {
                continue;
            }
            let c = self.add_claim(sc.prefix, pid, sc.origin, RovState::NotFound, at);
            let gone = sc.gone_since.unwrap_or(at).min(at);
            let cl = &mut self.claims[c as usize];
            cl.first_seen = sc.established;
            cl.established = Some(sc.established);
            cl.gone_since = Some(gone);
            let gen = cl.gen;
            self.gone.push_back((gone, c, gen));
            self.established.insert(sc.prefix, pid);
        }
        self.claims_version += 1;
        for op in saved.operators {
            let pid = intern(&op.prefix).0;
            match self.find_claim(pid, op.origin) {
                Some(c) => {
                    self.operators.insert(c, (op.action, op.note));
                }
                None => {
                    self.restored_ops.insert((pid, op.origin), op);
                }
            }
        }
    }

    /// Registers (or renames) a peer.
    pub fn peer(&mut self, idx: PeerIdx, peer: &Peer) {
        let i = idx.0 as usize;
        // Peers not registered yet (an index seen out of order) are unknown, not this one.
        while self.peers.len() <= i {
            self.peers.push(PeerState {
                peer: unknown_peer(),
                role: self.policy.role_of(Asn::ZERO),
                trust: TrustScore::default(),
                held: 0,
                burst_start: i64::MIN,
                burst: 0,
                transfer: false,
                burst_suspects: SmallVec::new(),
                low: false,
                domain: 0,
            });
        }
        self.peers[i].peer = peer.clone();
        self.peers[i].domain = if peer.bmp {
            let next = self.domains.len() as u32 + 1;
            *self.domains.entry(peer.feed.clone()).or_insert(next)
        } else {
            0
        };
        self.peers[i].role = self.policy.role_of(peer.asn);
        if !self.restored_trust.is_empty() {
            let key = (peer.feed.clone(), peer.addr, peer.asn);
            if let Some(t) = self.restored_trust.remove(&key) {
                self.peers[i].trust = t;
            }
        }
    }

    pub(super) fn ensure_peer(&mut self, p: u32) {
        if self.peers.len() <= p as usize {
            self.peer(PeerIdx(p), &unknown_peer());
        }
    }

    /// Every peer's trust at `now`.
    pub fn trust_table(&self, now: EventTime) -> Vec<PeerTrust> {
        let tp = &self.policy.trust;
        self.peers
            .iter()
            .map(|p| {
                let score = p.trust.score(tp, now);
                let (good, bad) = p.trust.evidence(tp, now);
                PeerTrust {
                    peer: p.peer.clone(),
                    score,
                    below_floor: score < tp.floor,
                    good,
                    bad,
                    counts: p.trust.counts,
                    routes_held: p.held,
                }
            })
            .collect()
    }

    /// Every claim on a prefix (by its id), with its witnesses as of the judge's time.
    pub fn claims_of(&self, prefix_id: PrefixId) -> Vec<ClaimView> {
        let mut out = Vec::new();
        let mut x = self
            .heads
            .get(prefix_id.0 as usize)
            .copied()
            .unwrap_or(NONE);
        while x != NONE {
            let cl = &self.claims[x as usize];
            out.push(ClaimView {
                prefix: cl.prefix,
                origin: cl.origin,
                first_seen: cl.first_seen,
                established: cl.established,
                gone_since: cl.gone_since,
                rpki: cl.rov.name(),
                conditions: (0..cond::COUNT)
                    .filter(|i| cl.flags & (1 << i) != 0)
                    .map(|i| cond::Cond::ALL[i].rule())
                    .collect(),
                witnesses: self.witness_count(x, self.now),
            });
            x = cl.next;
        }
        out
    }
}
