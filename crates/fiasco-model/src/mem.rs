//! Object table, capability spaces, address spaces and physical frames.
//!
//! Map semantics follow `src/kern/map_util.cpp` / `map_util-objs.cpp`:
//! mapping onto an occupied slot or page first removes what was there
//! (recursively), unless it is the same object/frame derived from the sender,
//! in which case rights are upgraded; unmap revokes the given rights in every
//! mapping derived from the named one (and in the named one itself with
//! `L4_FP_ALL_SPACES`), removing an entry when its R right goes; an object
//! is deleted when its last capability goes (`Kobject::destroy`).

use crate::mapdb::{NodeId, Place};
use crate::objects::{CapEntry, Kind, Obj, ObjId, Pte, Task, Thread};
use crate::Model;

pub(crate) const PAGE: u64 = 4096;

/// Result of mapping one item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MapResult {
    Mapped,
    Nothing,
}

impl Model {
    // ---- objects ----------------------------------------------------------

    pub(crate) fn alloc_obj(&mut self, kind: Kind, name: &str) -> ObjId {
        let id = ObjId(self.next_obj);
        self.next_obj += 1;
        let debug_id = self.next_debug_id;
        self.next_debug_id += 1;
        self.objs.insert(id, Obj { debug_id, name: name.to_string(), refs: 0, kind });
        id
    }

    pub(crate) fn task(&self, id: ObjId) -> Option<&Task> {
        match self.objs.get(&id).map(|o| &o.kind) {
            Some(Kind::Task(t)) => Some(t),
            _ => None,
        }
    }

    pub(crate) fn task_mut(&mut self, id: ObjId) -> Option<&mut Task> {
        match self.objs.get_mut(&id).map(|o| &mut o.kind) {
            Some(Kind::Task(t)) => Some(t),
            _ => None,
        }
    }

    pub(crate) fn thread(&self, id: ObjId) -> Option<&Thread> {
        match self.objs.get(&id).map(|o| &o.kind) {
            Some(Kind::Thread(t)) => Some(t),
            _ => None,
        }
    }

    pub(crate) fn thread_mut(&mut self, id: ObjId) -> Option<&mut Thread> {
        match self.objs.get_mut(&id).map(|o| &mut o.kind) {
            Some(Kind::Thread(t)) => Some(t),
            _ => None,
        }
    }

    /// The thread, which the caller knows exists.
    pub(crate) fn th(&mut self, id: ObjId) -> &mut Thread {
        self.thread_mut(id).expect("model: thread object expected")
    }

    pub(crate) fn kind_of(&self, id: ObjId) -> Option<&Kind> {
        self.objs.get(&id).map(|o| &o.kind)
    }

    // ---- capabilities -----------------------------------------------------

    pub(crate) fn cap(&self, task: ObjId, idx: u64) -> Option<CapEntry> {
        self.task(task)?.caps.get(&idx).copied()
    }

    /// Puts `obj` into slot `idx` of `task` as a new root mapping (how the
    /// kernel maps a new object, `map_obj_initially`): what was in the slot
    /// goes first.
    pub(crate) fn cap_insert_root(&mut self, task: ObjId, idx: u64, obj: ObjId, rights: u8, server: bool) -> bool {
        if self.task(task).is_none_or(|t| idx >= t.cap_limit) {
            return false;
        }
        if self.cap(task, idx).is_some() {
            self.cap_remove_tree(task, idx);
        }
        let node = self.mapdb.insert(Place::Cap { task, idx }, None);
        self.put_cap(task, idx, CapEntry { obj, rights, server, node });
        true
    }

    fn put_cap(&mut self, task: ObjId, idx: u64, e: CapEntry) {
        if let Some(t) = self.task_mut(task) {
            t.caps.insert(idx, e);
        }
        if let Some(o) = self.objs.get_mut(&e.obj) {
            o.refs += 1;
        }
    }

