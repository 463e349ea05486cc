//! Kernel-object protocols: what each object does with a message sent to it.
//!
//! Sources per object: factory `src/kern/factory.cpp`; task `task.cpp`;
//! thread `thread_object.cpp` (+ `thread-ia32-64.cpp`, `thread-arm.cpp`);
//! IPC gate `ipc_gate.cpp`; IRQ `irq.cpp`; semaphore `semaphore.cpp`; ICU
//! `icu_helper.cpp`; scheduler `scheduler.cpp`; log `vlog.cpp`; debugger
//! `jdb_object.cpp`, `jdb/jdb_kobject_names.cpp`. Common checks from
//! `kobject_rpc.h`: a wrong protocol label is `-EBADPROTO`, missing rights
//! `-EPERM`, too few words `-EINVAL`/`-EMSGTOOSHORT`.

use l4_sys::error::{tcr, Errno};
use l4_sys::fpage::{Fpage, FpageType};
use l4_sys::ipc::op;
use l4_sys::item::RCV_ITEM_SINGLE_CAP;
use l4_sys::utcb::Utcb;
use l4_sys::{Invocation, MsgTag, Protocol, TimeoutPair};

use crate::cpu::abi;
use crate::objects::{Factory, Gate, Irq, Kind, ObjId, ObjKindName, RecvFrom, TState, Task, Thread};
use crate::Model;

/// The outcome of an object operation.
enum Res {
    /// Reply with this label and these words.
    Reply(i64, Vec<u64>),
    /// No reply (send-only operations); a call then waits for a message
    /// from the object itself.
    NoReply(Option<RecvFrom>),
    /// The invoking thread blocks (semaphore down); already set up.
    Blocked,
    /// An IPC-level error in the receive phase.
    IpcError(u64),
}

fn err(e: Errno) -> Res {
    Res::Reply(-e.value(), Vec::new())
}

const RIGHT_W: u8 = 1;
const RIGHT_S: u8 = 2;

impl Model {
    /// `t` invoked object `obj` (through a capability with `rights`).
    pub(crate) fn kernel_op(&mut self, t: ObjId, obj: ObjId, rights: u8, server: bool, inv: Invocation) {
        let u = self.utcb_ref(t).cloned().unwrap_or_else(Utcb::zeroed);
        let tag = inv.tag;
        let label = tag.label();
        let Some(kind) = self.kind_of(obj).map(|k| k.name()) else {
            self.ipc_fail(t, tcr::ENOT_EXISTENT);
            return;
        };
        let res = match kind {
            ObjKindName::Factory if label == Protocol::Factory.label() => self.factory_op(t, obj, rights, &u, tag),
            ObjKindName::Task if label == Protocol::Task.label() => self.task_op(t, obj, rights, &u, tag),
            ObjKindName::Thread => self.thread_op(t, obj, rights, &u, tag),
            ObjKindName::Gate if label == Protocol::Kobject.label() => {
                self.endpoint_op(t, obj, rights, server, &u, tag)
            }
            ObjKindName::Irq | ObjKindName::Semaphore => self.irq_op(t, obj, rights, &u, tag, inv),
            ObjKindName::Icu if label == Protocol::Irq.label() => self.icu_op(t, obj, &u, tag),
            ObjKindName::Sched if label == Protocol::Scheduler.label() => self.sched_op(t, &u, tag),
            ObjKindName::Vlog if label == Protocol::Log.label() => self.log_op(t, &u, tag),
            ObjKindName::Vlog if label == Protocol::Irq.label() => err(Errno::NoSys),
            ObjKindName::Jdb if label == Protocol::Debugger.label() => self.jdb_op(t, &u, tag),
            _ => err(Errno::BadProto),
        };
        let ops = inv.dest & 0xf;
        match res {
            Res::Reply(l, words) => {
                if ops & op::RECV != 0 {
                    if let Some(uu) = self.utcb_mut(t) {
                        uu.mr[..words.len()].copy_from_slice(&words);
                    }
                    let rtag = MsgTag::new(l, words.len(), 0, Default::default());
                    self.set_result(t, rtag, inv.label);
                } else {
                    self.set_result(t, MsgTag(0), 0);
                }
            }
            Res::NoReply(then) => {
                if ops & op::RECV != 0 {
                    let from =
                        if ops & op::OPEN_WAIT != 0 { RecvFrom::Any } else { then.unwrap_or(RecvFrom::Thread(obj)) };
                    self.receive(t, from, inv.timeout);
                } else {
                    self.set_result(t, MsgTag(0), 0);
                }
            }
            Res::Blocked => {}
            Res::IpcError(code) => self.ipc_fail(t, code),
        }
    }

