//! The supervisor: the child's task, the objects rtcr holds for it, the
//! online state, and the server loop.
//!
//! Everything the child holds is a mapping of something rtcr holds: the
//! service gates in slots 1–7, a proxy gate per thread and per IRQ, the real
//! IPC gates and semaphores the child created, and every page of its memory
//! (frames rtcr owns, mapped into the child). So rtcr can read all of it
//! back, and a restore can rebuild it slot by slot.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use l4_sys::cap::{base, kind, Cap, CapIdx};
use l4_sys::exc::Arch;
use l4_sys::fpage::{CapRights, Fpage, MemRights};
use l4_sys::item::{rcv_single_cap_local_id, Cache, ObjAttr, SendItem};
use l4_sys::scheduler::SchedParam;
use l4_sys::thread::{Control, ExRegsFlags};
use l4_sys::{factory, ipc, scheduler, sigma0, task, thread, MsgTag, Timeout, TimeoutPair};

use crate::labels::{self, Service};
use crate::state::{
    child_fault, CapRec, Obj, ObjKind, Page, ThreadRec, FACTORY, ME, NO_DONATION, SCHED, SCRATCH, SCRATCH_2, SIGMA0,
};
pub use crate::state::{ChildSpec, CpuMove, Region, ServeOutcome, Supervisor, PRIV_BASE, RTCR_CPU, RTCR_PRIO};
use crate::{Env, Error};

/// Who got a sigma0-protocol reply, as far as rtcr can tell
/// ([`Supervisor::find_window`]).
pub(crate) enum Caller {
    /// Found: its receive window (`None`: the whole space).
    Found(Option<Fpage>),
    /// Cannot be told: the memory is recorded at the hot spot.
    Unknown,
    /// During a cut, a thread the cut holds or waits for: placed when it
    /// ends.
    Later,
}

impl Supervisor {
    /// A supervisor of no child (stands in while one is replaced).
    pub fn placeholder(spec: ChildSpec, arch: Arch) -> Self {
        Self::new(spec, arch)
    }

    pub(crate) fn new_for_restore(spec: ChildSpec, arch: Arch) -> Self {
        Self::new(spec, arch)
    }

    fn new(spec: ChildSpec, arch: Arch) -> Self {
        let sigma0_next = spec.sigma0_range.0;
        Supervisor {
            next_slot: spec.rtcr_slots,
            frames_next: spec.rtcr_mem,
            free_frames: Vec::new(),
            spec,
            arch,
            child_task: CapIdx(0),
            objects: Vec::new(),
            caps: BTreeMap::new(),
            threads: Vec::new(),
            pages: BTreeMap::new(),
            shadow: BTreeMap::new(),
            dirty: crate::pageset::PageSet::new(),
            pending: alloc::collections::BTreeSet::new(),
            scan_hint: 8,
            irq_pending: alloc::collections::BTreeSet::new(),
            kip: None,
            kip_at: alloc::collections::BTreeSet::new(),
            placing: false,
            exchange: Vec::new(),
            tramp: 0,
            created: 0,
            sigma0_next,
            crash_pending: None,
            cutting: false,
            early: Vec::new(),
            cut_resumed: Vec::new(),
            unplaced: Vec::new(),
            visible_cancels: 0,
            direct_lost: 0,
            restore_phases: Vec::new(),
            restore_map_us: 0,
            restore_unmap_us: 0,
            restore_kept_pages: 0,
            restore_in_place: false,
            rm: crate::regions::RegionMap::default(),
            dataspaces: Vec::new(),
            ds_loose: BTreeMap::new(),
            vcon_attr: [0; 3],
            log_buf: Vec::new(),
            exited: None,
            unserved: Vec::new(),
            online: 1 << RTCR_CPU,
            moved: Vec::new(),
            crash_site: None,
            seq: 0,
            served: 0,
        }
    }

    /// Allocates one of rtcr's own slots.
    pub(crate) fn slot(&mut self) -> CapIdx {
        let s = CapIdx(self.next_slot);
        self.next_slot += 1;
        s
    }

    /// The rtcr thread that serves this child.
    pub(crate) fn server(&self) -> Cap<kind::Thread> {
        Cap::new(CapIdx(self.spec.server_thread))
    }

    /// The child task, as a capability in rtcr's space.
    pub fn child_task(&self) -> Cap<kind::Task> {
        Cap::new(self.child_task)
    }

