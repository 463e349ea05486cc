//! Kernel objects of the model and their state.

use std::collections::BTreeMap;

use l4_sys::exc::Arch;
use l4_sys::utcb::Utcb;
use l4_sys::{Invocation, MsgTag};

use crate::mapdb::NodeId;
use crate::pagetable::PageTable;

/// A kernel object, by its index in the model's object table (stable for
/// the object's life; never reused).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ObjId(pub u32);

/// The kind of an object, as dumps name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ObjKindName {
    /// Task.
    Task,
    /// Thread.
    Thread,
    /// IPC gate.
    Gate,
    /// IRQ (Irq_sender).
    Irq,
    /// Semaphore.
    Semaphore,
    /// Factory.
    Factory,
    /// Scheduler.
    Sched,
    /// ICU.
    Icu,
    /// Kernel log.
    Vlog,
    /// Debugger.
    Jdb,
}

impl ObjKindName {
    /// The type name JDB's object-space listing prints.
    pub fn jdb_name(self) -> &'static str {
        match self {
            ObjKindName::Task => "Task",
            ObjKindName::Thread => "Thread",
            ObjKindName::Gate => "Gate",
            ObjKindName::Irq => "IRQ ipc",
            ObjKindName::Semaphore => "Sem",
            ObjKindName::Factory => "Factory",
            ObjKindName::Sched => "Sched",
            ObjKindName::Icu => "Icu/Pfc",
            ObjKindName::Vlog => "Vlog",
            ObjKindName::Jdb => "Jdb",
        }
    }
}

pub(crate) struct Obj {
    pub debug_id: u64,
    pub name: String,
    /// Capability entries that refer to this object.
    pub refs: u32,
    pub kind: Kind,
}

pub(crate) enum Kind {
    Task(Box<Task>),
    Thread(Box<Thread>),
    Gate(Gate),
    Irq(Irq),
    Semaphore(Irq),
    Factory(Factory),
    Sched,
    Icu,
    Vlog,
    Jdb,
}

impl Kind {
    pub fn name(&self) -> ObjKindName {
        match self {
            Kind::Task(_) => ObjKindName::Task,
            Kind::Thread(_) => ObjKindName::Thread,
            Kind::Gate(_) => ObjKindName::Gate,
            Kind::Irq(_) => ObjKindName::Irq,
            Kind::Semaphore(_) => ObjKindName::Semaphore,
            Kind::Factory(_) => ObjKindName::Factory,
            Kind::Sched => ObjKindName::Sched,
            Kind::Icu => ObjKindName::Icu,
            Kind::Vlog => ObjKindName::Vlog,
            Kind::Jdb => ObjKindName::Jdb,
        }
    }
}

/// A capability-table entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CapEntry {
    pub obj: ObjId,
    /// W S R D bits as in an object fpage (1, 2, 4, 8).
    pub rights: u8,
    /// The object-specific right 1 (for gates: the server interface).
    pub server: bool,
    pub node: NodeId,
}

/// A page-table entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pte {
    pub frame: u64,
    /// X W R as in a memory fpage (1, 2, 4).
    pub rights: u8,
    pub referenced: bool,
    pub dirty: bool,
    pub node: NodeId,
    /// Something was mapped on from this entry (`page_map`), so the mapdb
    /// may hold mappings derived from it; never cleared (a stale `true`
    /// only sends an unmap the long way round).
    pub derived: bool,
}

pub(crate) struct Task {
    pub caps: BTreeMap<u64, CapEntry>,
    pub pages: PageTable,
    /// Kernel-user memory: (address, size).
    pub ku_mem: Vec<(u64, u64)>,
    /// UTCBs by user address (inside ku_mem).
    pub utcbs: BTreeMap<u64, Utcb>,
    pub log: String,
    pub is_sigma0: bool,
    /// Capability-space limit (highest index + 1).
    pub cap_limit: u64,
}

impl Task {
    pub fn new() -> Self {
        Task {
            caps: BTreeMap::new(),
            pages: PageTable::new(),
            ku_mem: Vec::new(),
            utcbs: BTreeMap::new(),
            log: String::new(),
            is_sigma0: false,
            cap_limit: 1 << 20,
        }
    }

    pub fn in_ku_mem(&self, addr: u64, size: u64) -> bool {
        self.ku_mem.iter().any(|&(a, s)| a <= addr && addr.saturating_add(size) <= a + s)
    }
}

/// Which register file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Regs {
    pub arch: Arch,
    pub w: Vec<u64>,
}

impl Regs {
    pub fn new(arch: Arch) -> Self {
        Regs { arch, w: vec![0; arch.exc_words()] }
    }
}

/// What a blocked thread waits for in its receive phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RecvFrom {
    /// Open wait.
    Any,
    /// Closed wait for this thread (a direct send, or its reply).
    Thread(ObjId),
    /// Closed wait for this IRQ or semaphore.
    Irq(ObjId),
}