    /// The capability a message's `k`-th item names in the sender's space.
    fn item_cap(&self, t: ObjId, u: &Utcb, tag: MsgTag, k: usize) -> Option<(ObjId, u8, bool)> {
        if tag.items() <= k {
            return None;
        }
        let at = tag.words() + 2 * k;
        let f = Fpage(*u.mr.get(at + 1)?);
        if f.ty() != FpageType::Obj {
            return None;
        }
        let task = self.thread(t)?.task?;
        let c = self.cap(task, f.cap_idx().0)?;
        Some((c.obj, c.rights, c.server))
    }

    // ---- factory ------------------------------------------------------------

    fn factory_op(&mut self, t: ObjId, f: ObjId, rights: u8, u: &Utcb, tag: MsgTag) -> Res {
        if rights & RIGHT_S == 0 {
            return err(Errno::Perm);
        }
        if tag.words() < 1 {
            return err(Errno::MsgTooShort);
        }
        // the new object goes into the first object receive buffer, which
        // must be a single-cap buffer
        let b0 = u.br[l4_sys::item::Bdr(u.bdr).obj().min(57)];
        if b0 & 0xB != RCV_ITEM_SINGLE_CAP {
            return Res::IpcError(tcr::REMSGCUT);
        }
        let target = b0 >> 12;
        let ty = u.mr[0] as i64;
        let arch = self.cfg.arch;
        let (kind, cost, name): (Kind, u64, &str) = match ty {
            x if x == Protocol::Task.label() => {
                let mut task = Task::new();
                if tag.words() >= 3 {
                    let area = Fpage(u.mr[2]);
                    if area.ty() == FpageType::Memory && (12..=17).contains(&area.order()) {
                        task.ku_mem.push((area.addr(), area.size()));
                    } else if area.0 != 0 {
                        return err(Errno::Inval);
                    }
                }
                (Kind::Task(Box::new(task)), 8192, "task")
            }
            x if x == Protocol::Thread.label() => (Kind::Thread(Box::new(Thread::new(arch))), 4096, "thread"),
            0 | -10 => {
                let bind = if tag.items() >= 1 {
                    match self.item_cap(t, u, tag, 0) {
                        Some((th, r, _)) if matches!(self.kind_of(th), Some(Kind::Thread(_))) => {
                            if r & RIGHT_S == 0 {
                                return err(Errno::Perm);
                            }
                            Some(th)
                        }
                        _ => return err(Errno::Inval),
                    }
                } else {
                    None
                };
                let label = if bind.is_some() && tag.words() >= 3 { u.mr[2] } else { 0 };
                if label & 3 != 0 {
                    return err(Errno::Inval);
                }
                (Kind::Gate(Gate { bound: bind, label }), 64, "gate")
            }
            x if x == Protocol::IrqSender.label() => (Kind::Irq(Irq::new()), 64, "irq"),
            x if x == Protocol::Semaphore.label() => (Kind::Semaphore(Irq::new()), 64, "sem"),
            x if x == Protocol::Factory.label() => {
                if tag.words() != 3 {
                    return err(Errno::Inval);
                }
                (Kind::Factory(Factory { limit: u.mr[2], used: 0 }), 64 + u.mr[2], "factory")
            }
            _ => return err(Errno::NoDev),
        };
        // quota
        if let Some(Kind::Factory(fa)) = self.objs.get_mut(&f).map(|o| &mut o.kind) {
            if fa.used.saturating_add(cost) > fa.limit {
                return err(Errno::NoMem);
            }
            fa.used += cost;
        }
        let new = self.alloc_obj(kind, name);
        let task = self.thread(t).and_then(|th| th.task).expect("caller is bound");
        if !self.cap_insert_root(task, target, new, 0xF, true) {
            self.objs.remove(&new);
            return err(Errno::NoMem);
        }
        let words = match self.kind_of(new) {
            Some(Kind::Task(tk)) => {
                tk.ku_mem.first().map(|&(a, s)| vec![Fpage::mem(a, s.trailing_zeros(), l4_sys::MemRights::empty()).0])
            }
            _ => None,
        };
        Res::Reply(0, words.unwrap_or_default())
    }