    /// The child's capability table as rtcr recorded it: (slot, object kind name, rights).
    pub fn recorded_slots(&self) -> Vec<(u64, &'static str, u8)> {
        self.caps
            .iter()
            .map(|(s, c)| {
                let k = match self.objects[c.obj as usize].kind {
                    ObjKind::Service(..) => "service",
                    ObjKind::Thread(_) => "thread",
                    ObjKind::Gate { .. } => "gate",
                    ObjKind::Irq { .. } => "irq",
                    ObjKind::Semaphore => "semaphore",
                    ObjKind::Dataspace(_) => "dataspace",
                };
                (*s, k, c.rights)
            })
            .collect()
    }

    /// Checks the child's capability space against the record, slot by
    /// slot (the recorded slots, each thread's exception gate and its real
    /// capability for IPC to it): each must
    /// hold a capability (`cap_valid`), and that capability, mapped back into
    /// rtcr, must equal (`cap_equal`: same object, same W/S rights, same
    /// client/server interface) the one rtcr maps from its own object with
    /// the recorded rights. Returns (slots that check out, slots checked).
    pub fn verify_slots<E: Env>(&mut self, env: &mut E) -> Result<(usize, usize), Error> {
        let mut expect: Vec<(u64, CapIdx, u8, bool)> =
            self.caps.iter().map(|(s, c)| (*s, self.objects[c.obj as usize].child_view, c.rights, c.server)).collect();
        expect.extend(self.threads.iter().map(|t| (t.exc_slot, t.exc_gate, 7, false)));
        // and each thread's real capability, for IPC to it (crate::direct_ipc)
        expect.extend(
            self.threads
                .iter()
                .enumerate()
                .map(|(i, t)| (crate::direct_ipc::DIRECT_BASE + i as u64, self.objects[t.obj as usize].cap, 4, false)),
        );
        let mut good = 0;
        for &(slot, view, rights, server) in &expect {
            if !task::cap_valid(env, self.child_task(), CapIdx(slot))? {
                continue;
            }
            let all = CapRights::all();
            // with the server attribute, so a server capability stays one
            // (a map never adds what the source does not have)
            let back = SendItem::map_obj(SCRATCH, Fpage::obj(CapIdx(slot), 0, all), ObjAttr::IPCGATE_SVR, false);
            task::map(env, ME, self.child_task(), back)?;
            let attr = if server { ObjAttr::IPCGATE_SVR } else { ObjAttr::empty() };
            let rights = CapRights::from_bits_truncate(rights as u64);
            let ours = SendItem::map_obj(SCRATCH_2, Fpage::obj(view, 0, rights), attr, false);
            task::map(env, ME, ME, ours)?;
            if task::cap_equal(env, ME, SCRATCH, SCRATCH_2)? {
                good += 1;
            }
            task::release_cap(env, ME, SCRATCH)?;
            task::release_cap(env, ME, SCRATCH_2)?;
        }
        Ok((good, expect.len()))
    }

    /// rtcr's addresses of every frame it maps into the child (its memory,
    /// the trampoline, the exchange pages, the KIP): what the child may see.
    pub fn frames_given(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self.pages.values().map(|p| p.backing).collect();
        v.extend(self.exchange.iter().copied());
        v.push(self.tramp);
        if let Some((va, _)) = self.kip {
            v.push(va);
        }
        v
    }

    /// rtcr's own slots of the objects it holds for the child (the objects
    /// and the capabilities the child is given for them).
    pub fn held_slots(&self) -> Vec<CapIdx> {
        let mut v: Vec<CapIdx> = self.objects.iter().flat_map(|o| [o.cap, o.child_view]).collect();
        v.extend(self.threads.iter().map(|t| t.exc_gate));
        v.push(self.child_task);
        v.sort();
        v.dedup();
        v
    }

    /// Number of pages of child memory.
    pub fn page_count(&self) -> usize {
        self.pages.len()
    }

    pub(crate) fn add_obj(&mut self, o: Obj) -> Result<u32, Error> {
        // the child's own objects are limited in `factory`; this bounds
        // everything rtcr holds for it (services, proxies) as well
        if self.objects.len() >= 2 * self.spec.max_objects as usize + 4 * self.spec.max_threads as usize + 16 {
            return Err(Error::Quota("objects"));
        }
        self.objects.push(o);
        Ok(self.objects.len() as u32 - 1)
    }

