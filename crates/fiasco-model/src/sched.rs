//! Scheduling, the clock, and running program steps.
//!
//! Fixed priorities as in `src/kern/sched_context-fixed_prio.cpp`: the
//! highest-priority ready thread runs; threads of equal priority share the
//! CPU round robin, each for its quantum (in steps here). A thread leaves
//! the CPU only at a step boundary, so every state a checkpoint can see is
//! a state between two complete steps.
//!
//! Several CPUs: each thread has a home CPU (set by run_thread); each CPU
//! picks its own best thread, and one of the CPUs that have one takes the
//! next step, drawn from the seeded generator (with one CPU nothing is
//! drawn, so single-CPU runs are as before). A CPU with no ready thread
//! during a step (or while the clock jumps to a timeout) is idle for it.

use std::collections::BTreeMap;
use std::sync::Arc;

use l4_sys::utcb::Utcb;

use crate::cpu::{abi, Cpu, Trap, IP_OFFSET_MASK, RESTART_POINT};
use crate::objects::{KernelMsg, ObjId, Runner, TState};
use crate::{Model, Program};

impl Model {
    pub(crate) fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Can `t` be chosen to run?
    pub(crate) fn runnable(&self, t: ObjId) -> bool {
        self.thread(t).is_some_and(|th| th.has_cpu && th.task.is_some() && th.state == TState::Ready)
    }

    /// The CPU thread `t` runs on (a thread never given one: CPU 0).
    pub(crate) fn cpu_of(&self, t: ObjId) -> usize {
        self.thread(t).and_then(|th| th.cpu).unwrap_or(0) as usize
    }

    /// The best program thread to run on one CPU: highest priority, then
    /// the one that has waited longest (round robin). The single-CPU case
    /// of [`Self::pick`], without its allocations.
    fn pick_one(&self) -> Option<(ObjId, u8)> {
        let mut best: Option<(ObjId, u8, u64)> = None;
        for (id, t) in self.objs.threads() {
            if !matches!(t.runner, Runner::Program) || !self.runnable(*id) {
                continue;
            }
            let better = match best {
                None => true,
                Some((_, p, s)) => t.prio > p || (t.prio == p && t.ready_seq < s),
            };
            if better {
                best = Some((*id, t.prio, t.ready_seq));
            }
        }
        best.map(|(i, p, _)| (i, p))
    }

    /// The best program thread to run on each CPU: highest priority, then
    /// the one that has waited longest (round robin).
    fn pick(&self) -> Vec<Option<(ObjId, u8)>> {
        let mut best: Vec<Option<(ObjId, u8, u64)>> = vec![None; self.slices.len()];
        for (id, t) in self.objs.threads() {
            if !matches!(t.runner, Runner::Program) || !self.runnable(*id) {
                continue;
            }
            let Some(b) = best.get_mut(t.cpu.unwrap_or(0) as usize) else { continue };
            let better = match b {
                None => true,
                Some((_, p, s)) => t.prio > *p || (t.prio == *p && t.ready_seq < *s),
            };
            if better {
                *b = Some((*id, t.prio, t.ready_seq));
            }
        }
        best.into_iter().map(|b| b.map(|(i, p, _)| (i, p))).collect()
    }

