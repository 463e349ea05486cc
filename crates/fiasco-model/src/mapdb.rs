//! The mapping database: which mapping was derived from which, so that an
//! unmap revokes rights in every task that received the mapping (directly or
//! further on), as the kernel's mapdb does (`src/kern/mapdb.cpp`,
//! `map_util.cpp`).

use crate::objects::ObjId;

/// A node of the derivation tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct NodeId(pub u64);

/// What a node stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Place {
    /// A capability slot of a task.
    Cap { task: ObjId, idx: u64 },
    /// A page of a task (virtual page number).
    Page { task: ObjId, vpn: u64 },
}

/// A node: where it stands, and its place in the tree. The children of a
/// node form a list threaded through them (first/last child, next/prev
/// sibling), in the order they were derived, so adding or removing a
/// mapping allocates nothing. The links are slab indices (a linked node is
/// always present), [`NIL`] for none: a node fits in one cache line.
#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub place: Place,
    pub parent: Option<NodeId>,
    first: u32,
    last: u32,
    next: u32,
    prev: u32,
}

/// No node (a link's end).
const NIL: u32 = u32::MAX;

fn link(i: u32) -> Option<u32> {
    (i != NIL).then_some(i)
}

/// Nodes live in a slab indexed by the low 32 bits of their id; the high
/// bits are a generation, so an id kept after its node went (a stale
/// page-table entry, say) finds nothing instead of a newer node in the
/// same place. Looked up on every page of every unmap, so O(1) and
/// locality matter.
#[derive(Default)]
pub(crate) struct MapDb {
    slots: Vec<Slot>,
    free: Vec<u32>,
}

#[derive(Default)]
struct Slot {
    generation: u32,
    node: Option<Node>,
}

impl MapDb {
    fn get(&self, id: &NodeId) -> Option<&Node> {
        let slot = self.slots.get((id.0 & 0xffff_ffff) as usize)?;
        if u64::from(slot.generation) != id.0 >> 32 {
            return None;
        }
        slot.node.as_ref()
    }

    /// The node at slab index `i`, which a link names (so it is present).
    fn at(&self, i: u32) -> &Node {
        self.slots[i as usize].node.as_ref().expect("mapdb: a linked node is present")
    }

    fn at_mut(&mut self, i: u32) -> &mut Node {
        self.slots[i as usize].node.as_mut().expect("mapdb: a linked node is present")
    }

    /// The id of the node at slab index `i`.
    fn id_at(&self, i: u32) -> NodeId {
        NodeId((u64::from(self.slots[i as usize].generation) << 32) | u64::from(i))
    }

    /// The slab index of a present node.
    fn index(&self, id: &NodeId) -> Option<u32> {
        self.get(id).map(|_| (id.0 & 0xffff_ffff) as u32)
    }

    fn take(&mut self, id: &NodeId) -> Option<Node> {
        let index = (id.0 & 0xffff_ffff) as u32;
        let slot = self.slots.get_mut(index as usize)?;
        if u64::from(slot.generation) != id.0 >> 32 {
            return None;
        }
        let node = slot.node.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(index);
        Some(node)
    }

