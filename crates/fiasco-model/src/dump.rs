//! Inspection: capability tables in the shape of the kernel debugger's
//! object-space listing (JDB `s`, select a task, `o`), and the kernel-entry
//! trace.
//!
//! JDB prints four slots per line, each as the object's debug id (5 hex
//! digits), its rights (`D`, `S`, `W` or `-`) and its type; for example (a
//! real rtcr root task on x86_64):
//!
//! ```text
//! 000000:       --        00009DSW Task    00000DSW Factory 0000bDSW Thread
//! 000004:0000aDSW Gate    00005DSW Vlog    00002DSW Icu/Pfc 00003DSW Sched
//! ```
//!
//! [`Model::jdb_objspace`] prints the same layout, so a model dump and a
//! kernel dump can be compared side by side; [`Model::cap_table`] gives the
//! rows as data, with what JDB shows on the object's own page (gate and IRQ
//! labels, bound threads).

use std::fmt::Write;

use crate::objects::{Kind, ObjId, ObjKindName};
use crate::Model;

/// One occupied capability slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapRow {
    /// Slot index.
    pub idx: u64,
    /// The object (model identity; stable within one model).
    pub obj: ObjId,
    /// Debug id (what JDB prints; differs between boots and after restore).
    pub debug_id: u64,
    /// Object type.
    pub kind: ObjKindName,
    /// Rights: W 1, S 2, R 4, D 8.
    pub rights: u8,
    /// Object-specific right 1 (gates: the server interface).
    pub server: bool,
    /// Gate or IRQ label (bound label), if any.
    pub label: Option<u64>,
    /// Debug id of the thread a gate/IRQ is bound to.
    pub bound_thread: Option<u64>,
    /// The object's name (debugger op 0x100).
    pub name: String,
}

impl CapRow {
    /// Rights as JDB prints them: `DSW` with `-` for a missing right.
    pub fn rights_str(&self) -> String {
        let r = self.rights;
        format!(
            "{}{}{}",
            if r & 8 != 0 { 'D' } else { '-' },
            if r & 2 != 0 { 'S' } else { '-' },
            if r & 1 != 0 { 'W' } else { '-' }
        )
    }
}

/// One kernel entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceEntry {
    /// Program steps run before it.
    pub step: u64,
    /// Kernel clock.
    pub clock_us: u64,
    /// Debug id of the entering thread.
    pub thread: u64,
    /// Destination word.
    pub dest: u64,
    /// Tag.
    pub tag: u64,
    /// Label register.
    pub label: u64,
}

impl Model {
    /// The occupied slots of `task`, in slot order.
    pub fn cap_table(&self, task: ObjId) -> Vec<CapRow> {
        let Some(t) = self.task(task) else { return Vec::new() };
        t.caps
            .iter()
            .map(|(&idx, e)| {
                let o = self.objs.get(&e.obj);
                let (label, bound) = match o.map(|o| &o.kind) {
                    Some(Kind::Gate(g)) => (Some(g.label), g.bound),
                    Some(Kind::Irq(i)) => (i.bound.map(|_| i.label), i.bound),
                    _ => (None, None),
                };
                CapRow {
                    idx,
                    obj: e.obj,
                    debug_id: o.map(|o| o.debug_id).unwrap_or(0),
                    kind: o.map(|o| o.kind.name()).unwrap_or(ObjKindName::Task),
                    rights: e.rights,
                    server: e.server,
                    label,
                    bound_thread: bound.and_then(|b| self.objs.get(&b)).map(|b| b.debug_id),
                    name: o.map(|o| o.name.clone()).unwrap_or_default(),
                }
            })
            .collect()
    }

    /// The object space of `task` as JDB's `o` listing prints it, up to the
    /// highest occupied slot.
    pub fn jdb_objspace(&self, task: ObjId) -> String {
        let rows = self.cap_table(task);
        let last = rows.last().map(|r| r.idx).unwrap_or(0);
        let mut out = String::new();
        let mut i = 0;
        while i <= last {
            let _ = write!(out, "{i:06x}:");
            for s in i..i + 4 {
                match rows.iter().find(|r| r.idx == s) {
                    Some(r) => {
                        let _ = write!(out, "{:05x}{} {:<7} ", r.debug_id, r.rights_str(), r.kind.jdb_name());
                    }
                    None => out.push_str("       --        "),
                }
            }
            out.truncate(out.trim_end().len());
            out.push('\n');
            i += 4;
        }
        out
    }

