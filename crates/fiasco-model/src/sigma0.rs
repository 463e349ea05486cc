//! Boot (the kernel's initial workload) and the model's sigma0.
//!
//! The boot follows `src/kern/std_workload.cpp`: sigma0 and the root task,
//! the root task's initial capabilities at the `L4_BASE_*` slots (1 task,
//! 2 factory, 3 thread, 4 a gate to sigma0 with label 0x40, 5 log, 6 ICU,
//! 7 scheduler, 10 debugger — slots 8 and 11 only exist with an IOMMU or a
//! TEE, and did not under QEMU), its UTCB at the kernel's address (amd64
//! 0x7f_ff00_0000, arm64 EL2 0xfff_ffff_0000, both seen on the real kernel).
//!
//! sigma0 is served natively: it answers the sigma0 protocol (KIP, any RAM,
//! given RAM, I/O memory) and the root task's page faults by mapping RAM
//! 1:1, as l4re-core's `sigma0/server/src/memmap.cc` does.

use l4_sys::fpage::{Fpage, MemRights};
use l4_sys::sigma0::Request;
use l4_sys::utcb::Utcb;
use l4_sys::{MsgTag, Protocol, TimeoutPair};

use crate::mem::PAGE;
use crate::objects::{Factory, Gate, KernelMsg, Kind, Msg, ObjId, RecvFrom, Runner, TState, Task, Thread};
use crate::{Boot, Model};

/// Label of the root task's pager gate (sigma0 sees `0x40 | W | S`).
pub const ROOT_PAGER_LABEL: u64 = 0x40;

impl Model {
    pub(crate) fn root_utcb_addr(&self) -> u64 {
        match self.cfg.arch {
            l4_sys::exc::Arch::Amd64 => 0x7f_ff00_0000,
            l4_sys::exc::Arch::Arm64 => 0xfff_ffff_0000,
        }
    }

    fn new_bound_thread(&mut self, task: ObjId, utcb: u64, runner: Runner, name: &str) -> ObjId {
        let mut th = Thread::new(self.cfg.arch);
        th.task = Some(task);
        th.utcb_addr = utcb;
        th.runner = runner;
        th.has_cpu = true;
        th.cpu = Some(0);
        let id = self.alloc_obj(Kind::Thread(Box::new(th)), name);
        let tk = self.task_mut(task).expect("task");
        tk.ku_mem.push((utcb & !0xfff, PAGE));
        let mut u = Utcb::zeroed();
        u.own_addr = utcb;
        tk.utcbs.insert(utcb, u);
        id
    }

    pub(crate) fn boot_workload(&mut self) {
        let factory = self.alloc_obj(Kind::Factory(Factory { limit: u64::MAX, used: 0 }), "factory");
        let scheduler = self.alloc_obj(Kind::Sched, "scheduler");
        let icu = self.alloc_obj(Kind::Icu, "icu");
        let log = self.alloc_obj(Kind::Vlog, "log");
        let debugger = self.alloc_obj(Kind::Jdb, "jdb");

        let mut s0 = Task::new();
        s0.is_sigma0 = true;
        let sigma0_task = self.alloc_obj(Kind::Task(Box::new(s0)), "sigma0");
        let sigma0_thread = self.new_bound_thread(sigma0_task, 0x1000, Runner::Sigma0, "sigma0");
        self.th(sigma0_thread).state = TState::Receiving { from: RecvFrom::Any, deadline: None };
        self.th(sigma0_thread).prio = 255;

        let root_task = self.alloc_obj(Kind::Task(Box::new(Task::new())), "root");
        let ru = self.root_utcb_addr();
        let root_thread = self.new_bound_thread(root_task, ru, Runner::Host, "root");
        let sigma0_gate =
            self.alloc_obj(Kind::Gate(Gate { bound: Some(sigma0_thread), label: ROOT_PAGER_LABEL }), "sigma0-gate");
        {
            let th = self.th(root_thread);
            th.pager = 4 << 12;
            th.exc_handler = 0;
            th.state = TState::Ready;
            // the kernel's GS / TPIDRRO anchor
            match th.regs.arch {
                l4_sys::exc::Arch::Amd64 => th.regs.w[l4_sys::exc::amd64::mr::GS_BASE] = ru + 0x1f8,
                l4_sys::exc::Arch::Arm64 => th.regs.w[l4_sys::exc::arm64::mr::TPIDRURO] = ru,
            }
        }
        for (idx, obj, server) in [
            (1, root_task, true),
            (2, factory, true),
            (3, root_thread, true),
            (4, sigma0_gate, false),
            (5, log, true),
            (6, icu, true),
            (7, scheduler, true),
            (10, debugger, true),
        ] {
            self.cap_insert_root(root_task, idx, obj, 0xF, server);
        }
        // sigma0's own capabilities (it needs none from the model, but the
        // kernel gives it these)
        for (idx, obj) in [(1, sigma0_task), (2, factory), (3, sigma0_thread), (5, log), (6, icu), (7, scheduler)] {
            self.cap_insert_root(sigma0_task, idx, obj, 0xF, true);
        }
        self.boot = Boot {
            sigma0_task,
            sigma0_thread,
            root_task,
            root_thread,
            factory,
            scheduler,
            icu,
            log,
            debugger,
            sigma0_gate,
        };
        self.build_kip();
    }

