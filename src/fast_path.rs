//! Starts rtcr's IRQ fast path thread (`rtcr_core::fast_path`): a second
//! thread in rtcr's task, above rtcr's main thread on its CPU, that serves
//! the child's IRQ proxies so that a trigger from any CPU finds a receiver.

use l4_sys::arch::CurrentThread;
use l4_sys::cap::{base, kind, Cap, CapIdx};
use l4_sys::factory;
use l4_sys::scheduler::{self, SchedParam};
use l4_sys::thread::{self, Control, ExRegsFlags};
use rtcr_core::supervisor::{RTCR_CPU, RTCR_PRIO};

/// The gate the fast path forwards through (bound to rtcr's main thread).
const FORWARD_GATE: CapIdx = CapIdx(0xf0);
/// The fast path thread.
const FAST: Cap<kind::Thread> = Cap::new(CapIdx(0xf1));
/// The fast path's receive buffer slot.
const FAST_SCRATCH: CapIdx = CapIdx(0xf2);
/// Its UTCB: the third of the root task's UTCB area (the probes' worker
/// has the second).
const UTCB_OFFSET: u64 = 0x800;

#[cfg(target_arch = "x86_64")]
const START: ExRegsFlags = ExRegsFlags::empty();
#[cfg(target_arch = "aarch64")]
const START: ExRegsFlags = ExRegsFlags::ARM64_SET_EL_EL0;

#[repr(C, align(16))]
struct Stack([u8; 16 * 1024]);
static mut STACK: Stack = Stack([0; 16 * 1024]);

extern "C" fn fast_entry() -> ! {
    // SAFETY: the fast path thread runs only this function, which makes its
    // one CurrentThread; `start` bound the thread to its own UTCB (the
    // third of rtcr's UTCB area) before it first ran.
    let mut k = unsafe { CurrentThread::new() };
    rtcr_core::fast_path::serve(&mut k, FORWARD_GATE, FAST_SCRATCH)
}

/// Creates and starts the fast path; gives what the child's spec needs
/// (`ChildSpec::fast_path`): the thread's slot and the forward gate's.
pub fn start(k: &mut CurrentThread) -> Result<(u64, CapIdx), l4_sys::Error> {
    let fac = Cap::new(base::FACTORY);
    let main: Cap<kind::Thread> = Cap::new(base::THREAD);
    factory::create_gate(k, fac, FORWARD_GATE, Some((main, rtcr_core::labels::FORWARD)))?;
    factory::create_thread(k, fac, FAST.idx())?;
    let utcb = k.utcb_addr() + UTCB_OFFSET;
    thread::control(k, FAST, &Control::new().pager(base::PAGER).bind(utcb, Cap::new(base::TASK)))?;
    let p = SchedParam::on(RTCR_CPU, RTCR_PRIO + 1);
    scheduler::run_thread(k, Cap::new(base::SCHEDULER), FAST, &p)?;
    // only the address is taken; the fast path is the stack's only user
    let top = core::ptr::addr_of_mut!(STACK) as u64 + core::mem::size_of::<Stack>() as u64;
    thread::ex_regs(k, FAST, fast_entry as *const () as u64, top, START)?;
    Ok((FAST.idx().0, FORWARD_GATE))
}