    /// A gate bound to rtcr's main thread that stands for `service`/`index`.
    pub(crate) fn service_gate<E: Env>(&mut self, env: &mut E, service: Service, index: u32) -> Result<CapIdx, Error> {
        self.gate_bound(env, self.server(), labels::label(service, index))
    }

    /// A new gate of rtcr's, bound to rtcr's thread `to` with `label`.
    pub(crate) fn gate_bound<E: Env>(
        &mut self,
        env: &mut E,
        to: Cap<kind::Thread>,
        label: u64,
    ) -> Result<CapIdx, Error> {
        let s = self.slot();
        factory::create_gate(env, FACTORY, s, Some((to, label)))?;
        Ok(s)
    }

    /// Maps rtcr's `src` into the child's slot `dst`.
    pub(crate) fn give_cap<E: Env>(
        &mut self,
        env: &mut E,
        src: CapIdx,
        dst: u64,
        rights: u8,
        server: bool,
    ) -> Result<(), Error> {
        let attr = if server { ObjAttr::IPCGATE_SVR } else { ObjAttr::empty() };
        let rights = CapRights::from_bits_truncate(rights as u64);
        let it = SendItem::map_obj(CapIdx(dst), Fpage::obj(src, 0, rights), attr, false);
        task::map(env, self.child_task(), ME, it)?;
        Ok(())
    }

    /// A zeroed frame for the child: one a destroyed child left, or a new
    /// one from sigma0.
    pub(crate) fn frame<E: Env>(&mut self, env: &mut E) -> Result<u64, Error> {
        match self.free_frames.pop() {
            Some(va) => {
                env.write_mem(va, &[0u8; 4096])?;
                Ok(va)
            }
            None => self.fresh_frame(env),
        }
    }

    /// A frame from sigma0, mapped in rtcr at the next free address of its
    /// range (so consecutive calls give contiguous frames).
    pub(crate) fn fresh_frame<E: Env>(&mut self, env: &mut E) -> Result<u64, Error> {
        let va = self.frames_next;
        sigma0::map_any(env, SIGMA0, 12, Fpage::mem(va, 12, MemRights::empty()))?;
        self.frames_next += 4096;
        // frames from sigma0 are not necessarily zero
        env.write_mem(va, &[0u8; 4096])?;
        Ok(va)
    }

    /// How far into its range rtcr has taken frames from sigma0 (bytes).
    pub fn frames_taken(&self) -> u64 {
        self.frames_next - self.spec.rtcr_mem
    }

    /// Maps page `vpn` into the child with `rights`.
    pub(crate) fn map_page<E: Env>(&mut self, env: &mut E, vpn: u64, backing: u64, rights: u8) -> Result<(), Error> {
        let it = SendItem::map_mem(
            vpn << 12,
            Fpage::mem(backing, 12, MemRights::from_bits_truncate(rights as u64)),
            Cache::Keep,
            false,
        );
        task::map(env, self.child_task(), ME, it)?;
        Ok(())
    }

    /// Creates the child's task, its service gates and first thread, loads
    /// its memory and starts it (the child contract, see the crate docs).
    pub fn spawn<E: Env>(env: &mut E, spec: ChildSpec) -> Result<Self, Error> {
        Self::spawn_into(env, spec, None)
    }

