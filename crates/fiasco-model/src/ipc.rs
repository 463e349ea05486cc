//! The one system call: destination decoding, the send and receive phases,
//! message and item transfer, the implicit reply capability, timeouts,
//! cancellation, and the kernel-made calls for page faults and exceptions.
//!
//! Sources: `src/kern/syscalls.cpp`, `thread-ipc.cpp` (`do_ipc`,
//! `handle_page_fault_pager`, `send_exception`), `receiver.cpp`,
//! `sender.cpp`, `ipc_gate.cpp` (`Ipc_gate::invoke`: label | W | S),
//! `src/abi/l4_msg_item.cpp`, `l4_buf_iter.cpp`, `map_util.cpp`
//! (`free_constraint`, the hot-spot rule).

use l4_sys::cap::INVALID_CAP_BIT;
use l4_sys::error::tcr;
use l4_sys::fpage::{Fpage, FpageType};
use l4_sys::ipc::op;
use l4_sys::item::{Bdr, ITEM_CONT, ITEM_MAP, MAP_ITEM_GRANT};
use l4_sys::utcb::Utcb;
use l4_sys::{Invocation, MsgTag, Protocol, TimeoutPair};

use crate::cpu::abi;
use crate::dump::TraceEntry;
use crate::mem::MapResult;
use crate::objects::{KernelMsg, Kind, Msg, ObjId, RecvFrom, Runner, SendTarget, TState};
use crate::Model;

/// A sender in a receiver's queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sender {
    Thread(ObjId),
    Irq(ObjId),
}

impl Model {
    pub(crate) fn utcb_mut(&mut self, t: ObjId) -> Option<&mut Utcb> {
        let (task, addr) = {
            let th = self.thread(t)?;
            (th.task?, th.utcb_addr)
        };
        self.task_mut(task)?.utcbs.get_mut(&addr)
    }

    pub(crate) fn utcb_ref(&self, t: ObjId) -> Option<&Utcb> {
        let th = self.thread(t)?;
        self.task(th.task?)?.utcbs.get(&th.utcb_addr)
    }

    /// Completes `t`'s kernel call with `tag`/`label`.
    pub(crate) fn set_result(&mut self, t: ObjId, tag: MsgTag, label: u64) {
        let a = abi(self.cfg.arch);
        if let Some(th) = self.thread_mut(t) {
            th.regs.w[a.tag] = tag.0;
            th.regs.w[a.label] = label;
            th.outcome = Some((tag, label));
        }
        self.make_ready(t);
    }

    /// Fails `t`'s kernel call with TCR code `code`, taking it out of any wait.
    pub(crate) fn ipc_fail(&mut self, t: ObjId, code: u64) {
        if let Some(u) = self.utcb_mut(t) {
            u.tcr_error = code;
        }
        if let Some(th) = self.thread_mut(t) {
            th.in_kernel_msg = KernelMsg::User;
        }
        self.set_result(t, MsgTag(0x8000), 0);
    }

    fn trace_entry(&mut self, t: ObjId, inv: &Invocation) {
        if !self.cfg.trace {
            return;
        }
        let thread = self.objs.get(&t).map(|o| o.debug_id).unwrap_or(0);
        let e = TraceEntry {
            step: self.steps,
            clock_us: self.clock_us,
            thread,
            dest: inv.dest,
            tag: inv.tag.0,
            label: inv.label,
        };
        self.trace.push(e);
    }

    /// Thread `t` enters the kernel with `inv` (its UTCB already holds the message).
    pub(crate) fn syscall(&mut self, t: ObjId, inv: Invocation) {
        self.trace_entry(t, &inv);
        self.entries += 1;
        if self.halt_at_entry.is_some_and(|n| self.entries > n) {
            // power loss: nothing happens any more
            self.halted = true;
            self.th(t).state = TState::Receiving { from: RecvFrom::Thread(t), deadline: None };
            return;
        }
        // fault injection: the thread dies at this kernel entry
        if let Some((task, left)) = self.crash_at_entry {
            if self.thread(t).and_then(|x| x.task) == Some(task) {
                if left == 0 {
                    self.crash_at_entry = None;
                    let code = crate::cpu::Cpu::invalid_op_code(self.cfg.arch);
                    self.raise_exception(t, Some(code));
                    return;
                }
                self.crash_at_entry = Some((task, left - 1));
            }
        }
        let a = abi(self.cfg.arch);
        {
            let th = self.th(t);
            th.last_inv = Some(inv);
            th.outcome = None;
            th.regs.w[a.tag] = inv.tag.0;
            th.regs.w[a.label] = inv.label;
            th.regs.w[a.dest] = inv.dest;
            th.regs.w[a.timeout] = inv.timeout.raw();
            th.state = TState::Ready;
        }
        let ops = inv.dest & 0xf;
        let to = inv.timeout;
        if ops & op::SEND == 0 {
            if ops & op::RECV != 0 {
                let from = self.recv_spec(t, inv.dest);
                match from {
                    Some(f) => self.receive(t, f, to),
                    // a closed wait on an empty slot
                    None => self.ipc_fail(t, tcr::ENOT_EXISTENT | tcr::RCV_BIT),
                }
            } else {
                self.set_result(t, MsgTag(0), 0);
            }
            return;
        }
        if ops & op::REPLY != 0 {
            self.reply(t, inv, ops);
            return;
        }
        // resolve the destination capability
        let target = if inv.dest & INVALID_CAP_BIT != 0 {
            Some((t, 0b111u8, true))
        } else {
            let task = self.thread(t).and_then(|th| th.task);
            task.and_then(|tk| self.cap(tk, inv.dest >> 12)).map(|c| (c.obj, c.rights, c.server))
        };
        let Some((obj, rights, server)) = target else {
            self.ipc_fail(t, tcr::ENOT_EXISTENT);
            return;
        };
        let label = inv.tag.label();
        let kind = self.kind_of(obj).map(|k| k.name());
        use crate::objects::ObjKindName as K;
        match kind {
            Some(K::Thread) if label == Protocol::Thread.label() => self.kernel_op(t, obj, rights, server, inv),
            Some(K::Thread) => {
                let then = self.then_recv(t, inv.dest, Some(obj));
                let msg = self.msg_from_utcb(t, inv.tag);
                self.send(t, SendTarget::Thread { thread: obj, label: inv.label }, msg, then, to, rights & 2 != 0);
            }
            Some(K::Gate) if server && label == Protocol::Kobject.label() => {
                self.kernel_op(t, obj, rights, server, inv)
            }
            Some(K::Gate) => {
                let bits = (rights & 1) as u64 | (rights & 2) as u64;
                let bound = match self.kind_of(obj) {
                    Some(Kind::Gate(g)) => g.bound,
                    _ => None,
                };
                let then = self.then_recv(t, inv.dest, bound);
                let msg = self.msg_from_utcb(t, inv.tag);
                self.send(t, SendTarget::Gate { gate: obj, bits }, msg, then, to, rights & 2 != 0);
            }
            Some(_) => self.kernel_op(t, obj, rights, server, inv),
            None => self.ipc_fail(t, tcr::ENOT_EXISTENT),
        }
    }