    /// A detailed listing: slot, type, rights, and labels/bindings/names.
    pub fn cap_listing(&self, task: ObjId) -> String {
        let mut out = String::new();
        for r in self.cap_table(task) {
            let _ = write!(out, "{:#06x} {:<7} {}", r.idx, r.kind.jdb_name(), r.rights_str());
            if r.server {
                out.push_str(" srv");
            }
            if let Some(l) = r.label {
                let _ = write!(out, " label={l:#x}");
            }
            if let Some(b) = r.bound_thread {
                let _ = write!(out, " thread={b:#x}");
            }
            if !r.name.is_empty() {
                let _ = write!(out, " name={}", r.name);
            }
            out.push('\n');
        }
        out
    }

    /// The task a thread is bound to.
    pub fn task_of(&self, thread: ObjId) -> Option<ObjId> {
        self.thread(thread)?.task
    }

    /// The object in `task`'s slot `idx`.
    pub fn object_at(&self, task: ObjId, idx: u64) -> Option<ObjId> {
        self.cap(task, idx).map(|c| c.obj)
    }

    /// The physical address behind `va` in `task`.
    pub fn phys_of(&self, task: ObjId, va: u64) -> Option<u64> {
        self.task(task)?.pages.get(&(va >> 12)).map(|p| p.frame << 12)
    }

    /// Every page of `task`: (virtual, physical) addresses.
    pub fn page_frames(&self, task: ObjId) -> Vec<(u64, u64)> {
        self.task(task).map(|t| t.pages.iter().map(|(v, p)| (v << 12, p.frame << 12)).collect()).unwrap_or_default()
    }

    /// The threads bound to `task`, oldest first.
    pub fn threads_of(&self, task: ObjId) -> Vec<ObjId> {
        self.objs
            .iter()
            .filter(|(_, o)| matches!(&o.kind, crate::objects::Kind::Thread(t) if t.task == Some(task)))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Where program register `n` ([`crate::Cpu::r`]) stands in a register
    /// file of the exception layout ([`Model::thread_regs`], an image's).
    pub fn program_reg(&self, n: usize) -> usize {
        crate::cpu::abi(self.cfg.arch).gpr[n % 8]
    }

    /// Is the thread alive (not dead, not killed)?
    pub fn thread_alive(&self, thread: ObjId) -> bool {
        self.thread(thread).is_some_and(|t| t.state != crate::objects::TState::Dead)
    }

    /// CPU time a thread consumed (µs).
    pub fn thread_cpu_us(&self, thread: ObjId) -> u64 {
        self.thread(thread).map(|t| t.cpu_time_us).unwrap_or(0)
    }

    /// A thread's register file (the exception layout of the architecture).
    pub fn thread_regs(&self, thread: ObjId) -> Option<Vec<u64>> {
        self.thread(thread).map(|t| t.regs.w.clone())
    }

    /// Writes `data` into `task`'s memory, if all mapped (fault injection:
    /// a test flips state behind the program's back; no faults, no R/D bits).
    pub fn poke(&mut self, task: ObjId, addr: u64, data: &[u8]) -> bool {
        let mut phys = Vec::with_capacity(data.len());
        for i in 0..data.len() as u64 {
            let a = addr + i;
            match self.task(task).and_then(|t| t.pages.get(&(a >> 12))) {
                Some(p) => phys.push((p.frame, a & 0xfff)),
                None => return false,
            }
        }
        for ((f, o), b) in phys.into_iter().zip(data) {
            self.frame(f)[o as usize] = *b;
        }
        true
    }

    /// Reads `len` bytes of `task`'s memory, if all mapped (no faults, no
    /// R/D bits: the inspector's view).
    pub fn peek(&self, task: ObjId, addr: u64, len: usize) -> Option<Vec<u8>> {
        let t = self.task(task)?;
        (0..len as u64)
            .map(|i| {
                let a = addr + i;
                let p = t.pages.get(&(a >> 12))?;
                Some(self.frame_ro(p.frame).map(|f| f[(a & 0xfff) as usize]).unwrap_or(0))
            })
            .collect()
    }
}