    /// [`Supervisor::spawn`] into the frames a destroyed child left.
    pub fn spawn_into<E: Env>(
        env: &mut E,
        spec: ChildSpec,
        frames: Option<crate::restore::Frames>,
    ) -> Result<Self, Error> {
        let mut s = Supervisor::new(spec, env.arch());
        if let Some(f) = frames {
            s.take_frames(f);
        }
        s.take_rtcr_cpu(env)?;
        s.create_task(env)?;
        s.create_services(env)?;
        s.create_l4re_services(env)?;
        if s.spec.l4re.is_some() {
            s.attach_initial_regions()?;
        }
        s.map_trampoline(env)?;
        let load = s.spec.load.clone();
        for (va, bytes, rights) in load {
            for (i, chunk) in bytes.chunks(4096).enumerate() {
                let vpn = (va >> 12) + i as u64;
                let b = s.frame(env)?;
                env.write_mem(b, chunk)?;
                s.map_page(env, vpn, b, rights)?;
                s.pages.insert(vpn, Page { backing: b, rights, writable: rights & 2 != 0, dirty: true });
                s.dirty.insert(vpn);
            }
        }
        let t = s.new_thread(env, Some(3))?;
        let utcb = s.spec.utcb_area.0;
        // an L4Re program's threads fault to its region map
        let pager = if s.spec.l4re.is_some() { crate::state::l4re_slots::RM } else { 4 };
        s.bind_thread(env, t, utcb, pager)?;
        let prio = s.spec.prio as u64;
        s.run_thread(env, t, prio, 0, scheduler::CpuSet::ALL)?;
        let flags = s.start_flags();
        let (entry, sp) = (s.spec.entry, s.spec.stack_top);
        let real = s.thread_cap(t);
        thread::ex_regs(env, real, entry, sp, flags)?;
        s.threads[t as usize].started = true;
        Ok(s)
    }

    pub(crate) fn start_flags(&self) -> ExRegsFlags {
        match self.arch {
            Arch::Amd64 => ExRegsFlags::empty(),
            Arch::Arm64 => ExRegsFlags::ARM64_SET_EL_EL0,
        }
    }

    pub(crate) fn create_task<E: Env>(&mut self, env: &mut E) -> Result<(), Error> {
        let slot = self.slot();
        let (a, o) = self.spec.utcb_area;
        factory::create_task(env, FACTORY, slot, Fpage::mem(a, o as u32, MemRights::empty()))?;
        self.child_task = slot;
        let name = self.spec.name.clone();
        if let Ok(true) = task::cap_valid(env, ME, base::DEBUGGER) {
            let _ = l4_sys::debugger::set_object_name(
                env,
                Cap::<kind::Debugger>::new(base::DEBUGGER),
                self.child_task(),
                &name,
            );
        }
        Ok(())
    }

    /// Slots 1, 2, 4, 5, 6, 7 of the contract (3 is the first thread's proxy).
    pub(crate) fn create_services<E: Env>(&mut self, env: &mut E) -> Result<(), Error> {
        for (slot, svc) in [
            (1, Service::Task),
            (2, Service::Factory),
            (4, Service::Pager),
            (5, Service::Log),
            (6, Service::Icu),
            (7, Service::Scheduler),
        ] {
            self.give_service(env, slot, svc)?;
        }
        Ok(())
    }

    /// A gate rtcr serves `svc` through, recorded and given to the child in
    /// `slot` (the root-task slots, and the L4Re environment's).
    pub(crate) fn give_service<E: Env>(&mut self, env: &mut E, slot: u64, svc: Service) -> Result<(), Error> {
        let g = self.service_gate(env, svc, 0)?;
        let o = self.add_obj(Obj {
            kind: ObjKind::Service(svc, labels::label(svc, 0)),
            cap: g,
            child_view: g,
            rights: 7,
            server: false,
        })?;
        self.give_cap(env, g, slot, 7, false)?;
        self.caps.insert(slot, CapRec { obj: o, rights: 7, server: false });
        Ok(())
    }

    /// The trampoline code and the exchange pages (not part of the image).
    pub(crate) fn map_trampoline<E: Env>(&mut self, env: &mut E) -> Result<(), Error> {
        let b = self.frame(env)?;
        if self.spec.trampoline_code.len() > 4096 {
            return Err(Error::Protocol("the trampoline does not fit a page"));
        }
        let code = self.spec.trampoline_code.clone();
        env.write_mem(b, &code)?;
        if !code.is_empty() {
            // the call stub (crate::calls) in the same page; on the model it is a program
            let stub = crate::calls::stub_code(self.arch);
            if code.len() as u64 > crate::calls::STUB_OFFSET {
                return Err(Error::Protocol("the trampoline overlaps the call stub"));
            }
            env.write_mem(b + crate::calls::STUB_OFFSET, stub)?;
        }
        self.map_page(env, self.spec.trampoline >> 12, b, 5)?;
        self.tramp = b;
        self.exchange.clear();
        for i in 0..self.spec.max_threads as u64 {
            let b = self.frame(env)?;
            self.map_page(env, (self.spec.shared >> 12) + i, b, 6)?;
            self.exchange.push(b);
        }
        Ok(())
    }