    /// The receive phase that follows a send to `dest` (`partner`: the
    /// thread a call waits for).
    fn then_recv(&self, _t: ObjId, dest: u64, partner: Option<ObjId>) -> Option<Then> {
        let ops = dest & 0xf;
        if ops & op::RECV == 0 {
            None
        } else if ops & op::OPEN_WAIT != 0 {
            Some(Then::Open)
        } else {
            Some(Then::ReplyFrom(partner))
        }
    }

    /// What a receive-only entry waits for.
    fn recv_spec(&self, t: ObjId, dest: u64) -> Option<RecvFrom> {
        if dest & op::OPEN_WAIT != 0 {
            return Some(RecvFrom::Any);
        }
        if dest & INVALID_CAP_BIT != 0 {
            // from oneself: never arrives (sleep)
            return Some(RecvFrom::Thread(t));
        }
        let task = self.thread(t)?.task?;
        let c = self.cap(task, dest >> 12)?;
        Some(match self.kind_of(c.obj)? {
            Kind::Irq(_) | Kind::Semaphore(_) => RecvFrom::Irq(c.obj),
            Kind::Gate(g) => RecvFrom::Thread(g.bound.unwrap_or(c.obj)),
            _ => RecvFrom::Thread(c.obj),
        })
    }

    pub(crate) fn msg_from_utcb(&self, t: ObjId, tag: MsgTag) -> Msg {
        let u = self.utcb_ref(t).cloned().unwrap_or_else(Utcb::zeroed);
        let w = tag.words().min(63);
        let n_items = tag.items().min((63 - w) / 2);
        let words = u.mr[..w].to_vec();
        let items = (0..n_items).map(|i| (u.mr[w + 2 * i], u.mr[w + 2 * i + 1])).collect();
        Msg { tag, words, items, kind: KernelMsg::User }
    }

    fn deadline(&self, t: ObjId, to: l4_sys::Timeout) -> Option<u64> {
        if to.is_never() {
            return None;
        }
        if let Some(br) = to.abs_br() {
            return Some(self.utcb_ref(t).map(|u| u.br[br.min(57)]).unwrap_or(0));
        }
        Some(self.clock_us + to.rel_us().unwrap_or(0))
    }

    fn is_zero(to: l4_sys::Timeout) -> bool {
        !to.is_never() && !to.is_absolute() && to.rel_us() == Some(0)
    }

    /// The thread a send target reaches now.
    fn receiver_of(&self, to: SendTarget) -> Option<(ObjId, u64)> {
        match to {
            SendTarget::Thread { thread, label } => Some((thread, label)),
            SendTarget::Gate { gate, bits } => match self.kind_of(gate) {
                Some(Kind::Gate(g)) => g.bound.map(|b| (b, g.label | bits)),
                _ => None,
            },
        }
    }

    /// Does `r`, if receiving, take a message from `from`?
    fn accepts(&self, r: ObjId, from: Sender) -> bool {
        match self.thread(r).map(|th| &th.state) {
            Some(TState::Receiving { from: f, .. }) => match (f, from) {
                (RecvFrom::Any, _) => true,
                (RecvFrom::Thread(x), Sender::Thread(s)) => *x == s,
                (RecvFrom::Irq(x), Sender::Irq(i)) => *x == i,
                _ => false,
            },
            _ => false,
        }
    }

