//! The services behind the child's slots: each request is checked, the real
//! operation done with rtcr's capabilities, the result recorded, and the
//! child answered with the words (and items) the kernel would have sent.
//! A malformed or unsupported request gets an error reply, never a panic.
//!
//! Capabilities the child sends (a thread for a gate or an IRQ bind, its
//! task for a bind) arrive in rtcr's LOCAL_ID buffer: since each is a gate
//! rtcr serves, the kernel delivers its label, which names the object.

use alloc::vec::Vec;

use l4_sys::cap::{base, kind, Cap, CapIdx};
use l4_sys::error::Errno;
use l4_sys::fpage::{CapRights, Fpage, FpageType, MemRights};
use l4_sys::item::{Cache, ObjAttr, RcvItem, RcvKind, SendItem};
use l4_sys::{factory, icu, irq, log, scheduler, task, thread, MsgTag, Protocol};

use crate::labels::{self, Service};
use crate::state::{Obj, ObjKind, Page, Supervisor, FACTORY, PRIV_BASE};
use crate::Env;

/// What to send back.
pub(crate) enum Reply {
    /// Label and words.
    Words(i64, Vec<u64>),
    /// Label and one map item; then record the object the item maps.
    Item(i64, SendItem, Option<u32>),
    /// One map item of memory given through the sigma0 protocol: where it
    /// lands is for the receiver's window to say (the hot-spot rule), so
    /// rtcr finds that out after the reply ([`Supervisor::place`]).
    Sigma0(SendItem, Grant),
    /// Nothing (send-only operations).
    None,
}

pub(crate) use crate::state::Grant;

/// Longest line of the child's output rtcr holds back for its end.
const LOG_LINE_MAX: usize = 400;

fn err(e: Errno) -> Reply {
    Reply::Words(-e.value(), Vec::new())
}

fn ok(words: &[u64]) -> Reply {
    Reply::Words(0, words.to_vec())
}

impl Supervisor {
    pub(crate) fn dispatch<E: Env>(&mut self, env: &mut E, svc: Service, idx: u32, tag: MsgTag) -> Reply {
        if crate::direct_ipc::is_direct(svc, tag) {
            return self.direct_ipc(env, idx, tag);
        }
        let w = tag.words().min(63);
        let mr: Vec<u64> = env.utcb().mr[..(w + 2 * tag.items()).min(63)].to_vec();
        match svc {
            Service::Factory if tag.label() == Protocol::Factory.label() => self.factory(env, &mr, tag),
            Service::Thread if tag.label() == Protocol::Thread.label() => self.thread_op(env, idx, &mr, tag),
            Service::Scheduler if tag.label() == Protocol::Scheduler.label() => self.sched_op(env, &mr, tag),
            Service::Log if tag.label() == Protocol::Log.label() => self.log_op(env, &mr, tag),
            Service::Icu if tag.label() == Protocol::Irq.label() => self.icu_op(env, &mr, tag),
            Service::Irq => self.irq_op(env, idx, &mr, tag),
            Service::Task if tag.label() == Protocol::Task.label() => self.task_op(env, &mr, tag),
            Service::Pager => self.pager(env, &mr, tag),
            Service::Rm | Service::MemAlloc | Service::Dataspace | Service::Namespace | Service::Parent => {
                self.l4re_op(env, svc, idx, &mr, tag)
            }
            _ => err(Errno::BadProto),
        }
    }

    /// The map item that gives the child a capability for `obj` (its view,
    /// with its rights; a gate's server interface where it has one).
    pub(crate) fn cap_item(&self, obj: u32) -> SendItem {
        let o = self.objects[obj as usize];
        let attr = if o.server { ObjAttr::IPCGATE_SVR } else { ObjAttr::empty() };
        SendItem::map_obj(
            CapIdx(0),
            Fpage::obj(o.child_view, 0, CapRights::from_bits_truncate(o.rights as u64)),
            attr,
            false,
        )
    }

