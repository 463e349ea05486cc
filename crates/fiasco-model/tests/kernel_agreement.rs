//! The answers rtcr's `probe` mode got from the real kernel (src/probe.rs,
//! tests/qemu.rs, issue notes), asked of the model the same way: the same
//! gate-to-main-thread arrangement, the same calls, the same expectations.

mod common;
use common::*;

use fiasco_model::{Config, Model};
use l4_sys::cap::CapIdx;
use l4_sys::fpage::{Fpage, MemRights};
use l4_sys::item::{Cache, SendItem};
use l4_sys::msgtag::{MsgTag, TagFlags};
use l4_sys::scheduler::SchedParam;
use l4_sys::thread::{Control, ExRegsFlags, KEEP};
use l4_sys::{factory, ipc, scheduler, sigma0, task, thread, Kernel, TimeoutPair};

fn probes(cfg: Config) {
    let arch = cfg.arch;
    let words = arch.exc_words();
    let mut m = Model::new(cfg);
    // the worker's code: read PROBE_VA (which faults), forever
    const PROBE_VA: u64 = 0x10_0000_0000;
    // (a step is atomic in the model: what must be seen before the
    // faulting read is done in a step of its own)
    program(&mut m, CODE, |cpu| {
        if cpu.state() == 0 {
            cpu.store_u64(DATA, 1)?;
            cpu.goto(1);
        } else {
            let v = cpu.load_u64(PROBE_VA)?;
            cpu.store_u64(DATA + 8, v)?;
        }
        Ok(())
    });
    let mut r = m.root();
    let ru = r.model().boot_objects().root_task;
    let utcb = match arch {
        l4_sys::exc::Arch::Amd64 => 0x7f_ff00_0000u64,
        l4_sys::exc::Arch::Arm64 => 0xfff_ffff_0000,
    };
    scheduler::run_thread(&mut r, SCHED, ROOT_THREAD, &SchedParam::prio(20)).unwrap();
    // code and data for the worker, in rtcr's own task
    sigma0::map_any(&mut r, S0, 12, Fpage::mem(CODE, 12, MemRights::empty())).unwrap();
    sigma0::map_any(&mut r, S0, 12, Fpage::mem(DATA, 12, MemRights::empty())).unwrap();
    factory::create_gate(&mut r, F, CapIdx(0x20), Some((ROOT_THREAD, 0x100))).unwrap();
    let w = factory::create_thread(&mut r, F, CapIdx(0x21)).unwrap();
    thread::control(&mut r, w, &Control::new().pager(CapIdx(4)).exc_handler(CapIdx(0x20)).bind(utcb + 0x400, ME))
        .unwrap();
    scheduler::run_thread(&mut r, SCHED, w, &SchedParam::prio(10)).unwrap();

    // probe 7: trigger on a never-run thread
    let flags = if arch == l4_sys::exc::Arch::Arm64 { ExRegsFlags::ARM64_SET_EL_EL0 } else { ExRegsFlags::empty() };
    thread::ex_regs(&mut r, w, KEEP, KEEP, ExRegsFlags::TRIGGER_EXCEPTION | flags).unwrap();
    let e = ipc::wait(&mut r, TimeoutPair::NEVER).unwrap();
    assert_eq!((e.label, e.tag.words()), (0x103, words), "kernel: label 0x103, 26/40 words");
    let mut regs = r.utcb().mr[..words].to_vec();
    let (trap, ip) = match arch {
        l4_sys::exc::Arch::Amd64 => (regs[l4_sys::exc::amd64::mr::TRAPNO], regs[l4_sys::exc::amd64::mr::IP]),
        l4_sys::exc::Arch::Arm64 => (regs[l4_sys::exc::arm64::mr::ERR] >> 26, regs[l4_sys::exc::arm64::mr::PC]),
    };
    assert_eq!(
        (trap, ip),
        (if arch == l4_sys::exc::Arch::Amd64 { 0xFF } else { 0x3E }, 0),
        "kernel: trapno 0xff / EC 0x3e, ip 0"
    );

    // probe 4: mapping another task's UTCB page answers OK and maps nothing
    let other = factory::create_task(&mut r, F, CapIdx(0x22), Fpage::mem(0xB300_0000, 12, MemRights::empty())).unwrap();
    let item = SendItem::map_mem(PROBE_VA, Fpage::mem(0xB300_0000, 12, MemRights::RW), Cache::Keep, false);
    assert_eq!(task::map(&mut r, ME, other, item), Ok(()));
    assert!(r.model().peek(ru, PROBE_VA, 8).is_none());

    // probe 1: a plain send of the full register set resumes the thread
    let (ipi, spi) = match arch {
        l4_sys::exc::Arch::Amd64 => (l4_sys::exc::amd64::mr::IP, l4_sys::exc::amd64::mr::SP),
        l4_sys::exc::Arch::Arm64 => (l4_sys::exc::arm64::mr::PC, l4_sys::exc::arm64::mr::SP),
    };
    regs[ipi] = CODE;
    regs[spi] = DATA + 0x800;
    r.utcb().mr[..words].copy_from_slice(&regs);
    ipc::send(&mut r, w.idx(), MsgTag::new(0, words, 0, TagFlags::empty()), TimeoutPair::BOTH_ZERO).unwrap();
    // then the read of PROBE_VA faults: sigma0 refuses, an exception arrives
    let e = ipc::wait(&mut r, TimeoutPair::NEVER).unwrap();
    assert!(e.tag.is_exception());
    let got = r.model().peek(ru, DATA, 8).unwrap();
    assert_eq!(u64::from_le_bytes(got.try_into().unwrap()), 1, "kernel: the worker ran");
    let ex = r.utcb().mr[..words].to_vec();
    match arch {
        l4_sys::exc::Arch::Amd64 => {
            assert_eq!(ex[l4_sys::exc::amd64::mr::TRAPNO], 0xe);
            assert_eq!(ex[l4_sys::exc::amd64::mr::PFA], PROBE_VA);
        }
        l4_sys::exc::Arch::Arm64 => {
            assert_eq!(ex[l4_sys::exc::arm64::mr::ERR] >> 26, 0x24);
            assert_eq!(ex[l4_sys::exc::arm64::mr::PFA], PROBE_VA);
        }
    }

    // probe 3: R/D from an unmap with rights 0 on a fresh 4 KiB page
    const RD: u64 = 0x20_0000_0000;
    sigma0::map_any(&mut r, S0, 12, Fpage::mem(RD, 12, MemRights::empty())).unwrap();
    let q = |r: &mut fiasco_model::HostThread<'_>, rights: MemRights| {
        let f = task::unmap(r, ME, Fpage::mem(RD, 12, rights), task::unmap_mask::ALL_SPACES).unwrap();
        (f.referenced, f.dirty)
    };
    let fresh = q(&mut r, MemRights::empty());
    r.write(RD, &[1]).unwrap();
    let after_write = q(&mut r, MemRights::empty());
    let again = q(&mut r, MemRights::empty());
    let _ = q(&mut r, MemRights::W);
    let after_w_revoked = q(&mut r, MemRights::empty());
    match arch {
        l4_sys::exc::Arch::Amd64 => {
            assert_eq!(fresh, (false, false));
            assert_eq!(
                (after_write, again, after_w_revoked),
                ((true, true), (true, true), (true, true)),
                "kernel: RD sticks"
            );
        }
        l4_sys::exc::Arch::Arm64 => {
            assert_eq!(
                (fresh, after_write, again),
                ((false, false), (false, false), (false, false)),
                "kernel: always --"
            );
        }
    }
}

#[test]
fn model_agrees_with_the_kernel_probes_on_x86_64() {
    probes(Config::amd64());
}

#[test]
fn model_agrees_with_the_kernel_probes_on_arm64() {
    probes(Config::arm64());
}