    fn send(&mut self, t: ObjId, to: SendTarget, msg: Msg, then: Option<Then>, timeout: TimeoutPair, addr_s: bool) {
        let then = then.map(|th| match th {
            Then::Open => RecvFrom::Any,
            Then::ReplyFrom(Some(p)) => RecvFrom::Thread(p),
            // a call through an unbound gate: the partner is whoever binds it
            Then::ReplyFrom(None) => RecvFrom::Thread(ObjId(0)),
        });
        if let Some((r, label)) = self.receiver_of(to) {
            if self.accepts(r, Sender::Thread(t)) {
                let then = match (then, to) {
                    (Some(RecvFrom::Thread(ObjId(0))), _) => Some(RecvFrom::Thread(r)),
                    (x, _) => x,
                };
                self.deliver(t, r, msg, label, then, timeout, addr_s);
                return;
            }
        } else if !matches!(to, SendTarget::Gate { .. }) {
            self.ipc_fail(t, tcr::ENOT_EXISTENT);
            return;
        }
        if Self::is_zero(timeout.snd) {
            self.ipc_fail(t, tcr::SETIMEOUT);
            return;
        }
        let deadline = self.deadline(t, timeout.snd);
        let seq = self.next_seq();
        let th = self.th(t);
        th.send_seq = seq;
        // the receive timeout applies once the send is done; remember it
        th.state = TState::Sending { to, msg, then, deadline, addr_s };
        th.regs_rcv_timeout = timeout.rcv;
    }

    /// Delivers `msg` from `s` to the waiting receiver `r`.
    #[allow(clippy::too_many_arguments)]
    fn deliver(
        &mut self,
        s: ObjId,
        r: ObjId,
        msg: Msg,
        label: u64,
        then: Option<RecvFrom>,
        timeout: TimeoutPair,
        addr_s: bool,
    ) {
        // a reply to a thread stopped in a kernel-made call goes to the kernel
        if self.thread(r).is_some_and(|th| th.in_kernel_msg != KernelMsg::User) {
            self.kernel_reply(r, &msg, s);
            self.after_send(s, then, timeout);
            return;
        }
        if self.thread(r).is_some_and(|th| matches!(th.runner, Runner::Sigma0)) {
            self.sigma0_serve(s, msg, label, then);
            return;
        }
        let (from_task, to_task) = (self.thread(s).and_then(|x| x.task), self.thread(r).and_then(|x| x.task));
        let w = msg.words.len();
        let item_res = match (from_task, to_task) {
            (Some(ft), Some(tt)) => self.transfer_items(ft, tt, r, &msg, w, addr_s),
            _ => Ok(0),
        };
        if let Some(u) = self.utcb_mut(r) {
            u.mr[..w].copy_from_slice(&msg.words);
        }
        self.transfer_fpu(s, r, &msg, addr_s);
        match item_res {
            Ok(n) => {
                let tag = MsgTag::new(msg.tag.label(), w, n, msg.tag.flags() & !l4_sys::msgtag::TagFlags::ERROR);
                let is_call = matches!(then, Some(RecvFrom::Thread(p)) if p == r);
                if is_call {
                    self.th(r).reply_to = Some(s);
                }
                self.set_result(r, tag, label);
                self.after_send(s, then, timeout);
            }
            Err(()) => {
                // buffers missing or unfit: both sides see a cut message
                self.ipc_fail(r, tcr::REMSGCUT);
                self.ipc_fail(s, tcr::SEMSGCUT);
            }
        }
    }

    /// TRANSFER_FPU (`Thread::transfer_fpu`, thread.cpp): the sender's FPU
    /// state goes to the receiver if the receiver asked for it (BDR bit 24)
    /// and the sender's capability to it has S.
    fn transfer_fpu(&mut self, s: ObjId, r: ObjId, msg: &Msg, addr_s: bool) {
        if !msg.tag.flags().contains(l4_sys::msgtag::TagFlags::TRANSFER_FPU) || !addr_s {
            return;
        }
        let wants = self.utcb_ref(r).is_some_and(|u| u.bdr & l4_sys::item::Bdr::INHERIT_FPU != 0);
        if wants {
            if let Some(f) = self.thread(s).map(|x| x.fpu.clone()) {
                self.th(r).fpu = f;
            }
        }
    }

    /// The send phase of `s` is done: enter its receive phase or finish.
    fn after_send(&mut self, s: ObjId, then: Option<RecvFrom>, timeout: TimeoutPair) {
        match then {
            Some(from) => {
                let to = timeout.rcv;
                self.th(s).state = TState::Ready;
                self.receive(s, from, TimeoutPair::new(l4_sys::Timeout::NEVER, to));
            }
            None => self.set_result(s, MsgTag(0), 0),
        }
    }