    /// A message the IRQ fast path handed on ([`crate::fast_path`]): the
    /// child's tag and label, then its message registers as they came.
    pub(crate) fn forwarded<E: Env>(&mut self, env: &mut E, tag: MsgTag) -> Reply {
        let w = tag.words().min(63);
        if w < 2 {
            return err(Errno::Inval);
        }
        let mr = env.utcb().mr[..w].to_vec();
        match labels::decode(mr[1]) {
            Some((Service::Irq, o)) => match self.irq_op(env, o, &mr[2..], MsgTag(mr[0])) {
                // the fast path waits for an answer
                Reply::None => ok(&[]),
                r => r,
            },
            _ => err(Errno::Inval),
        }
    }

    /// The object a LOCAL_ID item names (`k`-th item), if it is one of ours.
    pub(crate) fn item_label(&self, mr: &[u64], tag: MsgTag, k: usize) -> Option<(Service, u32)> {
        let at = tag.words() + 2 * k;
        let it = RcvItem { control: *mr.get(at)?, data: *mr.get(at + 1)? };
        if it.kind() != RcvKind::LocalId {
            return None;
        }
        labels::decode(it.data)
    }

    fn item_thread(&self, mr: &[u64], tag: MsgTag, k: usize) -> Option<u32> {
        match self.item_label(mr, tag, k)? {
            (Service::Thread, t) if (t as usize) < self.threads.len() => Some(t),
            _ => None,
        }
    }

    // ---- factory -------------------------------------------------------------

    fn factory<E: Env>(&mut self, env: &mut E, mr: &[u64], tag: MsgTag) -> Reply {
        if tag.words() < 1 {
            return err(Errno::MsgTooShort);
        }
        let ty = mr[0] as i64;
        let supported = [Protocol::Thread.label(), 0, -10, Protocol::IrqSender.label(), Protocol::Semaphore.label()];
        if !supported.contains(&ty) {
            // tasks, factories, VMs…: not for a supervised child
            return err(Errno::Perm);
        }
        if self.created >= self.spec.max_objects {
            return err(Errno::NoMem);
        }
        let r = match ty {
            x if x == Protocol::Thread.label() => self.create_thread_for_child(env),
            0 | -10 => {
                let label = if tag.words() >= 3 { mr[2] } else { 0 };
                let bound = if tag.items() >= 1 {
                    match self.item_thread(mr, tag, 0) {
                        Some(t) => Some(t),
                        None => return err(Errno::Inval),
                    }
                } else {
                    None
                };
                if bound.is_some() && label & 3 != 0 {
                    return err(Errno::Inval);
                }
                self.create_gate_for_child(env, bound.map(|b| (b, label)))
            }
            x if x == Protocol::IrqSender.label() => self.create_irq_for_child(env),
            x if x == Protocol::Semaphore.label() => self.create_semaphore_for_child(env),
            // tasks, factories, VMs…: not for a supervised child
            _ => return err(Errno::Perm),
        };
        match r {
            Ok(obj) => {
                self.created += 1;
                Reply::Item(0, self.cap_item(obj), Some(obj))
            }
            Err(crate::Error::Quota(_)) => err(Errno::NoMem),
            Err(crate::Error::Kernel(l4_sys::Error::Kernel(e))) => err(e),
            Err(_) => err(Errno::NoMem),
        }
    }

    fn create_thread_for_child<E: Env>(&mut self, env: &mut E) -> Result<u32, crate::Error> {
        let t = self.new_thread(env, None)?;
        Ok(self.threads[t as usize].obj)
    }

    pub(crate) fn create_gate_for_child<E: Env>(
        &mut self,
        env: &mut E,
        bind: Option<(u32, u64)>,
    ) -> Result<u32, crate::Error> {
        let s = self.slot();
        let b = bind.map(|(t, l)| (self.thread_cap(t), l));
        factory::create_gate(env, FACTORY, s, b)?;
        self.add_obj(Obj {
            kind: ObjKind::Gate { label: bind.map(|b| b.1).unwrap_or(0), bound: bind.map(|b| b.0) },
            cap: s,
            child_view: s,
            rights: 7,
            server: true,
        })
    }

    pub(crate) fn create_irq_for_child<E: Env>(&mut self, env: &mut E) -> Result<u32, crate::Error> {
        let s = self.slot();
        factory::create_irq(env, FACTORY, s)?;
        let o = self.add_obj(Obj {
            kind: ObjKind::Irq { label: 0, bound: None, hw: None },
            cap: s,
            child_view: s,
            rights: 7,
            server: false,
        })?;
        let proxy = match self.spec.fast_path {
            Some((fast, _)) => self.gate_bound(env, Cap::new(CapIdx(fast)), labels::irq_proxy_label(o, s))?,
            None => self.service_gate(env, Service::Irq, o)?,
        };
        self.objects[o as usize].child_view = proxy;
        Ok(o)
    }