    // ---- task ---------------------------------------------------------------

    fn task_op(&mut self, t: ObjId, tk: ObjId, rights: u8, u: &Utcb, tag: MsgTag) -> Res {
        if tag.words() < 1 {
            return err(Errno::MsgTooShort);
        }
        match u.mr[0] {
            0 => {
                // map: invoked task = destination (needs W), item = source task
                if rights & RIGHT_W == 0 {
                    return err(Errno::Perm);
                }
                if tag.words() < 3 || tag.items() < 1 {
                    return err(Errno::Inval);
                }
                let Some((src, src_rights, _)) = self.item_cap(t, u, tag, 0) else { return err(Errno::Inval) };
                if !matches!(self.kind_of(src), Some(Kind::Task(_))) {
                    return err(Errno::Inval);
                }
                let ctl = u.mr[1];
                let mut f = Fpage(u.mr[2]);
                // capabilities keep S only if both task capabilities have it
                if f.ty() == FpageType::Obj && (src_rights & RIGHT_S == 0 || rights & RIGHT_S == 0) {
                    f = Fpage(f.0 & !2);
                }
                self.map_item(src, tk, ctl, f, Fpage::ALL, true);
                Res::Reply(0, Vec::new())
            }
            1 => {
                if tag.words() < 2 {
                    return err(Errno::Inval);
                }
                let mask = u.mr[1];
                let self_too = mask & 0x8000_0000 != 0;
                let delete = mask & 0x4000_0000 != 0 && self_too;
                let mut out = vec![0u64, mask];
                for i in 2..tag.words() {
                    let f = Fpage(u.mr[i]);
                    let mut flags = 0u64;
                    match f.ty() {
                        FpageType::Obj => {
                            let order = f.order().min(24);
                            let start = f.cap_idx().0 & !((1u64 << order) - 1);
                            let slots: Vec<u64> = self
                                .task(tk)
                                .map(|x| x.caps.range(start..start + (1u64 << order)).map(|(k, _)| *k).collect())
                                .unwrap_or_default();
                            for s in slots {
                                self.cap_unmap(tk, s, f.rights() as u8, self_too, delete);
                            }
                        }
                        FpageType::Memory if f.order() >= 12 => {
                            let order = f.order().min(63) - 12;
                            let start = (f.addr() >> 12) & !((1u64 << order.min(63)) - 1);
                            let end = start.saturating_add(1u64 << order.min(51));
                            let rights = f.rights() as u8;
                            let (mut r, mut d) = (false, false);
                            // one walk of the range: a page nothing was
                            // mapped on from, losing W or X (not R), changes
                            // in place (what `page_unmap` does to it, without
                            // a lookup per page); the others go through
                            // `page_unmap` after the walk, as before
                            let mut vpns: Vec<u64> = Vec::new();
                            if let Some(Kind::Task(t)) = self.objs.get_mut(&tk).map(|o| &mut o.kind) {
                                for (v, p) in t.pages.range_mut(start..end) {
                                    if rights & 4 == 0 && !p.derived {
                                        if self_too {
                                            r |= p.referenced;
                                            d |= p.dirty;
                                            p.rights &= !rights;
                                        }
                                    } else {
                                        vpns.push(v);
                                    }
                                }
                            }
                            for v in vpns {
                                let (rr, dd) = self.page_unmap(tk, v, rights, self_too);
                                r |= rr;
                                d |= dd;
                            }
                            if self.cfg.arch == l4_sys::exc::Arch::Amd64 {
                                flags = r as u64 | ((d as u64) << 1);
                            }
                        }
                        _ => {}
                    }
                    out.push((f.0 & !0xf) | flags);
                }
                out[0] = 1;
                Res::Reply(0, out)
            }
            2 => {
                let valid = |m: &Model, sel: u64| -> Option<(ObjId, u8, bool)> {
                    if sel & l4_sys::cap::INVALID_CAP_BIT != 0 {
                        return None;
                    }
                    m.cap(tk, sel >> 12).map(|c| (c.obj, c.rights, c.server))
                };
                match tag.words() {
                    2 => Res::Reply(valid(self, u.mr[1] & !1).is_some() as i64, Vec::new()),
                    3 => {
                        let (a, b) = (valid(self, u.mr[1]), valid(self, u.mr[2]));
                        // same object, same W/S; for gates also the same
                        // interface (client and server are different ones)
                        let eq = match (a, b) {
                            (Some((oa, ra, sa)), Some((ob, rb, sb))) => {
                                let gate = matches!(self.kind_of(oa), Some(Kind::Gate(_)));
                                oa == ob && (ra & 3) == (rb & 3) && (!gate || sa == sb)
                            }
                            _ => false,
                        };
                        Res::Reply(eq as i64, Vec::new())
                    }
                    _ => err(Errno::Inval),
                }
            }
            3 => {
                let mut out = Vec::new();
                for i in 1..tag.words() {
                    let f = Fpage(u.mr[i]);
                    if f.ty() != FpageType::Memory || !(12..=17).contains(&f.order()) {
                        return err(Errno::Inval);
                    }
                    if let Some(x) = self.task_mut(tk) {
                        x.ku_mem.push((f.addr(), f.size()));
                    }
                    out.push(f.0);
                }
                Res::Reply(0, out)
            }
            _ => err(Errno::NoSys),
        }
    }