    /// The receive phase: take a queued sender or block.
    pub(crate) fn receive(&mut self, t: ObjId, from: RecvFrom, timeout: TimeoutPair) {
        if let Some(sender) = self.first_sender(t, from) {
            match sender {
                Sender::Irq(i) => self.deliver_irq(i, t),
                Sender::Thread(s) => {
                    let TState::Sending { to, msg, then, addr_s, .. } =
                        self.thread(s).map(|x| x.state.clone()).unwrap_or(TState::Dead)
                    else {
                        unreachable!("queued senders are sending")
                    };
                    let label = self.receiver_of(to).map(|(_, l)| l).unwrap_or(0);
                    self.th(t).state = TState::Receiving { from, deadline: None };
                    let rcv_to = self.thread(s).map(|x| x.regs_rcv_timeout).unwrap_or(l4_sys::Timeout::NEVER);
                    let then = match then {
                        Some(RecvFrom::Thread(ObjId(0))) => Some(RecvFrom::Thread(t)),
                        x => x,
                    };
                    self.deliver(s, t, msg, label, then, TimeoutPair::new(l4_sys::Timeout::NEVER, rcv_to), addr_s);
                }
            }
            return;
        }
        if Self::is_zero(timeout.rcv) {
            self.ipc_fail(t, tcr::RETIMEOUT);
            return;
        }
        let deadline = self.deadline(t, timeout.rcv);
        self.th(t).state = TState::Receiving { from, deadline };
        // a semaphore with a count answers at once
        if let RecvFrom::Irq(i) = from {
            if let Some(Kind::Semaphore(sem)) = self.kind_of(i) {
                if sem.pending > 0 {
                    self.deliver_irq(i, t);
                }
            }
        }
    }

    /// The first sender `t` would receive from now.
    fn first_sender(&self, t: ObjId, from: RecvFrom) -> Option<Sender> {
        let prio_of = |x: ObjId| self.thread(x).map(|th| th.prio).unwrap_or(0);
        let mut best: Option<(u8, u64, Sender)> = None;
        let mut consider = |p: u8, seq: u64, s: Sender| {
            if best.is_none_or(|(bp, bs, _)| p > bp || (p == bp && seq < bs)) {
                best = Some((p, seq, s));
            }
        };
        for (id, o) in self.objs.iter() {
            match &o.kind {
                Kind::Thread(th) => {
                    if let TState::Sending { to, .. } = &th.state {
                        if self.receiver_of(*to).map(|(r, _)| r) == Some(t) {
                            let ok = match from {
                                RecvFrom::Any => true,
                                RecvFrom::Thread(x) => x == *id,
                                RecvFrom::Irq(_) => false,
                            };
                            if ok {
                                consider(th.prio, th.send_seq, Sender::Thread(*id));
                            }
                        }
                    }
                }
                Kind::Irq(irq)
                    if irq.bound == Some(t)
                        && irq.pending > 0
                        && (matches!(from, RecvFrom::Any) || from == RecvFrom::Irq(*id)) =>
                {
                    consider(prio_of(t), irq.pending_seq, Sender::Irq(*id));
                }
                _ => {}
            }
        }
        best.map(|(_, _, s)| s)
    }

    /// Delivers one pending IRQ (or semaphore count) to `t`.
    pub(crate) fn deliver_irq(&mut self, i: ObjId, t: ObjId) {
        let label = match self.objs.get_mut(&i).map(|o| &mut o.kind) {
            Some(Kind::Irq(irq)) => {
                irq.pending = 0;
                if irq.line.is_some() {
                    irq.masked = true;
                }
                irq.label
            }
            Some(Kind::Semaphore(sem)) => {
                sem.pending = sem.pending.saturating_sub(1);
                0
            }
            _ => return,
        };
        self.set_result(t, MsgTag(0), label);
    }

    /// Triggers IRQ `i` (software trigger, hardware fire, semaphore up).
    pub(crate) fn irq_trigger(&mut self, i: ObjId) {
        let seq = self.next_seq();
        let (bound, is_sem) = match self.objs.get_mut(&i).map(|o| &mut o.kind) {
            Some(Kind::Irq(irq)) => {
                if irq.pending == 0 {
                    irq.pending = 1;
                    irq.pending_seq = seq;
                }
                (irq.bound, false)
            }
            Some(Kind::Semaphore(sem)) => {
                sem.pending += 1;
                sem.pending_seq = seq;
                (None, true)
            }
            _ => return,
        };
        if is_sem {
            // wake the best waiter of the semaphore
            let waiter = self
                .objs
                .iter()
                .filter_map(|(id, o)| match &o.kind {
                    Kind::Thread(th) => match th.state {
                        TState::Receiving { from: RecvFrom::Irq(x), .. } if x == i => {
                            Some((*id, th.prio, th.ready_seq))
                        }
                        _ => None,
                    },
                    _ => None,
                })
                .max_by(|a, b| a.1.cmp(&b.1).then(b.2.cmp(&a.2)));
            if let Some((w, _, _)) = waiter {
                self.deliver_irq(i, w);
            }
            return;
        }
        if let Some(r) = bound {
            if self.accepts(r, Sender::Irq(i)) {
                self.deliver_irq(i, r);
            }
        }
    }

    /// A hardware line fired.
    pub(crate) fn irq_hw_fire(&mut self, i: ObjId) {
        let masked = match self.objs.get_mut(&i).map(|o| &mut o.kind) {
            Some(Kind::Irq(irq)) => {
                if irq.masked {
                    irq.fired_while_masked = true;
                }
                irq.masked
            }
            _ => return,
        };
        if !masked {
            self.irq_trigger(i);
        }
    }