    fn create_semaphore_for_child<E: Env>(&mut self, env: &mut E) -> Result<u32, crate::Error> {
        let s = self.slot();
        factory::create_semaphore(env, FACTORY, s)?;
        self.add_obj(Obj { kind: ObjKind::Semaphore, cap: s, child_view: s, rights: 7, server: false })
    }

    // ---- thread proxy ---------------------------------------------------------------

    fn thread_op<E: Env>(&mut self, env: &mut E, t: u32, mr: &[u64], tag: MsgTag) -> Reply {
        if t as usize >= self.threads.len() || tag.words() < 1 {
            return err(Errno::Inval);
        }
        let real = self.thread_cap(t);
        match mr[0] & 0xffff {
            0 => {
                if tag.words() < 6 {
                    return err(Errno::Inval);
                }
                let flags = mr[0];
                if flags & 0x0020_0000 != 0 {
                    // bind: only to the child's own task
                    match self.item_label(mr, tag, 0) {
                        Some((Service::Task, _)) => {}
                        _ => return err(Errno::Inval),
                    }
                    if self.threads[t as usize].bound {
                        return err(Errno::Inval);
                    }
                    let pager = if flags & 0x0001_0000 != 0 { mr[1] >> 12 } else { 4 };
                    return match self.bind_thread(env, t, mr[5], pager) {
                        Ok(()) => ok(&[0, 0, 0]),
                        Err(crate::Error::Kernel(l4_sys::Error::Kernel(e))) => err(e),
                        Err(_) => err(Errno::Inval),
                    };
                }
                // pager / exception handler of a bound thread: the pager may
                // change, the exception handler stays rtcr's
                let mut c = thread::Control::new();
                if flags & 0x0001_0000 != 0 {
                    c = c.pager(CapIdx(mr[1] >> 12));
                }
                match thread::control(env, real, &c) {
                    Ok(()) => {
                        if flags & 0x0001_0000 != 0 {
                            self.threads[t as usize].pager = mr[1] >> 12;
                        }
                        ok(&[0, 0, 0])
                    }
                    Err(l4_sys::Error::Kernel(e)) => err(e),
                    Err(_) => err(Errno::Inval),
                }
            }
            1 => {
                if tag.words() != 3 {
                    return err(Errno::Inval);
                }
                let flags = l4_sys::thread::ExRegsFlags::from_bits_truncate(mr[0] & !0xffff);
                match thread::ex_regs(env, real, mr[1], mr[2], flags) {
                    Ok(o) => {
                        if mr[1] != !0 {
                            self.threads[t as usize].started = true;
                        }
                        ok(&[o.flags, o.ip, o.sp])
                    }
                    Err(l4_sys::Error::Kernel(e)) => err(e),
                    Err(_) => err(Errno::Inval),
                }
            }
            2 => ok(&[]),
            3 => match thread::stats_time(env, real) {
                Ok(us) => ok(&[us]),
                Err(_) => err(Errno::Inval),
            },
            0x12 if self.arch == l4_sys::exc::Arch::Amd64 && tag.words() >= 2 => {
                let seg = if (mr[0] >> 16) & 0xff == 1 { thread::Segment::Gs } else { thread::Segment::Fs };
                match thread::amd64_set_segment_base(env, real, seg, mr[1]) {
                    Ok(()) => ok(&[]),
                    Err(_) => err(Errno::Inval),
                }
            }
            _ => err(Errno::NoSys),
        }
    }

    // ---- scheduler -----------------------------------------------------------------