    // ---- thread -------------------------------------------------------------

    fn thread_op(&mut self, t: ObjId, th: ObjId, rights: u8, u: &Utcb, tag: MsgTag) -> Res {
        if tag.words() < 1 {
            return err(Errno::MsgTooShort);
        }
        let arch = self.cfg.arch;
        let a = abi(arch);
        let opcode = u.mr[0] & 0xffff;
        let flags = u.mr[0] & !0xffff;
        match opcode {
            0 => {
                if tag.words() < 6 {
                    return err(Errno::Inval);
                }
                if rights & RIGHT_S == 0 {
                    return err(Errno::Perm);
                }
                let old = self.thread(th).map(|x| (x.pager, x.exc_handler)).unwrap_or((0, 0));
                if flags & 0x0020_0000 != 0 {
                    let Some((task, trights, _)) = self.item_cap(t, u, tag, 0) else { return err(Errno::Inval) };
                    if trights & RIGHT_S == 0 {
                        return err(Errno::Perm);
                    }
                    let utcb = u.mr[5];
                    let ok_task = self.task(task).is_some_and(|x| x.in_ku_mem(utcb, 1024));
                    let unbound = self.thread(th).is_some_and(|x| x.task.is_none());
                    if !ok_task || !unbound || utcb & 0x3ff != 0 {
                        return err(Errno::Inval);
                    }
                    if let Some(x) = self.task_mut(task) {
                        let mut nu = Utcb::zeroed();
                        nu.own_addr = utcb;
                        x.utcbs.insert(utcb, nu);
                    }
                    let x = self.th(th);
                    x.task = Some(task);
                    x.utcb_addr = utcb;
                    match arch {
                        l4_sys::exc::Arch::Amd64 => x.regs.w[l4_sys::exc::amd64::mr::GS_BASE] = utcb + 0x1f8,
                        l4_sys::exc::Arch::Arm64 => {
                            x.regs.w[l4_sys::exc::arm64::mr::TPIDRURO] = utcb;
                            x.regs.w[l4_sys::exc::arm64::mr::TPIDRURW] = utcb;
                        }
                    }
                }
                let x = self.th(th);
                if flags & 0x0001_0000 != 0 {
                    x.pager = u.mr[1];
                }
                if flags & 0x0100_0000 != 0 {
                    x.exc_handler = u.mr[2];
                }
                if flags & 0x0040_0000 != 0 {
                    x.alien = u.mr[4] & 0x0040_0000 != 0;
                }
                Res::Reply(0, vec![0, old.0, old.1])
            }
            1 => {
                if tag.words() != 3 {
                    return err(Errno::Inval);
                }
                let (ip, sp) = (u.mr[1], u.mr[2]);
                let cancel = flags & 0x1_0000 != 0;
                let trigger = flags & 0x2_0000 != 0;
                let x = self.thread(th).expect("thread");
                let old = vec![x.regs.w[a.flags], x.regs.w[a.ip], x.regs.w[a.sp]];
                let in_exc = x.in_kernel_msg != crate::objects::KernelMsg::User;
                if in_exc && !cancel {
                    // a thread inside an exception IPC is left alone
                    return Res::Reply(0, old);
                }
                if cancel {
                    self.cancel_ipc(th);
                }
                let x = self.th(th);
                if ip != !0 {
                    x.regs.w[a.ip] = ip;
                }
                if sp != !0 {
                    x.regs.w[a.sp] = sp;
                }
                if trigger {
                    x.trigger_pending = true;
                }
                if x.state == TState::Dead {
                    self.make_ready(th);
                }
                Res::Reply(0, old)
            }
            2 => Res::Reply(0, Vec::new()),
            3 => Res::Reply(0, vec![self.thread(th).map(|x| x.cpu_time_us).unwrap_or(0)]),
            5 => match self.item_cap(t, u, tag, 0) {
                Some((irq, r, _)) if matches!(self.kind_of(irq), Some(Kind::Irq(_))) && r & RIGHT_W != 0 => {
                    self.th(th).del_irq = Some(irq);
                    Res::Reply(0, Vec::new())
                }
                _ => err(Errno::Inval),
            },
            6 => {
                let rules: Vec<[u64; 4]> = (0..(tag.words() - 1) / 4)
                    .map(|k| [u.mr[1 + 4 * k], u.mr[2 + 4 * k], u.mr[3 + 4 * k], u.mr[4 + 4 * k]])
                    .collect();
                let senders: Vec<ObjId> = self
                    .objs
                    .iter()
                    .filter_map(|(id, o)| match &o.kind {
                        Kind::Thread(x) => match &x.state {
                            TState::Sending { to: crate::objects::SendTarget::Thread { thread, .. }, .. }
                                if *thread == th =>
                            {
                                Some(*id)
                            }
                            _ => None,
                        },
                        _ => None,
                    })
                    .collect();
                for s in senders {
                    if let TState::Sending { to: crate::objects::SendTarget::Thread { label, .. }, .. } =
                        &mut self.th(s).state
                    {
                        if let Some(r) = rules.iter().find(|r| *label & r[0] == r[1]) {
                            *label = (*label & !r[2]) | r[3];
                        }
                    }
                }
                Res::Reply(0, Vec::new())
            }
            0x10 if arch == l4_sys::exc::Arch::Arm64 => {
                self.th(th).regs.w[l4_sys::exc::arm64::mr::TPIDRURO] = u.mr[1];
                Res::Reply(0, Vec::new())
            }
            0x12 if arch == l4_sys::exc::Arch::Amd64 => {
                let i = if (u.mr[0] >> 16) & 0xff == 1 {
                    l4_sys::exc::amd64::mr::GS_BASE
                } else {
                    l4_sys::exc::amd64::mr::FS_BASE
                };
                self.th(th).regs.w[i] = u.mr[1];
                Res::Reply(0, Vec::new())
            }
            _ => err(Errno::NoSys),
        }
    }