    pub fn insert(&mut self, place: Place, parent: Option<NodeId>) -> NodeId {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot::default());
                (self.slots.len() - 1) as u32
            }
        };
        let id = self.id_at(index);
        // the last child of its parent (a parent that is gone takes none)
        let mut prev = NIL;
        if let Some(p) = parent.and_then(|p| self.index(&p)) {
            prev = std::mem::replace(&mut self.at_mut(p).last, index);
            match link(prev) {
                Some(l) => self.at_mut(l).next = index,
                None => self.at_mut(p).first = index,
            }
        }
        self.slots[index as usize].node = Some(Node { place, parent, first: NIL, last: NIL, next: NIL, prev });
        id
    }

    /// All nodes below `id` (not `id` itself), depth first, in insertion order.
    pub fn descendants(&self, id: NodeId) -> Vec<NodeId> {
        let Some(top) = self.index(&id) else { return Vec::new() };
        let mut out = Vec::new();
        let mut at = self.at(top).first;
        while let Some(i) = link(at) {
            out.push(self.id_at(i));
            let n = self.at(i);
            if let Some(c) = link(n.first) {
                at = c;
                continue;
            }
            // no children: the next sibling of the nearest node (this one
            // or one above it, below `id`) that has one
            let mut up = i;
            at = loop {
                let u = self.at(up);
                if u.next != NIL {
                    break u.next;
                }
                match u.parent.and_then(|p| self.index(&p)) {
                    Some(p) if p != top => up = p,
                    _ => break NIL,
                }
            };
        }
        out
    }

    pub fn place(&self, id: NodeId) -> Option<Place> {
        self.get(&id).map(|n| n.place)
    }

    /// Removes a node; its children move up to its parent, after the
    /// parent's other children (used when the entry itself goes but its
    /// descendants are kept), or are removed with it by the caller.
    pub fn remove(&mut self, id: NodeId) {
        let Some(n) = self.take(&id) else { return };
        let parent = n.parent.and_then(|p| self.index(&p));
        // out of its parent's list
        if let Some(p) = parent {
            match link(n.prev) {
                Some(pr) => self.at_mut(pr).next = n.next,
                None => self.at_mut(p).first = n.next,
            }
            match link(n.next) {
                Some(nx) => self.at_mut(nx).prev = n.prev,
                None => self.at_mut(p).last = n.prev,
            }
        }
        // its children: the parent's last ones (or roots)
        let mut c = n.first;
        while let Some(x) = link(c) {
            let cn = self.at_mut(x);
            cn.parent = n.parent;
            c = cn.next;
            if parent.is_none() {
                cn.next = NIL;
                cn.prev = NIL;
            }
        }
        if let (Some(p), Some(first), Some(last)) = (parent, link(n.first), link(n.last)) {
            let before = std::mem::replace(&mut self.at_mut(p).last, last);
            self.at_mut(first).prev = before;
            match link(before) {
                Some(b) => self.at_mut(b).next = first,
                None => self.at_mut(p).first = first,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// The tree as it was kept before (a vector of children per node),
    /// to check the threaded lists against.
    #[derive(Default)]
    struct Plain {
        nodes: BTreeMap<u64, (Option<u64>, Vec<u64>)>,
    }

    impl Plain {
        fn insert(&mut self, id: u64, parent: Option<u64>) {
            self.nodes.insert(id, (parent, Vec::new()));
            if let Some(p) = parent {
                if let Some(pn) = self.nodes.get_mut(&p) {
                    pn.1.push(id);
                }
            }
        }
        fn descendants(&self, id: u64) -> Vec<u64> {
            let mut out = Vec::new();
            let mut stack: Vec<u64> =
                self.nodes.get(&id).map(|n| n.1.iter().rev().copied().collect()).unwrap_or_default();
            while let Some(n) = stack.pop() {
                out.push(n);
                if let Some(node) = self.nodes.get(&n) {
                    stack.extend(node.1.iter().rev().copied());
                }
            }
            out
        }
        fn remove(&mut self, id: u64) {
            if let Some((parent, children)) = self.nodes.remove(&id) {
                if let Some(p) = parent {
                    if let Some(pn) = self.nodes.get_mut(&p) {
                        pn.1.retain(|&c| c != id);
                        pn.1.extend(children.iter().copied());
                    }
                }
                for c in children {
                    if let Some(cn) = self.nodes.get_mut(&c) {
                        cn.0 = parent;
                    }
                }
            }
        }
    }

    #[test]
    fn agrees_with_a_vector_of_children_per_node() {
        let mut db = MapDb::default();
        let mut plain = Plain::default();
        let mut ids: Vec<NodeId> = Vec::new();
        let key = |id: NodeId| id.0;
        let mut x = 0x853c_49e6_748f_ea9bu64;
        for step in 0..6000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let pick = |n: usize| (x >> 20) as usize % n.max(1);
            if ids.is_empty() || x % 5 < 3 {
                // a root now and then, else a mapping derived from a live node
                let parent = if ids.is_empty() || x.is_multiple_of(7) { None } else { Some(ids[pick(ids.len())]) };
                let id = db.insert(Place::Page { task: ObjId(1), vpn: step }, parent);
                plain.insert(key(id), parent.map(key));
                ids.push(id);
            } else {
                let id = ids.swap_remove(pick(ids.len()));
                db.remove(id);
                plain.remove(key(id));
                // a stale id finds nothing
                assert_eq!(db.place(id), None);
                assert!(db.descendants(id).is_empty());
            }
            for &id in ids.iter().step_by(1 + ids.len() / 16) {
                assert_eq!(db.descendants(id).into_iter().map(key).collect::<Vec<_>>(), plain.descendants(key(id)));
                assert_eq!(db.get(&id).and_then(|n| n.parent).map(key), plain.nodes[&key(id)].0);
            }
        }
    }
}