/// Why a thread is in the kernel, as far as the reply path cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KernelMsg {
    /// An ordinary IPC from the thread's UTCB.
    User,
    /// A page fault (address word, ip).
    PageFault { pfa: u64, write: bool },
    /// An exception carrying the register set.
    Exception,
}

/// A message in flight (copied out of the sender when it sends).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Msg {
    pub tag: MsgTag,
    pub words: Vec<u64>,
    /// (control, fpage) pairs.
    pub items: Vec<(u64, u64)>,
    pub kind: KernelMsg,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TState {
    /// Never started, or has no CPU yet.
    Dead,
    /// Runnable.
    Ready,
    /// Blocked in the send phase.
    Sending {
        to: SendTarget,
        msg: Msg,
        /// Receive phase to enter after the send.
        then: Option<RecvFrom>,
        deadline: Option<u64>,
        /// Capability used to address the receiver: its S right masks
        /// the S right of transferred capabilities.
        addr_s: bool,
    },
    /// Blocked in the receive phase.
    Receiving { from: RecvFrom, deadline: Option<u64> },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SendTarget {
    /// A thread, delivering this label.
    Thread { thread: ObjId, label: u64 },
    /// A gate (resolved to its bound thread when delivered; blocks while
    /// unbound), with the W/S bits of the sender's capability.
    Gate { gate: ObjId, bits: u64 },
}

/// How a thread runs.
#[derive(Clone)]
pub(crate) enum Runner {
    /// Driven by host code through `HostThread`.
    Host,
    /// The model's own sigma0 server.
    Sigma0,
    /// Runs the program registered for its IP.
    Program,
}

/// Size of a model thread's FPU register file, in words.
pub const FPU_WORDS: usize = 32;

pub(crate) struct Thread {
    pub task: Option<ObjId>,
    pub utcb_addr: u64,
    pub pager: u64,
    pub exc_handler: u64,
    pub regs: Regs,
    pub prio: u8,
    pub quantum: u32,
    pub has_cpu: bool,
    /// The CPU it runs on (its home CPU; `None`: never given one). A host
    /// thread without one is on CPU 0.
    pub cpu: Option<u32>,
    pub state: TState,
    pub runner: Runner,
    /// The caller whose reply this thread owes (implicit reply capability).
    pub reply_to: Option<ObjId>,
    /// Inside a kernel-synthesised IPC (page fault / exception) until the reply.
    pub in_kernel_msg: KernelMsg,
    /// ex_regs TRIGGER_EXCEPTION is pending.
    pub trigger_pending: bool,
    /// Result of the last kernel entry, for host threads.
    pub outcome: Option<(MsgTag, u64)>,
    /// The last invocation (to check a program's replay against).
    pub last_inv: Option<Invocation>,
    pub cpu_time_us: u64,
    pub ready_seq: u64,
    pub send_seq: u64,
    pub alien: bool,
    /// IRQ to trigger when a gate bound to this thread is deleted.
    pub del_irq: Option<ObjId>,
    /// Receive timeout of a call whose send phase is still blocked.
    pub regs_rcv_timeout: l4_sys::Timeout,
    /// FPU/SIMD registers (the model's: 32 words).
    pub fpu: Vec<u64>,
}

impl Thread {
    pub fn new(arch: Arch) -> Self {
        Thread {
            task: None,
            utcb_addr: 0,
            pager: 0,
            exc_handler: 0,
            regs: Regs::new(arch),
            prio: 1,
            quantum: 0,
            has_cpu: false,
            cpu: None,
            state: TState::Dead,
            runner: Runner::Program,
            reply_to: None,
            in_kernel_msg: KernelMsg::User,
            trigger_pending: false,
            outcome: None,
            last_inv: None,
            cpu_time_us: 0,
            ready_seq: 0,
            send_seq: 0,
            alien: false,
            del_irq: None,
            regs_rcv_timeout: l4_sys::Timeout::NEVER,
            fpu: vec![0; FPU_WORDS],
        }
    }
}

pub(crate) struct Gate {
    pub bound: Option<ObjId>,
    pub label: u64,
}

/// IRQ sender (also used for semaphores: `count` > 1 then).
pub(crate) struct Irq {
    pub bound: Option<ObjId>,
    pub label: u64,
    /// Queued deliveries (IRQ: 0 or 1; semaphore: the count).
    pub pending: u64,
    /// Hardware line, if bound to the ICU.
    pub line: Option<u32>,
    /// Hardware IRQs are masked after each delivery until unmasked.
    pub masked: bool,
    /// A hardware fire that arrived while masked.
    pub fired_while_masked: bool,
    /// Order of the pending delivery among all senders (FIFO).
    pub pending_seq: u64,
}

impl Irq {
    pub fn new() -> Self {
        Irq { bound: None, label: 0, pending: 0, line: None, masked: false, fired_while_masked: false, pending_seq: 0 }
    }
}

pub(crate) struct Factory {
    pub limit: u64,
    pub used: u64,
}

/// The object table: by [`ObjId`] (handed out in ascending order, never
/// reused), an ordered map in meaning, a slab in representation: a lookup
/// indexes a vector instead of walking a tree (every kernel entry makes
/// several), and the live ids are kept in order beside it so a walk over
/// the objects visits them in id order, as before, and only them. The
/// threads' ids are kept apart too: the scheduler walks the threads at
/// every decision (an object's kind never changes after its creation).
#[derive(Default)]
pub(crate) struct ObjTable {
    /// By id; `None` once the object is gone (or never was).
    slots: Vec<Option<Box<Obj>>>,
    /// The ids present, ascending.
    live: Vec<ObjId>,
    /// The ids of the threads present, ascending.
    threads: Vec<ObjId>,
}

/// Puts `id` into the ascending list `v` (almost always at its end: ids are
/// handed out in ascending order).
fn insert_sorted(v: &mut Vec<ObjId>, id: ObjId) {
    match v.last() {
        Some(&l) if l > id => {
            let at = v.partition_point(|&x| x < id);
            v.insert(at, id);
        }
        _ => v.push(id),
    }
}

fn remove_sorted(v: &mut Vec<ObjId>, id: ObjId) {
    if let Ok(at) = v.binary_search(&id) {
        v.remove(at);
    }
}

impl ObjTable {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self, id: &ObjId) -> Option<&Obj> {
        self.slots.get(id.0 as usize)?.as_deref()
    }

    pub fn get_mut(&mut self, id: &ObjId) -> Option<&mut Obj> {
        self.slots.get_mut(id.0 as usize)?.as_deref_mut()
    }

    pub fn contains_key(&self, id: &ObjId) -> bool {
        self.get(id).is_some()
    }

    /// Puts `o` under `id`; what was there.
    pub fn insert(&mut self, id: ObjId, o: Obj) -> Option<Obj> {
        let i = id.0 as usize;
        if self.slots.len() <= i {
            self.slots.resize_with(i + 1, || None);
        }
        let thread = matches!(o.kind, Kind::Thread(_));
        let old = self.slots[i].replace(Box::new(o));
        match &old {
            None => insert_sorted(&mut self.live, id),
            Some(o) if matches!(o.kind, Kind::Thread(_)) => remove_sorted(&mut self.threads, id),
            Some(_) => {}
        }
        if thread {
            insert_sorted(&mut self.threads, id);
        }
        old.map(|b| *b)
    }

    /// Takes the object out.
    pub fn remove(&mut self, id: &ObjId) -> Option<Obj> {
        let o = self.slots.get_mut(id.0 as usize)?.take()?;
        remove_sorted(&mut self.live, *id);
        if matches!(o.kind, Kind::Thread(_)) {
            remove_sorted(&mut self.threads, *id);
        }
        Some(*o)
    }

    /// Every object, by ascending id.
    pub fn iter(&self) -> impl Iterator<Item = (&ObjId, &Obj)> + '_ {
        self.live.iter().filter_map(|id| Some((id, self.slots.get(id.0 as usize)?.as_deref()?)))
    }

    /// Every thread, by ascending id (what `iter` gives, less the other kinds).
    pub fn threads(&self) -> impl Iterator<Item = (&ObjId, &Thread)> + '_ {
        self.threads.iter().filter_map(|id| match &self.slots.get(id.0 as usize)?.as_deref()?.kind {
            Kind::Thread(t) => Some((id, &**t)),
            _ => None,
        })
    }

    /// Every object, by ascending id, to change.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Obj> + '_ {
        self.slots.iter_mut().filter_map(|s| s.as_deref_mut())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(n: u64) -> Obj {
        let kind = if n.is_multiple_of(3) { Kind::Thread(Box::new(Thread::new(Arch::Amd64))) } else { Kind::Sched };
        Obj { debug_id: n, name: String::new(), refs: 0, kind }
    }

    /// Against the ordered map it stands for.
    #[test]
    fn obj_table_agrees_with_an_ordered_map() {
        let mut t = ObjTable::new();
        let mut m: BTreeMap<ObjId, u64> = BTreeMap::new();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for n in 0..5000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let id = ObjId((x % 300) as u32);
            if x >> 60 < 10 {
                assert_eq!(t.insert(id, obj(n)).map(|o| o.debug_id), m.insert(id, n));
            } else {
                assert_eq!(t.remove(&id).map(|o| o.debug_id), m.remove(&id));
            }
            assert_eq!(t.get(&id).map(|o| o.debug_id), m.get(&id).copied());
            assert!(t.iter().map(|(i, o)| (*i, o.debug_id)).eq(m.iter().map(|(i, n)| (*i, *n))));
            assert!(t.threads().map(|(i, _)| *i).eq(m.iter().filter(|(_, n)| n.is_multiple_of(3)).map(|(i, _)| *i)));
        }
        assert!(t.values_mut().map(|o| o.debug_id).eq(m.values().copied()));
        assert_eq!(t.get(&ObjId(1 << 20)).map(|o| o.debug_id), None);
    }
}