    // ---- IPC gate / IRQ bind (receive endpoints) --------------------------------

    fn endpoint_op(&mut self, t: ObjId, ep: ObjId, rights: u8, server: bool, u: &Utcb, tag: MsgTag) -> Res {
        if tag.words() < 1 {
            return err(Errno::MsgTooShort);
        }
        let is_gate = matches!(self.kind_of(ep), Some(Kind::Gate(_)));
        match u.mr[0] {
            0x10 => {
                if rights & RIGHT_S == 0 || (is_gate && !server) {
                    return err(Errno::Perm);
                }
                if tag.words() < 2 || tag.items() < 1 {
                    return err(Errno::Inval);
                }
                let Some((th, r, _)) = self.item_cap(t, u, tag, 0) else { return err(Errno::Inval) };
                if !matches!(self.kind_of(th), Some(Kind::Thread(_))) {
                    return err(Errno::Inval);
                }
                if r & RIGHT_S == 0 {
                    return err(Errno::Perm);
                }
                let label = u.mr[1];
                if is_gate && label & 3 != 0 {
                    return err(Errno::Inval);
                }
                self.bind_endpoint(ep, th, label);
                Res::Reply(0, Vec::new())
            }
            0x11 if is_gate => match self.kind_of(ep) {
                Some(Kind::Gate(g)) => Res::Reply(0, vec![g.label]),
                _ => err(Errno::Inval),
            },
            0 => Res::Reply(0, Vec::new()),
            _ => err(Errno::NoSys),
        }
    }