    /// The KIP, in a frame just above RAM (as the real one lies in memory
    /// sigma0 does not hand out).
    fn build_kip(&mut self) {
        let (base, size) = self.cfg.ram;
        let pfn = (base + size) >> 12;
        self.kip_frame = pfn;
        let f = self.frame(pfn);
        f[0..4].copy_from_slice(&l4_sys::kip::MAGIC.to_le_bytes());
        f[4..8].copy_from_slice(&0x8703_4444u32.to_le_bytes());
        f[8] = 0x40; // strings at 0x400
        let descs = [(base | 1, base + size - 1)];
        f[0x54..0x58].copy_from_slice(&0x200u32.to_le_bytes());
        f[0x58..0x5c].copy_from_slice(&(descs.len() as u32).to_le_bytes());
        for (i, (a, b)) in descs.iter().enumerate() {
            f[0x200 + 16 * i..0x208 + 16 * i].copy_from_slice(&a.to_le_bytes());
            f[0x208 + 16 * i..0x210 + 16 * i].copy_from_slice(&b.to_le_bytes());
        }
        f[0x70..0x75].copy_from_slice(b"model");
        let strings = b"Fiasco.OC model (rtcr)\0mapdb\0\0";
        f[0x400..0x400 + strings.len()].copy_from_slice(strings);
    }

    /// Physical address of the KIP.
    pub fn kip_phys(&self) -> u64 {
        self.kip_frame << 12
    }

    /// sigma0 got `msg` (with `label`) from `s`, which waits for the reply.
    pub(crate) fn sigma0_serve(&mut self, s: ObjId, msg: Msg, label: u64, _then: Option<RecvFrom>) {
        let s0 = self.boot.sigma0_thread;
        let s0_task = self.boot.sigma0_task;
        let owner = label >> 4;
        let reply = match msg.kind {
            KernelMsg::PageFault { pfa, .. } => self.s0_map_range(pfa & !0xfff, 12, owner, true),
            _ if msg.tag.label() == Protocol::PageFault.label() => {
                let pfa = msg.words.first().copied().unwrap_or(0) & !0xfff;
                self.s0_map_range(pfa, 12, owner, true)
            }
            _ if msg.tag.label() == Protocol::Sigma0.label() => match Request::decode(msg.words.len(), &msg.words) {
                Some(Request::Kip) => {
                    let kp = self.kip_frame;
                    self.s0_ensure(kp);
                    Some((kp << 12, 12, MemRights::RX))
                }
                Some(Request::AnyRam { order }) => self.s0_alloc_any(order, owner),
                Some(Request::Ram(f)) => self.s0_map_range(f.addr(), f.order(), owner, false),
                Some(Request::IoMem { fpage, .. }) if !self.is_ram(fpage.addr()) && fpage.order() >= 12 => {
                    for p in 0..(1u64 << (fpage.order().min(30) - 12)) {
                        self.s0_ensure((fpage.addr() >> 12) + p);
                    }
                    Some((fpage.addr(), fpage.order(), MemRights::RW))
                }
                _ => None,
            },
            _ => None,
        };
        let rmsg = match reply {
            Some((phys, order, rights)) => {
                let item = l4_sys::item::SendItem::map_mem(
                    phys,
                    Fpage::mem(phys, order, rights),
                    l4_sys::item::Cache::Keep,
                    false,
                );
                Msg {
                    tag: MsgTag::new(0, 0, 1, Default::default()),
                    words: Vec::new(),
                    items: vec![(item.control, item.fpage.0)],
                    kind: KernelMsg::User,
                }
            }
            None => Msg {
                tag: MsgTag::new(-l4_sys::Errno::NoMem.value(), 0, 0, Default::default()),
                words: Vec::new(),
                items: Vec::new(),
                kind: KernelMsg::User,
            },
        };
        let _ = s0_task;
        // the requester waits for sigma0's reply
        self.th(s).state = TState::Receiving { from: RecvFrom::Thread(s0), deadline: None };
        self.th(s0).reply_to = Some(s);
        self.sigma0_reply(s0, s, rmsg);
        self.th(s0).state = TState::Receiving { from: RecvFrom::Any, deadline: None };
        self.th(s0).reply_to = None;
    }