    /// rtcr's address of thread `i`'s exchange page.
    pub(crate) fn exchange_backing(&self, i: u32) -> u64 {
        self.exchange[i as usize]
    }

    /// Creates a thread (real object, proxy gate, exception gate); puts the
    /// proxy into child slot `slot` if given.
    pub(crate) fn new_thread<E: Env>(&mut self, env: &mut E, slot: Option<u64>) -> Result<u32, Error> {
        let idx = self.threads.len() as u32;
        if idx >= self.spec.max_threads {
            return Err(Error::Quota("threads"));
        }
        let real = self.slot();
        factory::create_thread(env, FACTORY, real)?;
        let proxy = self.service_gate(env, Service::Thread, idx)?;
        let exc = self.service_gate(env, Service::Exception, idx)?;
        let exc_slot = PRIV_BASE + idx as u64;
        self.give_cap(env, exc, exc_slot, 7, false)?;
        let o =
            self.add_obj(Obj { kind: ObjKind::Thread(idx), cap: real, child_view: proxy, rights: 7, server: false })?;
        self.threads.push(ThreadRec {
            obj: o,
            utcb: 0,
            prio: 0,
            quantum: 0,
            started: false,
            bound: false,
            pager: 0,
            exc_slot,
            exc_gate: exc,
            armed: false,
            held: None,
            cpu: None,
            affinity: scheduler::CpuSet::ALL,
        });
        self.map_direct(env, idx)?;
        if let Some(s) = slot {
            self.give_cap(env, proxy, s, 7, false)?;
            self.caps.insert(s, CapRec { obj: o, rights: 7, server: false });
        }
        Ok(idx)
    }

    pub(crate) fn thread_cap(&self, t: u32) -> Cap<kind::Thread> {
        Cap::new(self.objects[self.threads[t as usize].obj as usize].cap)
    }

    pub(crate) fn bind_thread<E: Env>(&mut self, env: &mut E, t: u32, utcb: u64, pager: u64) -> Result<(), Error> {
        let exc = self.threads[t as usize].exc_slot;
        let c = Control::new().pager(CapIdx(pager)).exc_handler(CapIdx(exc)).bind(utcb, self.child_task());
        thread::control(env, self.thread_cap(t), &c)?;
        let th = &mut self.threads[t as usize];
        th.utcb = utcb;
        th.bound = true;
        th.pager = pager;
        Ok(())
    }

    /// Gives thread `t` a priority and a CPU of `set`, the CPU the kernel
    /// would choose (`scheduler::placement`, rtcr being the caller), and
    /// passes the kernel just that CPU: the kernel keeps no affinity, so
    /// this is the same placement, and rtcr knows where every thread runs.
    /// A set naming no CPU this kernel has is refused: the kernel would
    /// park the thread on none, where no cut could ever stop it.
    pub(crate) fn run_thread<E: Env>(
        &mut self,
        env: &mut E,
        t: u32,
        prio: u64,
        quantum: u64,
        set: scheduler::CpuSet,
    ) -> Result<(), Error> {
        let home = self.threads.get(t as usize).ok_or(Error::Protocol("no such thread"))?.cpu;
        let cpu = scheduler::placement(&set, home, RTCR_CPU, self.online)
            .ok_or(Error::Protocol("the CPU set names no CPU there is"))?;
        self.place_thread(env, t, prio, quantum, cpu)?;
        self.threads[t as usize].affinity = set;
        Ok(())
    }

    /// `l4_scheduler_run_thread` for thread `t` on `cpu` alone, its
    /// priority between the one rtcr steps down to at a cut and rtcr's own.
    pub(crate) fn place_thread<E: Env>(
        &mut self,
        env: &mut E,
        t: u32,
        prio: u64,
        quantum: u64,
        cpu: u32,
    ) -> Result<(), Error> {
        let prio = prio.clamp(crate::checkpoint::MIN_CHILD_PRIO, RTCR_PRIO - 1);
        let p = SchedParam { quantum, ..SchedParam::on(cpu, prio) };
        scheduler::run_thread(env, SCHED, self.thread_cap(t), &p)?;
        let th = &mut self.threads[t as usize];
        th.prio = p.prio as u8;
        th.quantum = quantum;
        th.cpu = Some(cpu);
        Ok(())
    }