    // ---- IRQ / semaphore ----------------------------------------------------------

    fn irq_op(&mut self, t: ObjId, i: ObjId, rights: u8, u: &Utcb, tag: MsgTag, inv: Invocation) -> Res {
        let label = tag.label();
        let is_sem = matches!(self.kind_of(i), Some(Kind::Semaphore(_)));
        if label == Protocol::Kobject.label() {
            return self.endpoint_op(t, i, rights, true, u, tag);
        }
        if label == Protocol::Irq.label() {
            if tag.words() == 0 {
                self.irq_trigger(i);
                return Res::NoReply(Some(RecvFrom::Irq(i)));
            }
            if u.mr[0] == 4 {
                self.irq_unmask(i);
                return Res::NoReply(Some(RecvFrom::Irq(i)));
            }
            if u.mr[0] == 2 {
                self.irq_trigger(i);
                return Res::NoReply(Some(RecvFrom::Irq(i)));
            }
            return err(Errno::NoSys);
        }
        if label == Protocol::IrqSender.label() && !is_sem {
            if rights & RIGHT_S == 0 {
                return err(Errno::Perm);
            }
            return match u.mr[0] {
                1 => {
                    let was = match self.objs.get_mut(&i).map(|o| &mut o.kind) {
                        Some(Kind::Irq(irq)) => {
                            let p = irq.pending;
                            irq.bound = None;
                            irq.pending = 0;
                            p
                        }
                        _ => 0,
                    };
                    Res::Reply(was.min(1) as i64, Vec::new())
                }
                _ => err(Errno::NoSys),
            };
        }
        if label == Protocol::Semaphore.label() && is_sem {
            if rights & RIGHT_S == 0 {
                return err(Errno::Perm);
            }
            let count = match self.kind_of(i) {
                Some(Kind::Semaphore(s)) => s.pending,
                _ => 0,
            };
            if count > 0 {
                if let Some(Kind::Semaphore(s)) = self.objs.get_mut(&i).map(|o| &mut o.kind) {
                    s.pending -= 1;
                }
                return Res::Reply(0, Vec::new());
            }
            self.receive(t, RecvFrom::Irq(i), TimeoutPair::new(l4_sys::Timeout::NEVER, inv.timeout.rcv));
            return Res::Blocked;
        }
        err(Errno::BadProto)
    }

    pub(crate) fn irq_unmask(&mut self, i: ObjId) {
        let refire = match self.objs.get_mut(&i).map(|o| &mut o.kind) {
            Some(Kind::Irq(irq)) => {
                irq.masked = false;
                std::mem::take(&mut irq.fired_while_masked)
            }
            _ => false,
        };
        if refire {
            self.irq_hw_fire(i);
        }
    }