    /// The next number of the interleaving's generator (splitmix64).
    pub(crate) fn draw(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Of the CPUs that have a thread to run (`best`) and are not `except`,
    /// one drawn from the generator (with one CPU, no draw). CPUs without
    /// one, and not `busy`, are idle for the step: their idle time grows.
    fn choose(&mut self, best: &[Option<(ObjId, u8)>], except: Option<usize>, busy: Option<usize>) -> Option<ObjId> {
        let ready: Vec<ObjId> =
            best.iter().enumerate().filter(|&(c, _)| Some(c) != except).filter_map(|(_, b)| b.map(|b| b.0)).collect();
        let t = match ready.len() {
            0 => return None,
            1 => ready[0],
            n => ready[(self.draw() % n as u64) as usize],
        };
        let cost = self.cfg.step_cost_us;
        for (c, b) in best.iter().enumerate() {
            if b.is_none() && Some(c) != busy {
                self.idle_us[c] += cost;
            }
        }
        Some(t)
    }

    /// Earliest pending timeout.
    fn next_deadline(&self) -> Option<u64> {
        self.objs
            .threads()
            .filter_map(|(_, t)| match &t.state {
                TState::Sending { deadline, .. } | TState::Receiving { deadline, .. } => *deadline,
                _ => None,
            })
            .min()
    }

    /// Expires timeouts that are due.
    pub(crate) fn expire_timeouts(&mut self) {
        let now = self.clock_us;
        let due: Vec<(ObjId, bool)> = self
            .objs
            .threads()
            .filter_map(|(id, t)| match &t.state {
                TState::Sending { deadline: Some(d), .. } if *d <= now => Some((*id, true)),
                TState::Receiving { deadline: Some(d), .. } if *d <= now => Some((*id, false)),
                _ => None,
            })
            .collect();
        for (t, sending) in due {
            let code = if sending { l4_sys::error::tcr::SETIMEOUT } else { l4_sys::error::tcr::RETIMEOUT };
            self.ipc_fail(t, code);
        }
    }

    /// One scheduling decision. With `host` set, the loop serves that host
    /// thread's blocked call: it returns `false` once the host thread can
    /// go on (and no program thread of higher priority is ready). Without,
    /// it returns `false` when nothing can run any more.
    pub(crate) fn schedule_once(&mut self, host: Option<ObjId>) -> bool {
        if self.halted {
            return false;
        }
        self.expire_timeouts();
        if self.slices.len() == 1 {
            return self.schedule_once_up(host);
        }
        let best = self.pick();
        let mut busy = None;
        if let Some(h) = host {
            if self.runnable(h) || self.thread(h).is_some_and(|t| t.state == TState::Ready) {
                let hp = self.thread(h).map(|t| t.prio).unwrap_or(0);
                let hc = self.cpu_of(h);
                if best.get(hc).copied().flatten().is_none_or(|(_, p)| p <= hp) {
                    return false;
                }
                busy = Some(hc);
            }
        }
        match self.choose(&best, None, busy) {
            Some(t) => {
                self.run_step(t);
                true
            }
            None => self.idle_to_deadline(),
        }
    }

    /// [`Self::schedule_once`] with one CPU.
    fn schedule_once_up(&mut self, host: Option<ObjId>) -> bool {
        let best = self.pick_one();
        if let Some(h) = host {
            if self.runnable(h) || self.thread(h).is_some_and(|t| t.state == TState::Ready) {
                let hp = self.thread(h).map(|t| t.prio).unwrap_or(0);
                if best.is_none_or(|(_, p)| p <= hp) {
                    return false;
                }
            }
        }
        match best {
            Some((t, _)) => {
                self.run_step(t);
                true
            }
            None => self.idle_to_deadline(),
        }
    }

    /// Nothing can run: the clock jumps to the next timeout, every CPU idle
    /// meanwhile. `false` when there is none.
    fn idle_to_deadline(&mut self) -> bool {
        match self.next_deadline() {
            Some(d) => {
                let gap = d.saturating_sub(self.clock_us);
                for i in self.idle_us.iter_mut() {
                    *i += gap;
                }
                self.clock_us = self.clock_us.max(d);
                self.update_kip_clock();
                true
            }
            None => false,
        }
    }

    /// Host thread `h` runs on its CPU (host code between two kernel
    /// calls): the other CPUs go on meanwhile, a number of steps drawn from
    /// the generator (up to [`crate::Config::smp_burst`]). Nothing with one
    /// CPU.
    pub(crate) fn run_others(&mut self, h: ObjId) {
        if self.slices.len() < 2 || self.cfg.smp_burst == 0 {
            return;
        }
        let n = self.draw() % (self.cfg.smp_burst as u64 + 1);
        let hc = self.cpu_of(h);
        for _ in 0..n {
            if self.halted {
                return;
            }
            self.expire_timeouts();
            let best = self.pick();
            match self.choose(&best, Some(hc), Some(hc)) {
                Some(t) => self.run_step(t),
                None => return,
            }
        }
    }

    fn charge(&mut self, t: ObjId) {
        self.steps += 1;
        self.clock_us += self.cfg.step_cost_us;
        self.update_kip_clock();
        let cost = self.cfg.step_cost_us;
        let th = self.th(t);
        th.cpu_time_us += cost;
        if let Some(limit) = self.step_limit {
            if self.steps >= limit {
                self.halted = true;
            }
        }
        // time slice: rotate among equal priorities (on the thread's CPU)
        let c = self.cpu_of(t).min(self.slices.len() - 1);
        if self.slices[c].0 != Some(t) {
            let q = self.thread(t).map(|th| th.quantum).unwrap_or(0);
            self.slices[c] = (Some(t), if q > 0 { q } else { self.cfg.quantum_steps });
        }
        self.slices[c].1 = self.slices[c].1.saturating_sub(1);
        if self.slices[c].1 == 0 {
            let s = self.next_seq();
            self.th(t).ready_seq = s;
            self.slices[c].0 = None;
        }
    }

    pub(crate) fn make_ready(&mut self, t: ObjId) {
        let s = self.next_seq();
        if let Some(th) = self.thread_mut(t) {
            th.state = TState::Ready;
            th.ready_seq = s;
        }
    }

    /// The program registered for `ip`, with its entry.
    fn program_at(&self, ip: u64) -> Option<(u64, Arc<dyn Program>)> {
        let (entry, p) = self.programs.range(..=ip).next_back()?;
        (ip - entry < 0x1000_0000).then(|| (*entry, p.clone()))
    }

    /// Runs one step of program thread `t`.
    pub(crate) fn run_step(&mut self, t: ObjId) {
        let arch = self.cfg.arch;
        let a = abi(arch);
        let (task, utcb_addr, regs, trigger, fpu) = {
            let th = self.th(t);
            (
                th.task.expect("runnable threads are bound"),
                th.utcb_addr,
                th.regs.w.clone(),
                th.trigger_pending,
                th.fpu.clone(),
            )
        };
        if trigger {
            self.th(t).trigger_pending = false;
            self.charge(t);
            self.raise_exception(t, None);
            return;
        }
        let ip = regs[a.ip];
        // the code page must be mapped (executable) in the task
        let code_ok = self.task(task).and_then(|tk| tk.pages.get(&(ip >> 12))).is_some_and(|p| p.rights & 5 != 0);
        if !code_ok {
            self.charge(t);
            self.raise_page_fault(t, ip & !IP_OFFSET_MASK, false, true);
            return;
        }
        let Some((entry, prog)) = self.program_at(ip) else {
            // no code here: an invalid instruction
            self.charge(t);
            self.raise_exception(t, Some(Cpu::invalid_op_code(arch)));
            return;
        };
        let real = self.task(task).and_then(|tk| tk.utcbs.get(&utcb_addr)).cloned().unwrap_or_else(Utcb::zeroed);
        // where in its state the thread stands: at the start (a fresh
        // step), at the restart point (a rewound call), or past its
        // kernel entry (re-running the step to take the call's results)
        let offset = ip & IP_OFFSET_MASK;
        let restart = offset == RESTART_POINT;
        let replay = offset != 0 && !restart;
        let mut cpu = Cpu {
            m: self,
            tid: t,
            task,
            entry,
            regs: regs.clone(),
            fpu,
            utcb: real.clone(),
            replay_utcb: replay.then_some(real),
            restart,
            program_inv: None,
            writes: BTreeMap::new(),
            touched: Vec::new(),
            entered: None,
            abi: a,
            bare: false,
            on_behalf: false,
        };
        let r = prog.step(&mut cpu);
        let Cpu { regs: new_regs, fpu: new_fpu, utcb, writes, touched, entered, program_inv, on_behalf, .. } = cpu;
        self.charge(t);
        match r {
            Ok(()) | Err(Trap::Kernel) => {
                self.th(t).fpu = new_fpu;
                self.commit(t, task, utcb_addr, new_regs, utcb, writes, &touched);
                match (r, entered) {
                    (Err(Trap::Kernel), Some(inv)) => {
                        let abi = abi(arch);
                        let th = self.th(t);
                        th.regs.w[abi.ip] = (th.regs.w[abi.ip] & !IP_OFFSET_MASK) + RESTART_POINT + arch.restart_len();
                        let before = self.thread(t).and_then(|th| th.last_inv);
                        self.syscall(t, inv);
                        if let (Some(p), Some(th)) = (program_inv, self.thread_mut(t)) {
                            th.last_inv = Some(p);
                        }
                        if on_behalf {
                            // the thread's own program made another call
                            if let Some(th) = self.thread_mut(t) {
                                th.last_inv = before;
                            }
                        }
                    }
                    (Err(Trap::Kernel), None) => {
                        panic!("model program returned Trap::Kernel without a kernel call")
                    }
                    _ => {}
                }
            }
            Err(Trap::Fault(f)) => {
                // nothing of the step happened; resolve and run it again
                self.raise_page_fault(t, f.addr, f.write, f.exec);
            }
            Err(Trap::Exception(code)) => {
                // like a trapping instruction: what ran before it took effect
                self.th(t).fpu = new_fpu;
                self.commit(t, task, utcb_addr, new_regs, utcb, writes, &touched);
                self.raise_exception(t, Some(code));
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn commit(
        &mut self,
        t: ObjId,
        task: ObjId,
        utcb_addr: u64,
        regs: Vec<u64>,
        utcb: Utcb,
        writes: BTreeMap<u64, u8>,
        touched: &[(u64, bool)],
    ) {
        self.th(t).regs.w = regs;
        if let Some(tk) = self.task_mut(task) {
            tk.utcbs.insert(utcb_addr, utcb);
            for &(vpn, w) in touched {
                if let Some(p) = tk.pages.get_mut(&vpn) {
                    p.referenced = true;
                    p.dirty |= w;
                }
            }
        }
        // the writes are sorted by address: look each page up once
        let mut writes = writes.into_iter().peekable();
        while let Some((addr, b)) = writes.next() {
            let vpn = addr >> 12;
            let Some(pfn) = self.task(task).and_then(|tk| tk.pages.get(&vpn)).map(|p| p.frame) else { continue };
            let frame = self.frame(pfn);
            frame[(addr & 0xfff) as usize] = b;
            while let Some((a, b)) = writes.next_if(|(a, _)| a >> 12 == vpn) {
                frame[(a & 0xfff) as usize] = b;
            }
        }
    }

    /// Sends the thread's page fault to its pager (a kernel-made call).
    pub(crate) fn raise_page_fault(&mut self, t: ObjId, addr: u64, write: bool, exec: bool) {
        let arch = self.cfg.arch;
        let present = self
            .thread(t)
            .and_then(|th| th.task)
            .and_then(|tk| self.task(tk))
            .is_some_and(|tk| tk.pages.contains_key(&(addr >> 12)));
        let pf = l4_sys::pagefault::PageFault { addr, ip: 0, write, exec, present };
        let ip = self.thread(t).map(|th| th.regs.w[abi(arch).ip]).unwrap_or(0);
        let w0 = pf.encode_mr0(arch);
        self.kernel_call(t, KernelMsg::PageFault { pfa: addr, write }, vec![w0, ip]);
    }

    /// Sends the thread's exception (its register set) to its exception
    /// handler. `code`: x86 vector / arm EC; `None` = triggered by ex_regs.
    pub(crate) fn raise_exception(&mut self, t: ObjId, code: Option<u64>) {
        use l4_sys::exc::{amd64, arm64, Arch};
        let arch = self.cfg.arch;
        let th = self.th(t);
        match arch {
            Arch::Amd64 => {
                th.regs.w[amd64::mr::TRAPNO] = code.unwrap_or(amd64::TRAP_TRIGGERED);
                th.regs.w[amd64::mr::ERR] = 0;
            }
            Arch::Arm64 => {
                th.regs.w[arm64::mr::ERR] = code.unwrap_or(arm64::EC_TRIGGERED) << 26;
            }
        }
        let words = th.regs.w.clone();
        self.kernel_call(t, KernelMsg::Exception, words);
    }

    /// Writes the clock into the KIP's clock word.
    pub(crate) fn update_kip_clock(&mut self) {
        if self.kip_frame != 0 {
            let c = self.clock_us.to_le_bytes();
            let kf = self.kip_frame;
            self.frame(kf)[0x20..0x28].copy_from_slice(&c);
        }
    }
}

impl Cpu<'_> {
    pub(crate) fn invalid_op_code(arch: l4_sys::exc::Arch) -> u64 {
        match arch {
            l4_sys::exc::Arch::Amd64 => l4_sys::exc::amd64::TRAP_UD,
            l4_sys::exc::Arch::Arm64 => l4_sys::exc::arm64::EC_UNKNOWN,
        }
    }
}