    /// rtcr's own thread: its priority, pinned to [`RTCR_CPU`]; and which
    /// CPUs the kernel has (`l4_scheduler_info`).
    pub(crate) fn take_rtcr_cpu<E: Env>(&mut self, env: &mut E) -> Result<(), Error> {
        let me = SchedParam::on(RTCR_CPU, RTCR_PRIO);
        scheduler::run_thread(env, SCHED, self.server(), &me)?;
        let all = scheduler::CpuSet { gran_offset: 0, map: 0 };
        self.online = scheduler::info(env, SCHED, all).map(|i| i.cpus).unwrap_or(0) | (1 << RTCR_CPU);
        Ok(())
    }

    /// Each thread's CPU (`None`: not given one), for the log.
    pub fn thread_cpus(&self) -> Vec<Option<u32>> {
        self.threads.iter().map(|t| t.cpu).collect()
    }

    /// The CPUs other than rtcr's that started threads of the child run on.
    pub(crate) fn other_child_cpus(&self) -> Vec<u32> {
        let mut cpus: Vec<u32> =
            self.threads.iter().filter(|t| t.started).filter_map(|t| t.cpu).filter(|&c| c != RTCR_CPU).collect();
        cpus.sort_unstable();
        cpus.dedup();
        cpus
    }

    /// Test hook (rtcr's `crash_ms=`): sends the child's thread `t` to
    /// address 0, as a wild jump would (`l4_thread_ex_regs` with CANCEL, so
    /// a thread blocked in a call goes at once). Address 0 is never child
    /// memory, so the thread faults, rtcr's pager refuses the fault, and the
    /// exception reaches rtcr as a crash.
    pub fn inject_wild_jump<E: Env>(&mut self, env: &mut E, t: u32) -> Result<(), Error> {
        if t as usize >= self.threads.len() {
            return Err(Error::Protocol("no such thread"));
        }
        let flags = self.start_flags() | ExRegsFlags::CANCEL;
        thread::ex_regs(env, self.thread_cap(t), 0, thread::KEEP, flags)?;
        Ok(())
    }

    /// Serves the child until no message arrives for `idle`, the budget of
    /// messages is used up, or a child thread crashes.
    pub fn serve<E: Env>(&mut self, env: &mut E, budget: usize, idle: Timeout) -> Result<ServeOutcome, Error> {
        if let Some((thread, code)) = self.crash_pending.take() {
            return Ok(ServeOutcome::Crash { thread, code });
        }
        for _ in 0..budget {
            {
                let u = env.utcb();
                u.bdr = 0;
                u.br[0] = rcv_single_cap_local_id(SCRATCH);
            }
            let got = match ipc::wait(env, TimeoutPair::new(Timeout::NEVER, idle)) {
                Ok(g) => g,
                Err(e) if e.is_timeout() => return Ok(ServeOutcome::Idle),
                // a message that did not fit rtcr's buffers (the sender got
                // the cut error too), or was aborted: drop it, serve on
                Err(e) if child_fault(e) => continue,
                Err(e) => return Err(Error::Kernel(e)),
            };
            self.served += 1;
            if got.label & !3 == labels::FORWARD {
                let reply = self.forwarded(env, got.tag);
                self.answer(env, reply)?;
                continue;
            }
            let Some((svc, idx)) = labels::decode(got.label) else { continue };
            if svc == Service::Exception {
                let n = self.arch.exc_words();
                let regs = env.utcb().mr[..n].to_vec();
                let code = self.code_of(&regs);
                // a thread rtcr stopped or re-issued a call for, back from
                // its kernel call: it goes on (its FPU stayed with it: this
                // receive does not take it)
                if let Some(r) = self.stray_stop(idx, code, &regs) {
                    self.resume_keep_fpu(env, idx, &r)?;
                    continue;
                }
                self.crash_site = Some(self.site_of(&regs));
                return Ok(ServeOutcome::Crash { thread: idx, code });
            }
            let reply = self.dispatch(env, svc, idx, got.tag);
            self.answer(env, reply)?;
        }
        Ok(ServeOutcome::Budget)
    }