    // ---- ICU ----------------------------------------------------------------------

    fn icu_op(&mut self, t: ObjId, _icu: ObjId, u: &Utcb, tag: MsgTag) -> Res {
        if tag.words() < 1 {
            return err(Errno::MsgTooShort);
        }
        let lines = self.icu_lines.len() as u64;
        match u.mr[0] {
            0 | 1 => {
                if tag.words() < 2 || tag.items() < 1 {
                    return err(Errno::Inval);
                }
                let line = u.mr[1];
                let Some((irq, r, _)) = self.item_cap(t, u, tag, 0) else { return err(Errno::Inval) };
                if !matches!(self.kind_of(irq), Some(Kind::Irq(_))) {
                    return err(Errno::Inval);
                }
                if r & RIGHT_W == 0 {
                    return err(Errno::Perm);
                }
                if line >= lines {
                    return err(Errno::Inval);
                }
                if u.mr[0] == 0 {
                    // an IRQ object has one line: drop its old binding first
                    for l in self.icu_lines.iter_mut() {
                        if *l == Some(irq) {
                            *l = None;
                        }
                    }
                    self.icu_lines[line as usize] = Some(irq);
                    if let Some(Kind::Irq(x)) = self.objs.get_mut(&irq).map(|o| &mut o.kind) {
                        x.line = Some(line as u32);
                        x.masked = false;
                    }
                } else if self.icu_lines[line as usize] == Some(irq) {
                    self.icu_lines[line as usize] = None;
                    if let Some(Kind::Irq(x)) = self.objs.get_mut(&irq).map(|o| &mut o.kind) {
                        x.line = None;
                    }
                }
                Res::Reply(0, Vec::new())
            }
            2 => Res::Reply(0, vec![0, lines, 0]),
            4 | 5 => {
                if let Some(Some(irq)) = self.icu_lines.get(u.mr[1] as usize).copied() {
                    if u.mr[0] == 4 {
                        self.irq_unmask(irq);
                    } else if let Some(Kind::Irq(x)) = self.objs.get_mut(&irq).map(|o| &mut o.kind) {
                        x.masked = true;
                    }
                }
                Res::NoReply(None)
            }
            6 => Res::Reply(0, Vec::new()),
            _ => err(Errno::NoSys),
        }
    }

    // ---- scheduler ------------------------------------------------------------------

    fn sched_op(&mut self, t: ObjId, u: &Utcb, tag: MsgTag) -> Res {
        if tag.words() < 1 {
            return err(Errno::MsgTooShort);
        }
        use l4_sys::scheduler::{placement, CpuSet};
        let online = self.online();
        match u.mr[0] {
            // the present CPUs the set's window covers, one bit per
            // granule (`Scheduler::sys_info`); the maximum; fixed priorities
            0 => {
                let set = CpuSet { gran_offset: if tag.words() >= 2 { u.mr[1] } else { 0 }, map: 0 };
                let (off, g) = (set.offset(), set.granularity());
                let mut map = 0u64;
                for c in (0..self.cfg.cpus).filter(|&c| c >= off) {
                    let bit = (c - off) >> g;
                    if bit < 64 {
                        map |= 1 << bit;
                    }
                }
                Res::Reply(0, vec![map, self.cfg.cpus as u64, 2])
            }
            1 => {
                if tag.words() < 5 || tag.items() < 1 {
                    return err(Errno::Inval);
                }
                let Some((th, _, _)) = self.item_cap(t, u, tag, 0) else { return err(Errno::Inval) };
                if !matches!(self.kind_of(th), Some(Kind::Thread(_))) {
                    return err(Errno::Inval);
                }
                let prio = u.mr[3];
                if prio == 0 {
                    return err(Errno::Inval);
                }
                // the CPU as `Scheduler::sys_run` chooses it, the caller
                // being the invoking thread
                let set = CpuSet { gran_offset: u.mr[1], map: u.mr[2] };
                let caller = self.cpu_of(t) as u32;
                let home = self.thread(th).and_then(|x| if x.has_cpu { x.cpu } else { None });
                let cpu = placement(&set, home, caller, online);
                let q_steps = (u.mr[4] / self.cfg.step_cost_us.max(1)).min(u32::MAX as u64) as u32;
                let x = self.th(th);
                x.prio = prio.min(255) as u8;
                x.quantum = q_steps;
                // a set without a CPU there is: parked on none, it never runs
                x.has_cpu = cpu.is_some();
                x.cpu = cpu.or(x.cpu);
                if x.state == TState::Ready {
                    self.make_ready(th);
                }
                Res::Reply(0, Vec::new())
            }
            // the idle time of the set's first online CPU
            2 => {
                if tag.words() < 3 {
                    return err(Errno::Inval);
                }
                let set = CpuSet { gran_offset: u.mr[1], map: u.mr[2] };
                match set.first(online) {
                    Some(c) => Res::Reply(0, vec![self.idle_us[c as usize]]),
                    None => err(Errno::Inval),
                }
            }
            _ => err(Errno::NoSys),
        }
    }

