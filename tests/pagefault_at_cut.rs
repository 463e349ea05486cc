//! A thread in a page fault when a checkpoint asks it to stop.
//!
//! The kernel leaves a thread in a kernel-made IPC (a page fault) alone
//! when ex_regs comes without CANCEL; once rtcr answered the fault, such a
//! thread ran on through the cut and was recorded later than the cut's
//! memory (found by a soak of rtcr-l4-suite on arm64 QEMU: its malloc block
//! a round behind after a restore). Here a "toucher" on CPU 1 writes one
//! page after another, each write a fault after a checkpoint
//! write-protected the page, so a cut often finds it in one; the model's
//! other CPUs run on between rtcr's kernel calls (a seeded interleaving).
//! Every image must have the toucher's register and its pages from the
//! same moment: the page before its count holds count − 1, the page of its
//! count not yet the count.

use std::sync::Arc;

use fiasco_model::{sys, Cpu, Program, Trap};
use l4_sys::cap::{kind, Cap, CapIdx};
use l4_sys::exc::Arch;
use l4_sys::scheduler::{CpuSet, SchedParam};
use l4_sys::thread::{Control, ExRegsFlags};
use l4_sys::{factory, ipc, scheduler, thread, Timeout};
use rtcr_core::Supervisor;
use rtcr_sim::*;

/// The toucher's pages: PAGES of them from BASE, one word each.
const BASE: u64 = DATA + 0x1_0000;
const PAGES: u64 = 32;
const TOUCHER: CapIdx = CapIdx(0x10);

fn page(n: u64) -> u64 {
    BASE + (n % PAGES) * 0x1000
}

/// Main: makes the toucher, puts it on CPU 1, starts it, then sleeps.
struct Main;
impl Program for Main {
    fn step(&self, cpu: &mut Cpu<'_>) -> Result<(), Trap> {
        let f: Cap<kind::Factory> = Cap::new(CapIdx(2));
        match cpu.state() {
            0 => {
                let _ = sys!(cpu, factory::create_thread(cpu, f, TOUCHER));
                cpu.goto(1);
            }
            1 => {
                let c = Control::new().pager(CapIdx(4)).exc_handler(CapIdx(4)).bind(0xB300_0400, Cap::new(CapIdx(1)));
                let _ = sys!(cpu, thread::control(cpu, Cap::new(TOUCHER), &c));
                cpu.goto(2);
            }
            2 => {
                let p = SchedParam { affinity: CpuSet::one(1), prio: 10, quantum: 0 };
                if sys!(cpu, scheduler::run_thread(cpu, Cap::new(CapIdx(7)), Cap::new(TOUCHER), &p)).is_err() {
                    return Err(cpu.crash());
                }
                cpu.goto(3);
            }
            3 => {
                let fl = match cpu.arch() {
                    Arch::Amd64 => ExRegsFlags::empty(),
                    Arch::Arm64 => ExRegsFlags::ARM64_SET_EL_EL0,
                };
                let _ = sys!(cpu, thread::ex_regs(cpu, Cap::new(TOUCHER), CODE + 0x1000, STACK_TOP - 0x1000, fl));
                cpu.goto(4);
            }
            _ => {
                let _ = sys!(cpu, ipc::sleep(cpu, Timeout::from_us(1_000)));
            }
        }
        Ok(())
    }
}

/// The toucher: r0 its count n; checks that the page before holds n − 1,
/// then writes n into the page of n.
struct Toucher;
impl Program for Toucher {
    fn step(&self, cpu: &mut Cpu<'_>) -> Result<(), Trap> {
        match cpu.state() {
            0 => {
                let n = cpu.r(0);
                if n > 0 && cpu.load_u64(page(n - 1))? != n - 1 {
                    return Err(cpu.crash());
                }
                cpu.store_u64(page(n), n)?;
                cpu.set_r(0, n + 1);
                if (n + 1).is_multiple_of(64) {
                    cpu.goto(1);
                }
            }
            _ => {
                let _ = sys!(cpu, ipc::sleep(cpu, Timeout::from_us(20)));
                cpu.goto(0);
            }
        }
        Ok(())
    }
}

/// A word of the image (0 for a page it does not have or holds as zeros).
fn image_u64(cp: &rtcr_image::Checkpoint, addr: u64) -> u64 {
    match cp.pages.iter().find(|p| p.vaddr == addr & !0xfff) {
        Some(p) if !p.data.is_empty() => {
            let at = (addr & 0xfff) as usize;
            u64::from_le_bytes(p.data[at..at + 8].try_into().unwrap())
        }
        _ => 0,
    }
}

/// One seed: `cuts` checkpoints of the toucher, each image checked.
fn seed_run(arch: Arch, seed: u64, burst: u32, cuts: usize) -> Result<u64, String> {
    let mut m = model_with_trampoline_on(arch, 2, seed, burst);
    m.register_program(CODE, Arc::new(Main));
    m.register_program(CODE + 0x1000, Arc::new(Toucher));
    let reg = m.program_reg(0);
    let mut r = m.root();
    let mut env = ModelEnv(&mut r);
    let mut sup = Supervisor::spawn(&mut env, spec("toucher")).map_err(|e| format!("spawn: {e:?}"))?;
    let mut count = 0;
    for cut in 0..cuts {
        // a little serving between two cuts: fewer faults than the toucher
        // takes after a cut, so that the next cut finds it taking one
        sup.serve(&mut env, 2 + cut % 7, Timeout::from_us(50)).map_err(|e| format!("serve: {e:?}"))?;
        let (cp, _) = sup.checkpoint(&mut env).map_err(|e| format!("checkpoint {cut}: {e:?}"))?;
        let Some(t) = cp.threads.get(1) else { continue };
        let n = t.regs[reg];
        let before = if n > 0 { image_u64(&cp, page(n - 1)) } else { 0 };
        let at = image_u64(&cp, page(n));
        if n > 0 && before != n - 1 {
            return Err(format!("checkpoint {cut}: the toucher's register says {n}, the page before holds {before}"));
        }
        if at == n && n > 0 {
            return Err(format!("checkpoint {cut}: the toucher's register says {n}, and its page holds it already"));
        }
        count = n;
    }
    Ok(count)
}

#[test]
fn a_thread_in_a_page_fault_at_the_cut_is_stopped_at_the_cut() {
    let mut failed = Vec::new();
    let mut progress = 0;
    for seed in 0..24u64 {
        let arch = if seed % 2 == 0 { Arch::Amd64 } else { Arch::Arm64 };
        let burst = 1 + (seed % 4) as u32;
        match seed_run(arch, seed, burst, 12) {
            Ok(n) => progress += n,
            Err(e) => failed.push(format!("seed {seed} ({arch:?}, burst {burst}): {e}")),
        }
    }
    assert!(failed.is_empty(), "{} of 24 seeds failed:\n{}", failed.len(), failed.join("\n"));
    assert!(progress > 24 * 64, "the toucher made too little progress: {progress}");
}