    /// Sends a service's reply to the child (the implicit reply
    /// capability), then records what it gave: a new capability's slot, the
    /// address where sigma0-protocol memory landed.
    pub(crate) fn answer<E: Env>(&mut self, env: &mut E, reply: crate::services::Reply) -> Result<(), Error> {
        use crate::services::Reply;
        match reply {
            Reply::Words(label, words) => {
                let n = words.len().min(63);
                env.utcb().mr[..n].copy_from_slice(&words[..n]);
                let _ = ipc::reply(env, MsgTag::new(label, n, 0, NO_DONATION), 0, TimeoutPair::SEND_ZERO);
            }
            Reply::Item(label, item, then) => {
                env.utcb().mr[..2].copy_from_slice(&item.words());
                let r = ipc::reply(env, MsgTag::new(label, 0, 1, NO_DONATION), 0, TimeoutPair::SEND_ZERO);
                if r.is_ok() {
                    if let Some(obj) = then {
                        self.record_new_slot(env, obj)?;
                    }
                }
            }
            Reply::Sigma0(item, grant) => {
                env.utcb().mr[..2].copy_from_slice(&item.words());
                let r = ipc::reply(env, MsgTag::new(0, 0, 1, NO_DONATION), 0, TimeoutPair::SEND_ZERO);
                // where it landed is the receiver's window's choice
                match if r.is_ok() { self.find_window(env)? } else { Caller::Unknown } {
                    Caller::Found(window) => self.record_grant(item, grant, window),
                    Caller::Unknown => self.record_grant(item, grant, None),
                    Caller::Later => self.unplaced.push((item, grant)),
                }
            }
            Reply::None => {}
        }
        Ok(())
    }

    /// The receive window of the thread that just got a sigma0-protocol
    /// reply (its buffer registers, which only its UTCB holds). The kernel
    /// does not say which thread called, so rtcr stops the child's threads
    /// without cancelling anything (as for a cut): the caller is the one
    /// that stops just back from a call to a pager slot with a one-item
    /// reply; its UTCB is read through the trampoline, and all go on as
    /// they were. [`Caller::Unknown`] when that cannot be told (no caller,
    /// or more than one that looks like it, or a reply given while rtcr
    /// looks for another caller): the memory is then recorded at the hot
    /// spot, where a whole-space window puts it.
    ///
    /// During a cut the threads it waits for are its own: only those it
    /// has resumed are stopped; a stop of one it armed that is there is
    /// taken and kept in `early` for it, as the cut's own waits do. The
    /// caller may be either. If it is neither, it is one the cut has
    /// stopped, or will stop as soon as its call returns: [`Caller::Later`],
    /// placed from what the cut saved ([`Self::place_unplaced`]).
    pub(crate) fn find_window<E: Env>(&mut self, env: &mut E) -> Result<Caller, Error> {
        if self.placing {
            return Ok(Caller::Unknown);
        }
        self.placing = true;
        let r = self.find_window_of_caller(env);
        self.placing = false;
        r
    }

    /// Do the registers `r` of a stopped thread say it is just back from a
    /// sigma0-protocol call to a pager slot (a one-item reply)?
    fn is_pager_caller<E: Env>(&self, env: &mut E, r: &[u64]) -> bool {
        let ri = crate::checkpoint::regs(self.arch);
        let tag = MsgTag(r[ri.tag]);
        let dest = r[ri.dest];
        let to_pager = self
            .caps
            .get(&(dest >> 12))
            .is_some_and(|c| matches!(self.objects[c.obj as usize].kind, ObjKind::Service(Service::Pager, _)));
        dest & 0xf == 3
            && to_pager
            && tag.items() == 1
            && tag.words() == 0
            && !tag.has_error()
            && tag.label() == 0
            && self.follows_entry_instruction(env, r[ri.ip])
    }