    /// A reply through the implicit reply capability.
    fn reply(&mut self, t: ObjId, inv: Invocation, ops: u64) {
        let caller = self.th(t).reply_to.take();
        let msg = self.msg_from_utcb(t, inv.tag);
        let waiting = caller.filter(|&c| {
            matches!(self.thread(c).map(|x| &x.state), Some(TState::Receiving { from: RecvFrom::Thread(p), .. }) if *p == t)
        });
        let open = if ops & op::RECV != 0 { Some(RecvFrom::Any) } else { None };
        match waiting {
            Some(c) => {
                let (rights_s, label) = (true, inv.label);
                if self.thread(c).is_some_and(|th| th.in_kernel_msg != KernelMsg::User) {
                    self.kernel_reply(c, &msg, t);
                    self.after_send(t, open, inv.timeout);
                } else {
                    self.deliver(t, c, msg, label, open, inv.timeout, rights_s);
                }
            }
            None => {
                // nobody to reply to (no caller, or it stopped waiting): the
                // reply capability derefs to nothing and the whole
                // operation fails with ENOT_EXISTENT, receive phase and all
                // (`sys_ipc_wrapper`, `Obj_cap::deref` in the kernel)
                let _ = open;
                self.ipc_fail(t, tcr::ENOT_EXISTENT);
            }
        }
    }

    /// A kernel-made call from `t` (page fault or exception) to its pager or
    /// exception handler, looked up in its own task at this moment.
    pub(crate) fn kernel_call(&mut self, t: ObjId, kind: KernelMsg, words: Vec<u64>) {
        let (task, handler_idx) = {
            let th = self.th(t);
            let idx = match kind {
                KernelMsg::PageFault { .. } => th.pager,
                _ => th.exc_handler,
            };
            (th.task, idx >> 12)
        };
        let label = match kind {
            KernelMsg::PageFault { .. } => Protocol::PageFault.label(),
            _ => Protocol::Exception.label(),
        };
        let flags =
            if kind == KernelMsg::Exception { l4_sys::msgtag::TagFlags::TRANSFER_FPU } else { Default::default() };
        let tag = MsgTag::new(label, words.len(), 0, flags);
        let msg = Msg { tag, words, items: Vec::new(), kind };
        let cap = task.and_then(|tk| self.cap(tk, handler_idx)).filter(|_| handler_idx != 0);
        let Some(cap) = cap else {
            match kind {
                // no pager: the kernel kills the thread
                KernelMsg::PageFault { .. } => self.kill_thread(t),
                // no exception handler: the thread blocks on itself forever
                _ => {
                    let th = self.th(t);
                    th.state = TState::Receiving { from: RecvFrom::Thread(t), deadline: None };
                    th.in_kernel_msg = kind;
                }
            }
            return;
        };
        self.th(t).in_kernel_msg = kind;
        let to = match self.kind_of(cap.obj) {
            Some(Kind::Gate(_)) => SendTarget::Gate { gate: cap.obj, bits: (cap.rights & 3) as u64 },
            Some(Kind::Thread(_)) => SendTarget::Thread { thread: cap.obj, label: 0 },
            _ => {
                self.kill_thread(t);
                return;
            }
        };
        let partner = self.receiver_of(to).map(|(r, _)| r);
        self.send(t, to, msg, Some(Then::ReplyFrom(partner)), TimeoutPair::NEVER, cap.rights & 2 != 0);
    }

    /// The reply to a kernel-made call reaches `t`: map the page / set the registers.
    pub(crate) fn kernel_reply(&mut self, t: ObjId, msg: &Msg, replier: ObjId) {
        let kind = self.th(t).in_kernel_msg;
        if msg.tag.flags().contains(l4_sys::msgtag::TagFlags::TRANSFER_FPU) {
            // a reply (or resuming send) with TRANSFER_FPU puts the
            // handler's FPU state into the thread
            if let Some(f) = self.thread(replier).map(|x| x.fpu.clone()) {
                self.th(t).fpu = f;
            }
        }
        self.th(t).in_kernel_msg = KernelMsg::User;
        match kind {
            KernelMsg::PageFault { pfa, write } => {
                if msg.tag.label() < 0 {
                    // the pager refused: an exception (x86 trap 14 / arm abort)
                    let code = match self.cfg.arch {
                        l4_sys::exc::Arch::Amd64 => {
                            let th = self.th(t);
                            th.regs.w[l4_sys::exc::amd64::mr::PFA] = pfa;
                            th.regs.w[l4_sys::exc::amd64::mr::ERR] = if write { 6 } else { 4 };
                            14
                        }
                        l4_sys::exc::Arch::Arm64 => {
                            let th = self.th(t);
                            th.regs.w[l4_sys::exc::arm64::mr::PFA] = pfa;
                            0x24
                        }
                    };
                    self.make_ready(t);
                    self.raise_exception_with_err(t, code, write);
                    return;
                }
                self.map_reply_items(t, msg, replier);
                self.make_ready(t);
            }
            KernelMsg::Exception => {
                let n = self.cfg.arch.exc_words();
                if msg.words.len() >= n {
                    let sanitized = self.sanitize_regs(t, &msg.words[..n]);
                    self.th(t).regs.w = sanitized;
                }
                self.map_reply_items(t, msg, replier);
                self.make_ready(t);
            }
            KernelMsg::User => self.make_ready(t),
        }
    }