    fn sched_op<E: Env>(&mut self, env: &mut E, mr: &[u64], tag: MsgTag) -> Reply {
        if tag.words() < 1 {
            return err(Errno::MsgTooShort);
        }
        match mr[0] {
            0 => match scheduler::info(
                env,
                Cap::new(base::SCHEDULER),
                scheduler::CpuSet { gran_offset: mr.get(1).copied().unwrap_or(0), map: 0 },
            ) {
                Ok(i) => ok(&[i.cpus, i.cpu_max, i.classes]),
                Err(_) => err(Errno::Inval),
            },
            1 => {
                if tag.words() < 5 {
                    return err(Errno::Inval);
                }
                let Some(t) = self.item_thread(mr, tag, 0) else { return err(Errno::Inval) };
                if mr[3] == 0 {
                    return err(Errno::Inval);
                }
                let set = scheduler::CpuSet { gran_offset: mr[1], map: mr[2] };
                match self.run_thread(env, t, mr[3], mr[4], set) {
                    Ok(()) => ok(&[]),
                    Err(_) => err(Errno::Inval),
                }
            }
            // a CPU's idle time: the kernel's answer as it is
            2 => {
                if tag.words() < 3 {
                    return err(Errno::Inval);
                }
                let set = scheduler::CpuSet { gran_offset: mr[1], map: mr[2] };
                match scheduler::idle_time(env, Cap::new(base::SCHEDULER), set) {
                    Ok(t) => ok(&[t]),
                    Err(_) => err(Errno::Inval),
                }
            }
            _ => err(Errno::NoSys),
        }
    }

    // ---- log -----------------------------------------------------------------------

    /// The log, a Vcon (`l4sys/include/vcon.h`): writes go to rtcr's
    /// log with the child's name; the attributes the child sets are kept
    /// and given back; a read finds nothing (the child has no input).
    fn log_op<E: Env>(&mut self, env: &mut E, mr: &[u64], tag: MsgTag) -> Reply {
        if tag.words() < 1 {
            return Reply::None;
        }
        match mr[0] & 0xffff {
            log::WRITE_OP => {}
            log::READ_OP => return ok(&[log::READ_STAT_DONE]),
            log::SET_ATTR_OP if tag.words() >= 4 => {
                self.vcon_attr.copy_from_slice(&mr[1..4]);
                return ok(&[]);
            }
            log::GET_ATTR_OP => {
                let [i, o, l] = self.vcon_attr;
                return ok(&[0, i, o, l]);
            }
            _ => return err(Errno::NoSys),
        }
        if tag.words() < 2 {
            return Reply::None;
        }
        let len = mr[1] as usize;
        if len > log::WRITE_MAX || tag.words() < 2 + len.div_ceil(8) {
            return Reply::None;
        }
        self.log_buf.extend(mr[2..2 + len.div_ceil(8)].iter().flat_map(|w| w.to_le_bytes()).take(len));
        // whole lines, each with the child's name (printf writes a line in
        // pieces); a line longer than a log write goes out in parts
        while let Some(end) = self
            .log_buf
            .iter()
            .position(|&b| b == b'\n')
            .or((self.log_buf.len() > LOG_LINE_MAX).then_some(LOG_LINE_MAX))
        {
            let rest = self.log_buf.split_off((end + 1).min(self.log_buf.len()));
            let mut line: Vec<u8> = Vec::with_capacity(self.log_buf.len() + self.spec.name.len() + 2);
            line.extend_from_slice(self.spec.name.as_bytes());
            line.extend_from_slice(b": ");
            line.append(&mut self.log_buf);
            self.log_buf = rest;
            let _ = log::write(env, Cap::new(base::LOG), &line);
        }
        Reply::None
    }

    // ---- ICU -----------------------------------------------------------------------

    fn icu_op<E: Env>(&mut self, env: &mut E, mr: &[u64], tag: MsgTag) -> Reply {
        if tag.words() < 1 {
            return err(Errno::MsgTooShort);
        }
        let icu_cap = Cap::<kind::Icu>::new(base::ICU);
        match mr[0] {
            0 | 1 => {
                if tag.words() < 2 {
                    return err(Errno::Inval);
                }
                let Some((Service::Irq, o)) = self.item_label(mr, tag, 0) else { return err(Errno::Inval) };
                let Some(ObjKind::Irq { label, bound, .. }) = self.objects.get(o as usize).map(|x| x.kind) else {
                    return err(Errno::Inval);
                };
                let cap = Cap::new(self.objects[o as usize].cap);
                let line = mr[1];
                let r = if mr[0] == 0 {
                    icu::bind(env, icu_cap, line, cap).map(|v| v as i64)
                } else {
                    icu::unbind(env, icu_cap, line, cap).map(|_| 0)
                };
                match r {
                    Ok(v) => {
                        let hw = if mr[0] == 0 { Some(line as u32) } else { None };
                        self.objects[o as usize].kind = ObjKind::Irq { label, bound, hw };
                        Reply::Words(v, Vec::new())
                    }
                    Err(l4_sys::Error::Kernel(e)) => err(e),
                    Err(_) => err(Errno::Inval),
                }
            }
            2 => match icu::info(env, icu_cap) {
                Ok(i) => ok(&[i.features, i.nr_irqs, i.nr_msis]),
                Err(_) => err(Errno::Inval),
            },
            4 if tag.words() >= 2 => {
                let _ = icu::unmask(env, icu_cap, mr[1]);
                Reply::None
            }
            5 if tag.words() >= 2 => {
                let _ = icu::mask(env, icu_cap, mr[1]);
                Reply::None
            }
            _ => err(Errno::NoSys),
        }
    }

