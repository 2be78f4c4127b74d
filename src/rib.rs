//! The Adj-RIB-In: per peer, the routes it currently announces. AS paths are interned
//! (one copy per distinct path, reference-counted), so a stored route costs a map entry of
//! prefix, ADD-PATH id, path id and verdict slot.

use crate::model::{AsPath, PeerIdx};
use ipnet::IpNet;
use rustc_hash::FxHashMap;

/// Interned path handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PathId(pub u32);

/// One stored route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RibRoute {
    pub path: PathId,
    /// The verdict slot it was judged with ([`crate::rpki::RovState::slot`]).
    pub slot: u8,
}

#[derive(Default)]
struct PathTable {
    ids: FxHashMap<AsPath, u32>,
    paths: Vec<(AsPath, u32)>,
    free: Vec<u32>,
}

impl PathTable {
    fn acquire(&mut self, path: &AsPath) -> PathId {
        if let Some(&id) = self.ids.get(path) {
            self.paths[id as usize].1 += 1;
            return PathId(id);
        }
        let id = match self.free.pop() {
            Some(id) => {
                self.paths[id as usize] = (path.clone(), 1);
                id
            }
            None => {
                self.paths.push((path.clone(), 1));
                (self.paths.len() - 1) as u32
            }
        };
        self.ids.insert(path.clone(), id);
        PathId(id)
    }

    fn release(&mut self, id: PathId) {
        let slot = &mut self.paths[id.0 as usize];
        slot.1 -= 1;
        if slot.1 == 0 {
            let path = std::mem::take(&mut slot.0);
            self.ids.remove(&path);
            self.free.push(id.0);
        }
    }
}

/// Routes per peer.
#[derive(Default)]
pub struct AdjRibIn {
    peers: Vec<FxHashMap<(IpNet, u32), RibRoute>>,
    paths: PathTable,
    routes: usize,
    peak_routes: usize,
}

impl AdjRibIn {
    fn table(&mut self, peer: PeerIdx) -> &mut FxHashMap<(IpNet, u32), RibRoute> {
        let i = peer.0 as usize;
        if self.peers.len() <= i {
            self.peers.resize_with(i + 1, Default::default);
        }
        &mut self.peers[i]
    }

    /// Stores (or replaces) a route; returns the route it replaced.
    pub fn insert(
        &mut self,
        peer: PeerIdx,
        prefix: IpNet,
        path_id: Option<u32>,
        path: &AsPath,
        slot: u8,
    ) -> Option<RibRoute> {
        let id = self.paths.acquire(path);
        let old = self
            .table(peer)
            .insert((prefix, path_id.unwrap_or(0)), RibRoute { path: id, slot });
        match old {
            Some(old) => self.paths.release(old.path),
            None => {
                self.routes += 1;
                self.peak_routes = self.peak_routes.max(self.routes);
            }
        }
        old
    }

    /// Removes a route; returns it if it was there.
    pub fn remove(
        &mut self,
        peer: PeerIdx,
        prefix: IpNet,
        path_id: Option<u32>,
    ) -> Option<RibRoute> {
        let old = self.table(peer).remove(&(prefix, path_id.unwrap_or(0)))?;
        self.paths.release(old.path);
        self.routes -= 1;
        Some(old)
    }

    /// Drops every route of a peer (session down); returns the routes dropped.
    pub fn clear_peer(&mut self, peer: PeerIdx) -> Vec<RibRoute> {
        let table = std::mem::take(self.table(peer));
        let dropped: Vec<RibRoute> = table.into_values().collect();
        for r in &dropped {
            self.paths.release(r.path);
        }
        self.routes -= dropped.len();
        dropped
    }

    pub fn path(&self, id: PathId) -> &AsPath {
        &self.paths.paths[id.0 as usize].0
    }

    pub fn get(&self, peer: PeerIdx, prefix: IpNet, path_id: Option<u32>) -> Option<RibRoute> {
        self.peers
            .get(peer.0 as usize)?
            .get(&(prefix, path_id.unwrap_or(0)))
            .copied()
    }

    /// Routes stored now.
    pub fn len(&self) -> usize {
        self.routes
    }

    pub fn is_empty(&self) -> bool {
        self.routes == 0
    }

    /// Most routes stored at once.
    pub fn peak_len(&self) -> usize {
        self.peak_routes
    }

    /// Distinct AS paths stored now.
    pub fn distinct_paths(&self) -> usize {
        self.paths.ids.len()
    }

    /// Iterates over (peer, prefix, route) of every stored route.
    pub fn iter(&self) -> impl Iterator<Item = (PeerIdx, IpNet, RibRoute)> + '_ {
        self.peers
            .iter()
            .enumerate()
            .flat_map(|(i, t)| t.iter().map(move |((p, _), r)| (PeerIdx(i as u32), *p, *r)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_replace_withdraw_and_peer_down() {
        let mut rib = AdjRibIn::default();
        let a = AsPath::sequence(&[1, 2, 3]);
        let b = AsPath::sequence(&[1, 4]);
        let p: IpNet = "10.0.0.0/8".parse().unwrap();
        let q: IpNet = "10.1.0.0/16".parse().unwrap();
        assert!(rib.insert(PeerIdx(0), p, None, &a, 0).is_none());
        assert!(rib.insert(PeerIdx(1), p, None, &a, 0).is_none());
        assert_eq!(rib.distinct_paths(), 1, "one copy of a shared path");
        assert!(
            rib.insert(PeerIdx(0), p, None, &b, 3).is_some(),
            "implicit withdraw"
        );
        assert_eq!(rib.len(), 2);
        assert_eq!(rib.distinct_paths(), 2);
        assert_eq!(rib.path(rib.get(PeerIdx(0), p, None).unwrap().path), &b);
        rib.insert(PeerIdx(0), q, Some(7), &a, 0);
        rib.insert(PeerIdx(0), q, Some(8), &b, 0);
        assert_eq!(rib.len(), 4, "ADD-PATH ids are distinct routes");
        assert!(rib.remove(PeerIdx(0), q, Some(7)).is_some());
        assert!(rib.remove(PeerIdx(0), q, Some(7)).is_none());
        assert_eq!(rib.clear_peer(PeerIdx(0)).len(), 2);
        assert_eq!(rib.len(), 1);
        assert_eq!(rib.distinct_paths(), 1, "released paths are freed");
        assert_eq!(rib.peak_len(), 4);
    }
}