    fn raise_exception_with_err(&mut self, t: ObjId, code: u64, write: bool) {
        if self.cfg.arch == l4_sys::exc::Arch::Arm64 {
            // ESR: EC | WnR
            let th = self.th(t);
            th.regs.w[l4_sys::exc::arm64::mr::ERR] = (code << 26) | if write { 1 << 6 } else { 0 };
            let words = th.regs.w.clone();
            self.kernel_call(t, KernelMsg::Exception, words);
        } else {
            let th = self.th(t);
            th.regs.w[l4_sys::exc::amd64::mr::TRAPNO] = code;
            let words = th.regs.w.clone();
            self.kernel_call(t, KernelMsg::Exception, words);
        }
    }

    /// Items of a reply to a kernel-made call map into the thread's task
    /// through the whole-space window the kernel prepared (BR0 = 8, BR1 =
    /// all spaces).
    fn map_reply_items(&mut self, t: ObjId, msg: &Msg, replier: ObjId) {
        let to = self.thread(t).and_then(|th| th.task);
        let from = self.thread(replier).and_then(|th| th.task);
        if let (Some(ft), Some(tt)) = (from, to) {
            for &(ctl, fp) in &msg.items {
                if ctl & ITEM_MAP != 0 {
                    self.map_item(ft, tt, ctl, Fpage(fp), Fpage::ALL, true);
                }
            }
        }
    }

    /// What a full-size exception reply may set (`copy_utcb_to_ts`, `copy_and_sanitize`).
    fn sanitize_regs(&self, t: ObjId, w: &[u64]) -> Vec<u64> {
        use l4_sys::exc::{amd64, arm64, Arch};
        let old = self.thread(t).map(|th| th.regs.w.clone()).unwrap_or_default();
        let mut r = w.to_vec();
        match self.cfg.arch {
            Arch::Amd64 => {
                r[amd64::mr::CS] = old[amd64::mr::CS];
                // IOPL and NT cleared, IF set
                r[amd64::mr::FLAGS] = (r[amd64::mr::FLAGS] & !(0x3000 | 0x4000)) | 0x200;
            }
            Arch::Arm64 => {
                // EL0 with interrupts enabled
                r[arm64::mr::PSTATE] &= !0x3cf;
            }
        }
        r
    }

    /// Transfers the typed items of `msg` from task `from` to `to` into
    /// receiver `r`'s buffers; writes the receiver's item words. Returns the
    /// number of items, or `Err` for a cut message.
    fn transfer_items(
        &mut self,
        from: ObjId,
        to: ObjId,
        r: ObjId,
        msg: &Msg,
        w: usize,
        addr_s: bool,
    ) -> Result<usize, ()> {
        if msg.items.is_empty() {
            return Ok(0);
        }
        let u = self.utcb_ref(r).cloned().unwrap_or_else(Utcb::zeroed);
        let bdr = Bdr(u.bdr);
        let (mut mem_i, mut io_i, mut obj_i) = (bdr.mem(), bdr.io(), bdr.obj());
        let mut out = Vec::new();
        let mut cont = false;
        for &(ctl, fp) in &msg.items {
            let f = Fpage(fp);
            if ctl & ITEM_MAP == 0 {
                out.push((ctl, 0));
                continue;
            }
            let idx = match f.ty() {
                FpageType::Memory => &mut mem_i,
                FpageType::Io => &mut io_i,
                _ => &mut obj_i,
            };
            if cont {
                // same buffer as the previous item
                *idx = idx.saturating_sub(Self::buf_len(&u, idx.saturating_sub(1)));
            }
            let at = *idx;
            let Some(&b0) = u.br.get(at) else { return Err(()) };
            if b0 == 0 {
                return Err(());
            }
            let (window, single) = if b0 & 0xA == 0xA && b0 & 0x8 != 0 && (b0 & 0xF) != ITEM_MAP {
                (Fpage::obj(l4_sys::CapIdx::from_sel(b0), 0, l4_sys::CapRights::RWSD), true)
            } else {
                (Fpage(u.br.get(at + 1).copied().unwrap_or(0)), false)
            };
            *idx = at
                + if single {
                    1
                } else if b0 & 1 != 0 {
                    3
                } else {
                    2
                };
            // a single-cap buffer takes only capabilities
            if single && f.ty() != FpageType::Obj {
                return Err(());
            }
            let mut ctl_eff = ctl;
            if f.ty() == FpageType::Obj && !addr_s {
                // the S right is masked by the addressing capability's S right
                ctl_eff &= !0x20;
            }
            let fp_eff = if f.ty() == FpageType::Obj && !addr_s { Fpage(fp & !2) } else { f };
            // LOCAL_ID buffers (`L4_RCV_ITEM_LOCAL_ID`): within one task the
            // fpage itself comes back; a gate bound to a thread of the
            // receiver's task comes back as its label | W/S; else a mapping
            if single && b0 & l4_sys::item::RCV_ITEM_LOCAL_ID != 0 {
                if from == to {
                    out.push(((ctl & !0xfff) | (fp & 0xff0) | ITEM_MAP | 6, fp_eff.0));
                    cont = ctl & ITEM_CONT != 0;
                    continue;
                }
                let local = self.cap(from, f.cap_idx().0).and_then(|c| match self.kind_of(c.obj) {
                    Some(Kind::Gate(g)) => {
                        let bound_task = g.bound.and_then(|b| self.thread(b)).and_then(|th| th.task);
                        (bound_task == Some(to)).then_some(g.label | (c.rights & (fp_eff.rights() as u8) & 3) as u64)
                    }
                    _ => None,
                });
                if let Some(id) = local {
                    out.push(((ctl & !0xfff) | (fp & 0xff0) | ITEM_MAP | 4, id));
                    cont = ctl & ITEM_CONT != 0;
                    continue;
                }
            }
            let res = self.map_item(from, to, ctl_eff, fp_eff, window, false);
            let kind_bits = if res == MapResult::Mapped { 0 } else { 2 };
            let ret = (ctl & !0xfff) | (fp & 0xff0) | ITEM_MAP | kind_bits | (ctl & ITEM_CONT);
            out.push((ret, 0));
            cont = ctl & ITEM_CONT != 0;
        }
        let n = out.len();
        if let Some(uu) = self.utcb_mut(r) {
            for (k, (a, b)) in out.into_iter().enumerate() {
                if w + 2 * k + 1 < 63 {
                    uu.mr[w + 2 * k] = a;
                    if b != 0 {
                        uu.mr[w + 2 * k + 1] = b;
                    }
                }
            }
        }
        Ok(n)
    }