    fn find_window_of_caller<E: Env>(&mut self, env: &mut E) -> Result<Caller, Error> {
        let cutting = self.cutting;
        let started: Vec<u32> = (0..self.threads.len() as u32)
            .filter(|&t| {
                let th = &self.threads[t as usize];
                let cuts = th.armed && th.held.is_none();
                th.started && (!cutting || cuts || self.cut_resumed.contains(&t))
            })
            .collect();
        // armed before this search: the cut's (stop_runnable arms only the
        // others)
        let the_cuts: Vec<u32> =
            started.iter().copied().filter(|&t| cutting && self.threads[t as usize].armed).collect();
        let mut stopped = self.stop_runnable(env, &started)?;
        for (t, r, fpu) in stopped.extract_if(.., |s| the_cuts.contains(&s.0)) {
            self.threads[t as usize].armed = true;
            self.early.push((t, r, fpu));
        }
        let mut callers = Vec::new();
        for (i, (_, r, _)) in stopped.iter().enumerate() {
            if self.is_pager_caller(env, r) {
                callers.push((false, i));
            }
        }
        for i in 0..self.early.len() {
            if cutting && self.is_pager_caller(env, &self.early[i].1) {
                callers.push((true, i));
            }
        }
        let found = match callers[..] {
            [] if cutting => Caller::Later,
            [(false, i)] => {
                let (t, r, fpu) = stopped[i].clone();
                let words = self.save_utcb(env, t, &r, &fpu)?;
                Caller::Found(l4_sys::item::memory_window(words[64], &words[65..123]))
            }
            [(true, i)] => {
                // out of `early` while the trampoline runs in it (its stop
                // from there is not one the cut waits for), then back
                let e = self.early.remove(i);
                let words = self.save_utcb(env, e.0, &e.1, &e.2);
                self.early.insert(i.min(self.early.len()), e);
                let words = words?;
                Caller::Found(l4_sys::item::memory_window(words[64], &words[65..123]))
            }
            _ => Caller::Unknown,
        };
        for (t, r, fpu) in stopped {
            self.resume_with(env, t, &r, &fpu)?;
        }
        Ok(found)
    }

    /// After a cut: records the sigma0 replies it gave whose caller was not
    /// found then ([`Caller::Later`]). The caller is the one thread the cut
    /// saved just back from a call to a pager slot (its UTCB saved with
    /// it); if none or several look like it, the hot spot.
    pub(crate) fn place_unplaced<E: Env>(&mut self, env: &mut E, saved: &[crate::checkpoint::Saved]) {
        for (item, grant) in core::mem::take(&mut self.unplaced) {
            let callers: Vec<&crate::checkpoint::Saved> =
                saved.iter().filter(|s| self.is_pager_caller(env, &s.regs)).collect();
            let window = match callers[..] {
                [s] if s.utcb.len() >= 123 => l4_sys::item::memory_window(s.utcb[64], &s.utcb[65..123]),
                _ => None,
            };
            self.record_grant(item, grant, window);
        }
    }

    /// Where an exception state says the thread was: (IP, fault address).
    pub(crate) fn site_of(&self, regs: &[u64]) -> (u64, u64) {
        let at = |i: usize| regs.get(i).copied().unwrap_or(0);
        match self.arch {
            Arch::Amd64 => (at(l4_sys::exc::amd64::mr::IP), at(l4_sys::exc::amd64::mr::PFA)),
            Arch::Arm64 => (at(l4_sys::exc::arm64::mr::PC), at(l4_sys::exc::arm64::mr::PFA)),
        }
    }

    /// The x86 trap number / arm exception class of an exception state.
    pub(crate) fn code_of(&self, regs: &[u64]) -> u64 {
        match self.arch {
            Arch::Amd64 => regs.get(l4_sys::exc::amd64::mr::TRAPNO).copied().unwrap_or(0),
            Arch::Arm64 => (regs.get(l4_sys::exc::arm64::mr::ERR).copied().unwrap_or(0) >> 26) & 0x3f,
        }
    }

    /// After a reply mapped a new capability into the child (into a slot of
    /// the child's choosing, which only the child's UTCB names), finds the
    /// slot: the one slot that became valid. Searched from just after the
    /// last slot found, so a child allocating slots in order costs one probe.
    pub(crate) fn record_new_slot<E: Env>(&mut self, env: &mut E, obj: u32) -> Result<(), Error> {
        let limit = self.spec.child_slots;
        let start = self.scan_hint.clamp(8, limit.max(9) - 1);
        let mut s = start;
        loop {
            if !self.caps.contains_key(&s) && s < PRIV_BASE && task::cap_valid(env, self.child_task(), CapIdx(s))? {
                let o = self.objects[obj as usize];
                self.caps.insert(s, CapRec { obj, rights: o.rights, server: o.server });
                self.scan_hint = s + 1;
                return Ok(());
            }
            s += 1;
            if s >= limit {
                s = 1;
            }
            if s == start {
                // the child put it over a slot it already had; that slot's
                // record is stale now (documented limitation)
                return Ok(());
            }
        }
    }
}
