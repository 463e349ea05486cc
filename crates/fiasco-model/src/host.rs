//! Host threads: threads driven by host code (the root task in a test),
//! entering the model through the same seam as the real kernel.

use l4_sys::utcb::Utcb;
use l4_sys::{Invocation, Kernel, MsgTag, Outcome};

use crate::cpu::Fault;
use crate::objects::{ObjId, TState};
use crate::Model;

/// TCR code the model reports when a host thread's call can never complete
/// (every thread blocked without a timeout) or the step limit halted the
/// system. Not a kernel code: the real kernel would block forever.
pub const TCR_MODEL_HALTED: u64 = 0x1e;

/// A host-driven thread of the model; implements [`l4_sys::Kernel`].
pub struct HostThread<'m> {
    m: &'m mut Model,
    t: ObjId,
}

impl<'m> HostThread<'m> {
    pub(crate) fn new(m: &'m mut Model, t: ObjId) -> Self {
        HostThread { m, t }
    }

    /// This thread's own FPU registers (what FXSAVE / an FP register dump
    /// gives a real handler after a TRANSFER_FPU).
    pub fn fpu(&self) -> Vec<u64> {
        self.m.thread(self.t).map(|x| x.fpu.clone()).unwrap_or_default()
    }

    /// Loads this thread's FPU registers (FXRSTOR).
    pub fn set_fpu(&mut self, f: &[u64]) {
        if let Some(x) = self.m.thread_mut(self.t) {
            let n = f.len().min(x.fpu.len());
            x.fpu[..n].copy_from_slice(&f[..n]);
        }
    }

    /// The thread object.
    pub fn id(&self) -> ObjId {
        self.t
    }

    /// The model (to inspect it between calls).
    pub fn model(&mut self) -> &mut Model {
        self.m
    }

    /// Runs the model while this thread is blocked; returns whether it can go on.
    fn wait_ready(&mut self) -> bool {
        while self.m.schedule_once(Some(self.t)) {}
        self.m.thread(self.t).is_some_and(|x| x.state == TState::Ready)
    }

    /// Makes sure `addr` is mapped with the access needed, faulting to the
    /// thread's pager as the CPU would.
    fn touch(&mut self, addr: u64, write: bool) -> Result<(), Fault> {
        for _ in 0..4 {
            let task =
                self.m.thread(self.t).and_then(|x| x.task).ok_or(Fault { addr, write, exec: false, present: false })?;
            let pte = self.m.task(task).and_then(|x| x.pages.get(&(addr >> 12))).copied();
            match pte {
                Some(p) if p.rights & 4 != 0 && (!write || p.rights & 2 != 0) => {
                    if let Some(tk) = self.m.task_mut(task) {
                        let e = tk.pages.get_mut(&(addr >> 12)).expect("present");
                        e.referenced = true;
                        e.dirty |= write;
                    }
                    return Ok(());
                }
                _ => {
                    self.m.raise_page_fault(self.t, addr, write, false);
                    if !self.wait_ready() {
                        break;
                    }
                }
            }
        }
        Err(Fault { addr, write, exec: false, present: false })
    }

    /// The frame behind `addr` if it is mapped with the access needed,
    /// marked referenced (and dirty for a write) as [`Self::touch`] marks
    /// it: the common case in one page-table lookup, not four.
    fn mapped_frame(&mut self, addr: u64, write: bool) -> Option<u64> {
        let task = self.m.thread(self.t)?.task?;
        let e = self.m.task_mut(task)?.pages.get_mut(&(addr >> 12))?;
        if e.rights & 4 != 0 && (!write || e.rights & 2 != 0) {
            e.referenced = true;
            e.dirty |= write;
            return Some(e.frame);
        }
        None
    }

    /// The frame behind `addr` after making it accessible.
    fn frame_of(&mut self, addr: u64, write: bool) -> Result<u64, Fault> {
        if let Some(f) = self.mapped_frame(addr, write) {
            return Ok(f);
        }
        self.touch(addr, write)?;
        let task =
            self.m.thread(self.t).and_then(|x| x.task).ok_or(Fault { addr, write, exec: false, present: false })?;
        self.m.task(task).and_then(|x| x.pages.get(&(addr >> 12))).map(|p| p.frame).ok_or(Fault {
            addr,
            write,
            exec: false,
            present: false,
        })
    }

    /// Reads memory of this thread's task (faulting pages in through its pager).
    pub fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), Fault> {
        let mut done = 0usize;
        while done < buf.len() {
            let a = addr + done as u64;
            let off = (a & 0xfff) as usize;
            let n = (4096 - off).min(buf.len() - done);
            let f = self.frame_of(a, false)?;
            match self.m.frame_ro(f) {
                Some(fr) => buf[done..done + n].copy_from_slice(&fr[off..off + n]),
                None => buf[done..done + n].fill(0),
            }
            done += n;
        }
        Ok(())
    }

    /// Writes memory of this thread's task.
    pub fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), Fault> {
        let mut done = 0usize;
        while done < data.len() {
            let a = addr + done as u64;
            let off = (a & 0xfff) as usize;
            let n = (4096 - off).min(data.len() - done);
            let f = self.frame_of(a, true)?;
            if n == 4096 {
                self.m.frame_to_overwrite(f).copy_from_slice(&data[done..done + n]);
            } else {
                self.m.frame(f)[off..off + n].copy_from_slice(&data[done..done + n]);
            }
            done += n;
        }
        Ok(())
    }
}

impl Kernel for HostThread<'_> {
    fn utcb(&mut self) -> &mut Utcb {
        self.m.utcb_mut(self.t).expect("host thread is bound to a UTCB")
    }

    fn invoke(&mut self, inv: Invocation) -> Outcome {
        if !self.m.halted {
            // the other CPUs ran on while this thread's code ran
            self.m.run_others(self.t);
            self.m.syscall(self.t, inv);
            if self.wait_ready() {
                let (tag, label) = self.m.thread_mut(self.t).and_then(|x| x.outcome.take()).unwrap_or((MsgTag(0), 0));
                return Outcome { tag, label };
            }
        }
        // nothing will ever complete this call: take the thread out of its wait
        if let Some(th) = self.m.thread_mut(self.t) {
            th.state = TState::Ready;
            th.reply_to = None;
        }
        if let Some(u) = self.m.utcb_mut(self.t) {
            u.tcr_error = TCR_MODEL_HALTED;
        }
        Outcome { tag: MsgTag(0x8000), label: 0 }
    }
}