    fn sigma0_reply(&mut self, s0: ObjId, s: ObjId, rmsg: Msg) {
        if self.thread(s).is_some_and(|th| th.in_kernel_msg != KernelMsg::User) {
            self.kernel_reply(s, &rmsg, s0);
        } else {
            // an ordinary reply: items go through the requester's buffers
            let u = self.utcb_mut(s0);
            if let Some(u) = u {
                for (k, (a, b)) in rmsg.items.iter().enumerate() {
                    u.mr[2 * k] = *a;
                    u.mr[2 * k + 1] = *b;
                }
            }
            let tag = rmsg.tag;
            let inv = l4_sys::Invocation {
                dest: l4_sys::cap::INVALID_CAP | l4_sys::ipc::op::SEND | l4_sys::ipc::op::REPLY,
                tag,
                label: 0,
                timeout: TimeoutPair::NEVER,
            };
            let trace = self.cfg.trace;
            self.cfg.trace = false;
            self.syscall(s0, inv);
            self.cfg.trace = trace;
        }
    }

    /// Makes sure sigma0 has frame `pfn` at its own address (1:1).
    fn s0_ensure(&mut self, pfn: u64) {
        let t = self.boot.sigma0_task;
        if self.task(t).is_some_and(|x| !x.pages.contains_key(&pfn)) {
            self.page_insert_root(t, pfn, pfn, 7);
        }
    }

    /// Maps RAM `[phys, phys + 2^order)` if every frame is free or already
    /// the requester's.
    fn s0_map_range(&mut self, phys: u64, order: u32, owner: u64, fault: bool) -> Option<(u64, u32, MemRights)> {
        if order < 12 || phys & ((1u64 << order) - 1) != 0 {
            return None;
        }
        let n = 1u64 << (order.min(30) - 12);
        let first = phys >> 12;
        for p in first..first + n {
            if !self.is_ram(p << 12) || self.s0_owned.get(&p).is_some_and(|&o| o != owner) {
                return None;
            }
        }
        for p in first..first + n {
            self.s0_owned.insert(p, owner);
            self.s0_ensure(p);
        }
        let _ = fault;
        Some((phys, order, MemRights::RWX))
    }

    /// Any free, naturally aligned RAM block of 2^order bytes, from the top.
    fn s0_alloc_any(&mut self, order: u32, owner: u64) -> Option<(u64, u32, MemRights)> {
        if !(12..=30).contains(&order) {
            return None;
        }
        let (base, size) = self.cfg.ram;
        let block = 1u64 << order;
        let mut at = (base + size - block) & !(block - 1);
        if let Some(last) = self.s0_any_last[order as usize] {
            // every block of this order above the last one given was taken
            if last < base + block {
                return None;
            }
            at = at.min(last - block);
        }
        while at >= base {
            let first = at >> 12;
            let n = block >> 12;
            if self.s0_owned.range(first..first + n).next().is_none() {
                let got = self.s0_map_range(at, order, owner, false);
                if got.is_some() {
                    self.s0_any_last[order as usize] = Some(at);
                }
                return got;
            }
            if at < block {
                break;
            }
            at -= block;
        }
        None
    }
}