    // ---- IRQ proxy -----------------------------------------------------------------

    fn irq_op<E: Env>(&mut self, env: &mut E, o: u32, mr: &[u64], tag: MsgTag) -> Reply {
        let Some(ObjKind::Irq { label, bound, hw }) = self.objects.get(o as usize).map(|x| x.kind) else {
            return err(Errno::Inval);
        };
        let cap: Cap<kind::Irq> = Cap::new(self.objects[o as usize].cap);
        let l = tag.label();
        if l == Protocol::Kobject.label() && tag.words() >= 2 && mr[0] == 0x10 {
            let Some(t) = self.item_thread(mr, tag, 0) else { return err(Errno::Inval) };
            return match irq::bind_thread(env, cap, self.thread_cap(t), mr[1]) {
                Ok(()) => {
                    self.objects[o as usize].kind = ObjKind::Irq { label: mr[1], bound: Some(t), hw };
                    ok(&[])
                }
                Err(l4_sys::Error::Kernel(e)) => err(e),
                Err(_) => err(Errno::Inval),
            };
        }
        if l == Protocol::IrqSender.label() && tag.words() >= 1 && mr[0] == 1 {
            return match irq::detach(env, cap) {
                Ok(r) => {
                    self.objects[o as usize].kind = ObjKind::Irq { label, bound: None, hw };
                    Reply::Words(if r == irq::DetachResult::WasPending { 1 } else { 0 }, Vec::new())
                }
                Err(_) => err(Errno::Inval),
            };
        }
        if l == Protocol::Irq.label() {
            if tag.words() == 0 {
                let _ = irq::trigger(env, cap);
                return Reply::None;
            }
            if mr[0] == 4 {
                let _ = irq::unmask(env, cap);
                return Reply::None;
            }
        }
        let _ = bound;
        err(Errno::NoSys)
    }

    // ---- the child's own task ----------------------------------------------------------

    fn task_op<E: Env>(&mut self, env: &mut E, mr: &[u64], tag: MsgTag) -> Reply {
        if tag.words() < 1 {
            return err(Errno::MsgTooShort);
        }
        let ct = self.child_task();
        match (mr[0], tag.words()) {
            (2, 2) => match task::cap_valid(env, ct, CapIdx(mr[1] >> 12)) {
                Ok(v) => Reply::Words(v as i64, Vec::new()),
                Err(_) => err(Errno::Inval),
            },
            (2, 3) => match task::cap_equal(env, ct, CapIdx(mr[1] >> 12), CapIdx(mr[2] >> 12)) {
                Ok(v) => Reply::Words(v as i64, Vec::new()),
                Err(_) => err(Errno::Inval),
            },
            (1, n) if n >= 2 => {
                // capabilities only: memory is rtcr's to manage
                let mask = mr[1] & 0x8000_0000; // never DELETE_OBJ: rtcr keeps the objects
                let mut out = alloc::vec![1u64, mr[1]];
                let mut fps = Vec::new();
                for &f in &mr[2..n] {
                    let fp = Fpage(f);
                    if fp.ty() != FpageType::Obj {
                        return err(Errno::Perm);
                    }
                    fps.push(fp);
                    out.push(f & !0xf);
                }
                for fp in &fps {
                    let order = fp.order().min(16);
                    let start = fp.cap_idx().0 & !((1u64 << order) - 1);
                    for s in start..start + (1u64 << order) {
                        if s >= PRIV_BASE || s == 0 {
                            continue;
                        }
                        if fp.rights() & 4 != 0 && mask != 0 && task::release_cap(env, ct, CapIdx(s)).is_ok() {
                            self.caps.remove(&s);
                        }
                    }
                }
                Reply::Words(0, out)
            }
            (0, 3) => {
                // map within its own space (capabilities only)
                match self.item_label(mr, tag, 0) {
                    Some((Service::Task, _)) => {}
                    _ => return err(Errno::Inval),
                }
                let fp = Fpage(mr[2]);
                if fp.ty() != FpageType::Obj || fp.order() != 0 {
                    return err(Errno::Perm);
                }
                let (src, dst) = (fp.cap_idx().0, mr[1] >> 12);
                let Some(rec) = self.caps.get(&src).copied() else { return ok(&[]) };
                if dst >= PRIV_BASE || dst == 0 {
                    return err(Errno::Inval);
                }
                let it = SendItem { control: mr[1], fpage: fp };
                match task::map(env, ct, ct, it) {
                    Ok(()) => {
                        let rights = rec.rights & fp.rights() as u8;
                        self.caps.insert(
                            dst,
                            crate::state::CapRec { rights, server: rec.server && mr[1] & 0x20 != 0, ..rec },
                        );
                        ok(&[])
                    }
                    Err(_) => err(Errno::Inval),
                }
            }
            _ => err(Errno::Perm),
        }
    }

