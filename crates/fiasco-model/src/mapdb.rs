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

#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub place: Place,
    pub parent: Option<NodeId>,
    pub children: Vec<NodeId>,
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

    fn get_mut(&mut self, id: &NodeId) -> Option<&mut Node> {
        let slot = self.slots.get_mut((id.0 & 0xffff_ffff) as usize)?;
        if u64::from(slot.generation) != id.0 >> 32 {
            return None;
        }
        slot.node.as_mut()
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
        let node = Node { place, parent, children: Vec::new() };
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot::default());
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.node = Some(node);
        let id = NodeId((u64::from(slot.generation) << 32) | u64::from(index));
        if let Some(p) = parent {
            if let Some(pn) = self.get_mut(&p) {
                pn.children.push(id);
            }
        }
        id
    }

    /// All nodes below `id` (not `id` itself), depth first, in insertion order.
    pub fn descendants(&self, id: NodeId) -> Vec<NodeId> {
        let children = self.get(&id).map(|n| n.children.as_slice()).unwrap_or_default();
        // the common case, one mapping with no further ones: no walk
        if let [only] = children {
            if self.get(only).is_none_or(|n| n.children.is_empty()) {
                return vec![*only];
            }
        }
        let mut out = Vec::new();
        let mut stack: Vec<NodeId> = children.iter().rev().copied().collect();
        while let Some(n) = stack.pop() {
            out.push(n);
            if let Some(node) = self.get(&n) {
                stack.extend(node.children.iter().rev().copied());
            }
        }
        out
    }

    pub fn place(&self, id: NodeId) -> Option<Place> {
        self.get(&id).map(|n| n.place)
    }

    /// Removes a node; its children move up to its parent (used when the
    /// entry itself goes but its descendants are kept), or are removed with
    /// it by the caller.
    pub fn remove(&mut self, id: NodeId) {
        if let Some(n) = self.take(&id) {
            if let Some(p) = n.parent {
                if let Some(pn) = self.get_mut(&p) {
                    pn.children.retain(|&c| c != id);
                    pn.children.extend(n.children.iter().copied());
                }
            }
            for c in n.children {
                if let Some(cn) = self.get_mut(&c) {
                    cn.parent = n.parent;
                }
            }
        }
    }
}