    /// Maps the capability in `from`'s slot `src` to `to`'s slot `dst`,
    /// with rights `rights` (masked by the sender's), the server attribute
    /// if `server` and the sender has it; `grant` moves it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn cap_map(
        &mut self,
        from: ObjId,
        src: u64,
        to: ObjId,
        dst: u64,
        rights: u8,
        server: bool,
        grant: bool,
    ) -> MapResult {
        let Some(se) = self.cap(from, src) else { return MapResult::Nothing };
        if rights & 4 == 0 {
            // without R nothing is mapped
            return MapResult::Nothing;
        }
        if self.task(to).is_none_or(|t| dst >= t.cap_limit) {
            return MapResult::Nothing;
        }
        let new_rights = se.rights & rights;
        let new_server = se.server && server;
        if from == to && src == dst {
            return MapResult::Nothing;
        }
        if let Some(re) = self.cap(to, dst) {
            let derived = self.mapdb.descendants(se.node).contains(&re.node);
            if re.obj == se.obj && derived && !grant {
                // attribute upgrade
                if let Some(t) = self.task_mut(to) {
                    let e = t.caps.get_mut(&dst).expect("present");
                    e.rights |= new_rights;
                    e.server |= new_server;
                }
                return MapResult::Nothing;
            }
            self.cap_remove_tree(to, dst);
            // the source may have been removed with it (dst was its ancestor)
            if self.cap(from, src).is_none() {
                return MapResult::Nothing;
            }
        }
        let node = self.mapdb.insert(Place::Cap { task: to, idx: dst }, Some(se.node));
        self.put_cap(to, dst, CapEntry { obj: se.obj, rights: new_rights, server: new_server, node });
        if grant {
            // a grant moves the capability: the sender's entry goes
            self.cap_remove_entry(from, src);
        }
        MapResult::Mapped
    }

    /// Removes one capability entry (not its descendants) and drops the
    /// object's reference.
    pub(crate) fn cap_remove_entry(&mut self, task: ObjId, idx: u64) {
        let Some(e) = self.task_mut(task).and_then(|t| t.caps.remove(&idx)) else { return };
        self.mapdb.remove(e.node);
        self.drop_ref(e.obj);
    }

    /// Removes an entry and everything derived from it.
    pub(crate) fn cap_remove_tree(&mut self, task: ObjId, idx: u64) {
        let Some(e) = self.cap(task, idx) else { return };
        let below = self.mapdb.descendants(e.node);
        for n in below.into_iter().rev() {
            if let Some(Place::Cap { task, idx }) = self.mapdb.place(n) {
                self.cap_remove_entry(task, idx);
            }
        }
        self.cap_remove_entry(task, idx);
    }

    /// Revokes `rights` (W S R D bits) from `task`'s slot `idx` and its
    /// derived mappings (`self_too`: also the entry itself). Removing R
    /// removes the entry. `delete`: delete the object (needs D).
    pub(crate) fn cap_unmap(&mut self, task: ObjId, idx: u64, rights: u8, self_too: bool, delete: bool) {
        let Some(e) = self.cap(task, idx) else { return };
        if delete && e.rights & 8 != 0 {
            self.delete_object(e.obj);
            return;
        }
        let mut targets: Vec<NodeId> = self.mapdb.descendants(e.node);
        if self_too {
            targets.insert(0, e.node);
        }
        // process deepest first so removals do not re-parent pending nodes
        for n in targets.into_iter().rev() {
            let Some(Place::Cap { task, idx }) = self.mapdb.place(n) else { continue };
            if rights & 4 != 0 {
                self.cap_remove_entry(task, idx);
            } else if let Some(t) = self.task_mut(task) {
                if let Some(c) = t.caps.get_mut(&idx) {
                    c.rights &= !rights;
                }
            }
        }
    }

    fn drop_ref(&mut self, obj: ObjId) {
        let gone = match self.objs.get_mut(&obj) {
            Some(o) => {
                o.refs = o.refs.saturating_sub(1);
                o.refs == 0
            }
            None => false,
        };
        if gone {
            self.destroy_object(obj);
        }
    }

    /// Deletes an object: every capability to it goes, then it is destroyed.
    pub(crate) fn delete_object(&mut self, obj: ObjId) {
        let holders: Vec<(ObjId, u64)> = self
            .objs
            .iter()
            .filter_map(|(id, o)| match &o.kind {
                Kind::Task(t) => {
                    Some(t.caps.iter().filter(|(_, e)| e.obj == obj).map(|(i, _)| (*id, *i)).collect::<Vec<_>>())
                }
                _ => None,
            })
            .flatten()
            .collect();
        for (t, i) in holders {
            self.cap_remove_entry(t, i);
        }
        if self.objs.contains_key(&obj) {
            self.destroy_object(obj);
        }
    }

    /// The object lost its last reference: tear it down and wake whoever
    /// waited on it with the error the kernel gives.
    fn destroy_object(&mut self, obj: ObjId) {
        let Some(o) = self.objs.remove(&obj) else { return };
        match o.kind {
            Kind::Thread(t) => {
                self.on_thread_destroyed(obj, &t);
            }
            Kind::Gate(g) => {
                self.on_gate_destroyed(obj, g.bound);
            }
            Kind::Irq(_) | Kind::Semaphore(_) => {
                for l in self.icu_lines.iter_mut() {
                    if *l == Some(obj) {
                        *l = None;
                    }
                }
                self.on_irq_destroyed(obj);
            }
            Kind::Task(t) => {
                // capabilities held by the task go (dropping references)
                let idxs: Vec<u64> = t.caps.keys().copied().collect();
                // re-insert temporarily so the generic removal works
                self.objs.insert(obj, Obj { kind: Kind::Task(t), ..o });
                for i in idxs {
                    self.cap_remove_entry(obj, i);
                }
                let pages: Vec<u64> = self.task(obj).map(|t| t.pages.keys().collect()).unwrap_or_default();
                for vpn in pages {
                    self.page_remove_entry(obj, vpn);
                }
                self.objs.remove(&obj);
                // threads bound to it can no longer run
                let bound: Vec<ObjId> = self
                    .objs
                    .iter()
                    .filter_map(|(id, o)| match &o.kind {
                        Kind::Thread(t) if t.task == Some(obj) => Some(*id),
                        _ => None,
                    })
                    .collect();
                for t in bound {
                    self.kill_thread(t);
                }
            }
            _ => {}
        }
    }

    // ---- memory -----------------------------------------------------------

    /// Physical frame contents (zeros until written).
    pub(crate) fn frame(&mut self, pfn: u64) -> &mut [u8; 4096] {
        self.ram.frame(pfn)
    }

    /// Physical frame `pfn`, for a caller that writes all 4096 bytes of it
    /// (it need not be cleared first).
    pub(crate) fn frame_to_overwrite(&mut self, pfn: u64) -> &mut [u8; 4096] {
        self.ram.frame_to_overwrite(pfn)
    }

    /// Physical frame contents, if ever written (`None` reads as zeros).
    pub(crate) fn frame_ro(&self, pfn: u64) -> Option<&[u8; 4096]> {
        self.ram.frame_ro(pfn)
    }

    pub(crate) fn is_ram(&self, phys: u64) -> bool {
        let (b, s) = self.cfg.ram;
        phys >= b && phys < b + s
    }

    /// Puts physical frame `pfn` at `vpn` in `task` as a root mapping (sigma0's own).
    pub(crate) fn page_insert_root(&mut self, task: ObjId, vpn: u64, pfn: u64, rights: u8) -> NodeId {
        if self.task(task).is_some_and(|t| t.pages.contains_key(&vpn)) {
            self.page_remove_tree(task, vpn);
        }
        let node = self.mapdb.insert(Place::Page { task, vpn }, None);
        if let Some(t) = self.task_mut(task) {
            t.pages.insert(vpn, Pte { frame: pfn, rights, referenced: false, dirty: false, node, derived: false });
        }
        node
    }

    /// Maps `from`'s page `svpn` to `to`'s page `dvpn` with `rights` masked
    /// by the sender's.
    pub(crate) fn page_map(
        &mut self,
        from: ObjId,
        svpn: u64,
        to: ObjId,
        dvpn: u64,
        rights: u8,
        grant: bool,
    ) -> MapResult {
        let Some(se) = self.task(from).and_then(|t| t.pages.get(&svpn)).copied() else { return MapResult::Nothing };
        let r = se.rights & rights;
        if r == 0 {
            return MapResult::Nothing;
        }
        if from == to && svpn == dvpn {
            return MapResult::Nothing;
        }
        if let Some(re) = self.task(to).and_then(|t| t.pages.get(&dvpn)).copied() {
            let derived = self.mapdb.descendants(se.node).contains(&re.node);
            if re.frame == se.frame && derived && !grant {
                if let Some(t) = self.task_mut(to) {
                    t.pages.get_mut(&dvpn).expect("present").rights |= r;
                }
                return MapResult::Nothing;
            }
            self.page_remove_tree(to, dvpn);
            if self.task(from).is_none_or(|t| !t.pages.contains_key(&svpn)) {
                return MapResult::Nothing;
            }
        }
        let node = self.mapdb.insert(Place::Page { task: to, vpn: dvpn }, Some(se.node));
        if let Some(e) = self.task_mut(from).and_then(|t| t.pages.get_mut(&svpn)) {
            e.derived = true;
        }
        if let Some(t) = self.task_mut(to) {
            t.pages.insert(
                dvpn,
                Pte { frame: se.frame, rights: r, referenced: false, dirty: false, node, derived: false },
            );
        }
        if grant {
            self.page_remove_entry(from, svpn);
        }
        MapResult::Mapped
    }

    pub(crate) fn page_remove_entry(&mut self, task: ObjId, vpn: u64) {
        if let Some(e) = self.task_mut(task).and_then(|t| t.pages.remove(&vpn)) {
            self.mapdb.remove(e.node);
        }
    }

    pub(crate) fn page_remove_tree(&mut self, task: ObjId, vpn: u64) {
        let Some(e) = self.task(task).and_then(|t| t.pages.get(&vpn)).copied() else { return };
        for n in self.mapdb.descendants(e.node).into_iter().rev() {
            if let Some(Place::Page { task, vpn }) = self.mapdb.place(n) {
                self.page_remove_entry(task, vpn);
            }
        }
        self.page_remove_entry(task, vpn);
    }

    /// Revokes `rights` (X W R) from `task`'s page `vpn` and derived
    /// mappings. Returns the accessed/dirty flags of the entries touched
    /// (OR over them). The flags are reported but not cleared: on the
    /// x86-64 kernel they stayed set across queries (issue notes, probe 3).
    pub(crate) fn page_unmap(&mut self, task: ObjId, vpn: u64, rights: u8, self_too: bool) -> (bool, bool) {
        let Some(e) = self.task(task).and_then(|t| t.pages.get(&vpn)).copied() else { return (false, false) };
        let mut targets = self.mapdb.descendants(e.node);
        if self_too {
            targets.push(e.node);
            // the named entry last: processed after its descendants
            targets.rotate_right(1);
        }
        let (mut r, mut d) = (false, false);
        for n in targets.into_iter().rev() {
            let Some(Place::Page { task, vpn }) = self.mapdb.place(n) else { continue };
            let Some(p) = self.task(task).and_then(|t| t.pages.get(&vpn)).copied() else { continue };
            r |= p.referenced;
            d |= p.dirty;
            if rights & 4 != 0 {
                self.page_remove_entry(task, vpn);
            } else if let Some(t) = self.task_mut(task) {
                t.pages.get_mut(&vpn).expect("present").rights &= !rights;
            }
        }
        (r, d)
    }
}