    // ---- log ------------------------------------------------------------------------

    fn log_op(&mut self, t: ObjId, u: &Utcb, tag: MsgTag) -> Res {
        if tag.words() < 1 {
            return err(Errno::MsgTooShort);
        }
        match u.mr[0] & 0xffff {
            0 => {
                let len = u.mr[1] as usize;
                if len <= l4_sys::log::WRITE_MAX && tag.words() >= 2 + len.div_ceil(8) {
                    let bytes: Vec<u8> =
                        u.mr[2..2 + len.div_ceil(8)].iter().flat_map(|w| w.to_le_bytes()).take(len).collect();
                    let text = String::from_utf8_lossy(&bytes).into_owned();
                    if self.cfg.echo_log {
                        eprint!("{text}");
                    }
                    if let Some(task) = self.thread(t).and_then(|x| x.task) {
                        if let Some(tk) = self.task_mut(task) {
                            tk.log.push_str(&text);
                        }
                    }
                }
                Res::NoReply(None)
            }
            1 => Res::Reply(0, vec![1 << 31]),
            2 => Res::Reply(0, Vec::new()),
            3 => Res::Reply(0, vec![0, 0, 0, 0]),
            _ => err(Errno::NoSys),
        }
    }

    // ---- debugger -------------------------------------------------------------------

    fn jdb_op(&mut self, t: ObjId, u: &Utcb, tag: MsgTag) -> Res {
        if tag.words() == 0 {
            return Res::Reply(0, Vec::new());
        }
        match u.mr[0] {
            0..=2 => Res::Reply(0, Vec::new()),
            0x100 => {
                let Some((obj, _, _)) = self.item_cap(t, u, tag, 0) else { return err(Errno::Inval) };
                let bytes: Vec<u8> = u.mr[1..tag.words()].iter().flat_map(|w| w.to_le_bytes()).collect();
                let n = bytes.iter().position(|&c| c == 0).unwrap_or(bytes.len()).min(l4_sys::debugger::NAME_MAX);
                let name = String::from_utf8_lossy(&bytes[..n]).into_owned();
                if let Some(o) = self.objs.get_mut(&obj) {
                    o.name = name;
                }
                Res::Reply(0, Vec::new())
            }
            0x101 => {
                let Some((obj, _, _)) = self.item_cap(t, u, tag, 0) else { return err(Errno::Inval) };
                Res::Reply(0, vec![self.objs.get(&obj).map(|o| o.debug_id).unwrap_or(0)])
            }
            0x108 => {
                let Some((obj, _, _)) = self.item_cap(t, u, tag, 0) else { return err(Errno::Inval) };
                let name = self.objs.get(&obj).map(|o| o.name.clone()).unwrap_or_default();
                let mut b = name.into_bytes();
                b.resize(16, 0);
                let words = b.chunks(8).map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect();
                Res::Reply(0, words)
            }
            // op 0x110 (object dump) trips an assertion on the real kernel
            // build this was checked against; the model does not offer it
            _ => err(Errno::NoSys),
        }
    }
}