    fn buf_len(u: &Utcb, at: usize) -> usize {
        match u.br.get(at) {
            Some(&b) if b & 0xA == 0xA && (b & 0xF) != ITEM_MAP => 1,
            Some(&b) if b & 1 != 0 => 3,
            _ => 2,
        }
    }

    /// Maps one send item from `from` into `to` through receive window
    /// `window` (the hot-spot rule); `whole`: the window is the whole space.
    pub(crate) fn map_item(
        &mut self,
        from: ObjId,
        to: ObjId,
        ctl: u64,
        f: Fpage,
        window: Fpage,
        whole: bool,
    ) -> MapResult {
        let grant = ctl & MAP_ITEM_GRANT != 0;
        let snd_base = ctl & !0xfff;
        match f.ty() {
            FpageType::Obj => {
                let s_order = f.order().min(20);
                let s_start = f.cap_idx().0 & !((1u64 << s_order) - 1);
                let (w_start, w_order) = if whole { (0, 63u32) } else { (window.cap_idx().0, window.order().min(63)) };
                let (src, dst, order) = hot_spot(s_start, s_order, snd_base >> 12, w_start, w_order);
                let server = ctl & 0x20 != 0;
                let mut any = MapResult::Nothing;
                for i in 0..(1u64 << order.min(20)) {
                    if self.cap(from, src + i).is_some()
                        && self.cap_map(from, src + i, to, dst + i, f.rights() as u8, server, grant)
                            == MapResult::Mapped
                    {
                        any = MapResult::Mapped;
                    }
                }
                any
            }
            FpageType::Memory => {
                if f.order() < 12 {
                    return MapResult::Nothing;
                }
                let s_order = f.order().min(63) - 12;
                let s_start = (f.addr() >> 12) & !((1u64 << s_order.min(63)) - 1);
                let (w_start, w_order) = if whole || window == Fpage::ALL {
                    (0, 63 - 12)
                } else if window.ty() == FpageType::Memory && window.order() >= 12 {
                    (window.addr() >> 12, window.order().min(63) - 12)
                } else {
                    return MapResult::Nothing;
                };
                let (src, dst, order) = hot_spot(s_start, s_order, snd_base >> 12, w_start, w_order);
                // one page, the most common item: no list of pages
                // (page_map does nothing for a page the sender lacks)
                if order == 0 {
                    return self.page_map(from, src, to, dst, f.rights() as u8, grant);
                }
                let mut any = MapResult::Nothing;
                // only pages that exist in the sender are visited
                let present: Vec<u64> = self
                    .task(from)
                    .map(|t| t.pages.range(src..src.saturating_add(1u64 << order.min(50))).map(|(v, _)| v).collect())
                    .unwrap_or_default();
                for v in present {
                    if self.page_map(from, v, to, dst + (v - src), f.rights() as u8, grant) == MapResult::Mapped {
                        any = MapResult::Mapped;
                    }
                }
                any
            }
            _ => MapResult::Nothing,
        }
    }

    /// Ends every IPC relation of a thread that is going away.
    pub(crate) fn kill_thread(&mut self, t: ObjId) {
        if let Some(th) = self.thread_mut(t) {
            th.state = TState::Dead;
            th.has_cpu = false;
            th.reply_to = None;
        }
        self.wake_partners_of(t);
    }

    /// Wakes threads that wait for `x` (a gone thread or object) with an error.
    fn wake_partners_of(&mut self, x: ObjId) {
        let waiting: Vec<(ObjId, bool)> = self
            .objs
            .iter()
            .filter_map(|(id, o)| match &o.kind {
                Kind::Thread(th) => match &th.state {
                    TState::Receiving { from: RecvFrom::Thread(p), .. } if *p == x && *id != x => Some((*id, false)),
                    TState::Sending { to: SendTarget::Thread { thread, .. }, .. } if *thread == x => Some((*id, true)),
                    TState::Sending { to: SendTarget::Gate { gate, .. }, .. } if *gate == x => Some((*id, true)),
                    _ => None,
                },
                _ => None,
            })
            .collect();
        for (w, sending) in waiting {
            self.ipc_fail(w, if sending { tcr::ENOT_EXISTENT } else { tcr::ENOT_EXISTENT | 1 });
        }
    }

