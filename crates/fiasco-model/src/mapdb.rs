//! The mapping database: which mapping was derived from which, so that an
//! unmap revokes rights in every task that received the mapping (directly or
//! further on), as the kernel's mapdb does (`src/kern/mapdb.cpp`,
//! `map_util.cpp`).

use std::collections::BTreeMap;

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

#[derive(Default)]
pub(crate) struct MapDb {
    nodes: BTreeMap<NodeId, Node>,
    next: u64,
}

impl MapDb {
    pub fn insert(&mut self, place: Place, parent: Option<NodeId>) -> NodeId {
        self.next += 1;
        let id = NodeId(self.next);
        self.nodes.insert(id, Node { place, parent, children: Vec::new() });
        if let Some(p) = parent {
            if let Some(pn) = self.nodes.get_mut(&p) {
                pn.children.push(id);
            }
        }
        id
    }

    /// All nodes below `id` (not `id` itself), depth first, in insertion order.
    pub fn descendants(&self, id: NodeId) -> Vec<NodeId> {
        let mut out = Vec::new();
        let mut stack: Vec<NodeId> =
            self.nodes.get(&id).map(|n| n.children.iter().rev().copied().collect()).unwrap_or_default();
        while let Some(n) = stack.pop() {
            out.push(n);
            if let Some(node) = self.nodes.get(&n) {
                stack.extend(node.children.iter().rev().copied());
            }
        }
        out
    }

    pub fn place(&self, id: NodeId) -> Option<Place> {
        self.nodes.get(&id).map(|n| n.place)
    }

    /// Removes a node; its children move up to its parent (used when the
    /// entry itself goes but its descendants are kept), or are removed with
    /// it by the caller.
    pub fn remove(&mut self, id: NodeId) {
        if let Some(n) = self.nodes.remove(&id) {
            if let Some(p) = n.parent {
                if let Some(pn) = self.nodes.get_mut(&p) {
                    pn.children.retain(|&c| c != id);
                    pn.children.extend(n.children.iter().copied());
                }
            }
            for c in n.children {
                if let Some(cn) = self.nodes.get_mut(&c) {
                    cn.parent = n.parent;
                }
            }
        }
    }
}