    // ---- pager (page faults, sigma0 protocol) ------------------------------------------------

    fn pager<E: Env>(&mut self, env: &mut E, mr: &[u64], tag: MsgTag) -> Reply {
        if tag.label() == Protocol::PageFault.label() && tag.words() >= 2 {
            let addr = mr[0] & !7;
            let write = mr[0] & 2 != 0;
            return match self.resolve_fault(env, addr, write) {
                Some(item) => Reply::Item(0, item, None),
                None => err(Errno::Fault),
            };
        }
        if tag.label() == Protocol::Sigma0.label() {
            return match l4_sys::sigma0::Request::decode(tag.words(), mr) {
                Some(l4_sys::sigma0::Request::Kip) => match self.kip_item(env) {
                    Some(it) => Reply::Sigma0(it, Grant::Kip),
                    None => err(Errno::NoSys),
                },
                Some(l4_sys::sigma0::Request::AnyRam { order }) => match self.sigma0_any(env, order) {
                    Some(it) => Reply::Sigma0(it, Grant::Ram),
                    None => err(Errno::NoMem),
                },
                // given physical RAM, device memory: not for a supervised child
                _ => err(Errno::NoMem),
            };
        }
        err(Errno::BadProto)
    }

    /// The page for a fault at `addr`, or `None` when the child may not touch it.
    pub(crate) fn resolve_fault<E: Env>(&mut self, env: &mut E, addr: u64, write: bool) -> Option<SendItem> {
        let vpn = addr >> 12;
        if let Some(p) = self.pages.get(&vpn).copied() {
            if write && p.rights & 2 == 0 {
                return None;
            }
            let mut p = p;
            if write {
                // copy on write: the last cut's contents go to the shadow first
                if self.pending.remove(&vpn) && self.copy_to_shadow(env, vpn).is_err() {
                    return None;
                }
                p.writable = true;
                p.dirty = true;
                self.dirty.insert(vpn);
            }
            self.pages.insert(vpn, p);
            let rights = if p.writable { p.rights } else { p.rights & !2 };
            return Some(SendItem::map_mem(
                vpn << 12,
                Fpage::mem(p.backing, 12, MemRights::from_bits_truncate(rights as u64)),
                Cache::Keep,
                false,
            ));
        }
        if let Some(r) = self.rm.lookup(addr).copied() {
            return self.region_fault(env, &r, addr, write);
        }
        let Some(region) = self.spec.regions.iter().find(|r| addr >= r.start && addr < r.start + r.len).copied() else {
            // the KIP where the kernel has it: a child asked for it before
            // a restore, and the restored child reads it on (the KIP is the
            // kernel's page, never part of an image)
            return if write { None } else { self.kip_fault(env, vpn) };
        };
        if write && region.rights & 2 == 0 {
            return None;
        }
        if self.pages.len() >= self.spec.max_pages as usize {
            return None;
        }
        let b = self.frame(env).ok()?;
        self.pages.insert(vpn, Page { backing: b, rights: region.rights, writable: true, dirty: true });
        self.dirty.insert(vpn);
        Some(SendItem::map_mem(
            vpn << 12,
            Fpage::mem(b, 12, MemRights::from_bits_truncate(region.rights as u64)),
            Cache::Keep,
            false,
        ))
    }