    pub(crate) fn on_thread_destroyed(&mut self, t: ObjId, _th: &crate::objects::Thread) {
        self.wake_partners_of(t);
        // gates and IRQs bound to it become unbound
        for o in self.objs.values_mut() {
            match &mut o.kind {
                Kind::Gate(g) if g.bound == Some(t) => g.bound = None,
                Kind::Irq(i) if i.bound == Some(t) => i.bound = None,
                Kind::Thread(x) if x.reply_to == Some(t) => x.reply_to = None,
                _ => {}
            }
        }
    }

    pub(crate) fn on_gate_destroyed(&mut self, g: ObjId, bound: Option<ObjId>) {
        self.wake_partners_of(g);
        // senders queued through the gate to its thread lose their partner
        let queued: Vec<ObjId> = self
            .objs
            .iter()
            .filter_map(|(id, o)| match &o.kind {
                Kind::Thread(th) => match &th.state {
                    TState::Sending { to: SendTarget::Gate { gate, .. }, .. } if *gate == g => Some(*id),
                    _ => None,
                },
                _ => None,
            })
            .collect();
        for s in queued {
            self.ipc_fail(s, tcr::ENOT_EXISTENT);
        }
        if let Some(b) = bound {
            if let Some(irq) = self.thread(b).and_then(|th| th.del_irq) {
                self.irq_trigger(irq);
            }
        }
    }

    pub(crate) fn on_irq_destroyed(&mut self, i: ObjId) {
        let waiting: Vec<ObjId> = self
            .objs
            .iter()
            .filter_map(|(id, o)| match &o.kind {
                Kind::Thread(th) => match th.state {
                    TState::Receiving { from: RecvFrom::Irq(x), .. } if x == i => Some(*id),
                    _ => None,
                },
                _ => None,
            })
            .collect();
        for w in waiting {
            self.ipc_fail(w, tcr::ENOT_EXISTENT | 1);
        }
    }

    /// ex_regs CANCEL: abort the thread's IPC.
    pub(crate) fn cancel_ipc(&mut self, t: ObjId) {
        let code = match self.thread(t).map(|th| &th.state) {
            Some(TState::Sending { .. }) => tcr::SECANCELED,
            Some(TState::Receiving { .. }) => tcr::RECANCELED,
            _ => return,
        };
        self.ipc_fail(t, code);
    }

    /// Binds gate or IRQ `ep` to thread `t` with `label`; a rebind takes over
    /// the queued senders, and a waiting thread gets a pending IRQ at once.
    pub(crate) fn bind_endpoint(&mut self, ep: ObjId, t: ObjId, label: u64) {
        match self.objs.get_mut(&ep).map(|o| &mut o.kind) {
            Some(Kind::Gate(g)) => {
                g.bound = Some(t);
                g.label = label;
                // senders blocked on the unbound gate may proceed now
                self.retry_gate_senders(ep);
            }
            Some(Kind::Irq(i)) => {
                i.bound = Some(t);
                i.label = label;
                let pending = i.pending > 0;
                if pending && self.accepts(t, Sender::Irq(ep)) {
                    self.deliver_irq(ep, t);
                }
            }
            _ => {}
        }
    }

    fn retry_gate_senders(&mut self, gate: ObjId) {
        let Some((r, _)) = self.receiver_of(SendTarget::Gate { gate, bits: 0 }) else { return };
        if !matches!(self.thread(r).map(|th| &th.state), Some(TState::Receiving { .. })) {
            return;
        }
        if let Some(TState::Receiving { from, .. }) = self.thread(r).map(|th| th.state.clone()) {
            self.receive(r, from, TimeoutPair::NEVER);
        }
    }
}

/// The receive phase that follows a send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Then {
    Open,
    ReplyFrom(Option<ObjId>),
}

/// The hot-spot rule (`free_constraint` in map_util.cpp), in units of
/// pages or slots: returns (source start, destination start, order).
fn hot_spot(s_start: u64, s_order: u32, hot: u64, w_start: u64, w_order: u32) -> (u64, u64, u32) {
    let mask = |o: u32| if o >= 63 { u64::MAX } else { (1u64 << o) - 1 };
    if w_order >= s_order {
        // the send fpage lands in the window at (hot mod window) rounded to its size
        let off = (hot & mask(w_order)) & !mask(s_order);
        (s_start, (w_start & !mask(w_order)) + off, s_order)
    } else {
        // the send fpage shrinks to the window size around the hot spot
        let off = (hot & mask(s_order)) & !mask(w_order);
        (s_start + off, w_start & !mask(w_order), w_order)
    }
}

#[cfg(test)]
mod tests {
    use super::hot_spot;

    #[test]
    fn hot_spot_rule() {
        // a 1-page send into the whole space lands at the hot spot
        assert_eq!(hot_spot(0x800, 0, 0x40, 0, 51), (0x800, 0x40, 0));
        // a 4-page send into a 1-page window: the page around the hot spot
        assert_eq!(hot_spot(0x800, 2, 0x2, 0x50, 0), (0x802, 0x50, 0));
        // a 1-page send into a 4-page window: offset by hot spot in the window
        assert_eq!(hot_spot(0x800, 0, 0x3, 0x50, 2), (0x800, 0x53, 0));
    }
}