    /// A sigma0 "any RAM" request: fresh frames, contiguous in rtcr's space
    /// (to go as one fpage), sent with the hot spot at the next free address
    /// of the child's sigma0 range. A child that receives into the whole
    /// address space (as a root task does) gets them there; a smaller
    /// window puts them where the window says — [`Supervisor::place`]
    /// records them where they land.
    fn sigma0_any<E: Env>(&mut self, env: &mut E, order: u32) -> Option<SendItem> {
        if !(12..=16).contains(&order) {
            return None;
        }
        let n = 1u64 << (order - 12);
        if self.pages.len() as u64 + n > self.spec.max_pages as u64 {
            return None;
        }
        let size = 1u64 << order;
        let va = (self.sigma0_next + size - 1) & !(size - 1);
        if va + size > self.spec.sigma0_range.0 + self.spec.sigma0_range.1 {
            return None;
        }
        // the frames must be contiguous in rtcr's space to go as one fpage
        let first = (self.frames_next + size - 1) & !(size - 1);
        self.frames_next = first;
        for i in 0..n {
            let b = self.fresh_frame(env).ok()?;
            debug_assert_eq!(b, first + 4096 * i);
        }
        self.sigma0_next = va + size;
        Some(SendItem::map_mem(va, Fpage::mem(first, order, MemRights::RWX), Cache::Keep, false))
    }

    /// Records memory the child got through the sigma0 protocol at the
    /// child's addresses: `item` was sent and landed through the receive
    /// `window` (or, unknown, at the hot spot, as a whole-space window puts it).
    pub(crate) fn record_grant(&mut self, item: SendItem, grant: Grant, window: Option<Fpage>) {
        let sent = item.fpage;
        let hot = item.snd_base();
        let whole = (sent.addr(), hot & !((1u64 << sent.order().min(63)) - 1), sent.order());
        let (src, dst, order) = window.and_then(|w| l4_sys::item::map_target(sent, hot, w)).unwrap_or(whole);
        match grant {
            Grant::Kip => {
                self.kip_at.insert(dst >> 12);
            }
            Grant::Ram => {
                let n = 1u64 << (order.max(12) - 12);
                for i in 0..n {
                    let vpn = (dst >> 12) + i;
                    self.pages.insert(vpn, Page { backing: src + 4096 * i, rights: 7, writable: true, dirty: true });
                    self.dirty.insert(vpn);
                }
                // frames of the item the window did not take are free again
                let all = 1u64 << (sent.order().max(12) - 12);
                for i in 0..all {
                    let b = sent.addr() + 4096 * i;
                    if b < src || b >= src + 4096 * n {
                        self.free_frames.push(b);
                    }
                }
            }
        }
    }

    /// The KIP for a read fault on its page (at its physical address, where
    /// the sigma0 protocol maps it).
    fn kip_fault<E: Env>(&mut self, env: &mut E, vpn: u64) -> Option<SendItem> {
        let (va, phys) = match self.kip {
            Some(k) => k,
            None => {
                self.kip_item(env)?;
                self.kip?
            }
        };
        if phys >> 12 == vpn || self.kip_at.contains(&vpn) {
            Some(SendItem::map_mem(vpn << 12, Fpage::mem(va, 12, MemRights::RX), Cache::Keep, false))
        } else {
            None
        }
    }

    fn kip_item<E: Env>(&mut self, env: &mut E) -> Option<SendItem> {
        if self.kip.is_none() {
            let va = self.frames_next;
            let phys =
                l4_sys::sigma0::map_kip(env, Cap::new(base::PAGER), Fpage::mem(va, 12, MemRights::empty())).ok()?;
            self.frames_next += 4096;
            self.kip = Some((va, phys));
        }
        let (va, phys) = self.kip?;
        Some(SendItem::map_mem(phys, Fpage::mem(va, 12, MemRights::RX), Cache::Keep, false))
    }
}
