//! Incremental checkpoints copy exactly the pages written since the last
//! one; and 100 checkpoint/restore cycles in a row leave the child exact.

use rtcr_sim::*;

use fiasco_model::{sys, Cpu, Trap};
use l4_sys::exc::Arch;
use l4_sys::Timeout;
use rtcr_core::Supervisor;
use std::sync::Arc;

fn page_writer() -> Arc<dyn fiasco_model::Program> {
    Arc::new(PageWriter)
}

#[test]
fn a_checkpoint_copies_exactly_the_pages_written_since_the_last() {
    let mut m = model(Arch::Amd64, page_writer());
    let mut r = m.root();
    let mut env = ModelEnv(&mut r);
    let mut sup = Supervisor::spawn(&mut env, spec("writer")).unwrap();
    // DATA is demand-zero: fault it in, then set k = 8, round 1
    sup.serve(&mut env, 100, Timeout::from_us(1000)).unwrap();
    let ct = child_obj(env.0.model(), &sup);
    assert!(env.0.model().poke(ct, DATA, &8u64.to_le_bytes()));
    assert!(env.0.model().poke(ct, DATA + 8, &1u64.to_le_bytes()));
    sup.serve(&mut env, 100, Timeout::from_us(1000)).unwrap();
    let (_, first) = sup.checkpoint(&mut env).unwrap();
    assert!(first.pages_copied >= 9, "everything new is copied the first time: {first:?}");
    for (k, round) in [(8u64, 2u64), (3, 3), (1, 4), (0, 5)] {
        env.0.model().poke(ct, DATA, &k.to_le_bytes());
        env.0.model().poke(ct, DATA + 8, &round.to_le_bytes());
        sup.serve(&mut env, 100, Timeout::from_us(1000)).unwrap();
        let (cp, st) = sup.checkpoint(&mut env).unwrap();
        assert_eq!(st.pages_copied, k as usize, "round {round}: wrote {k} pages");
        // and the image still holds every page, with the new contents
        let p = cp.pages.iter().find(|p| p.vaddr == DATA + 0x1000).unwrap();
        let want = if k >= 1 { round } else { 4 };
        assert_eq!(u64::from_le_bytes(p.data[..8].try_into().unwrap()), want);
    }
}

/// Counts in DATA forever (16 counts, then a short sleep).
fn counter() -> Arc<dyn fiasco_model::Program> {
    struct C;
    impl fiasco_model::Program for C {
        fn step(&self, cpu: &mut Cpu<'_>) -> Result<(), Trap> {
            if cpu.state() == 0 {
                let n = cpu.load_u64(DATA)? + 1;
                cpu.store_u64(DATA, n)?;
                cpu.store_u64(DATA + 8, n.wrapping_mul(0x9E37_79B9_7F4A_7C15))?;
                if n % 16 == 0 {
                    cpu.goto(1);
                }
            } else {
                let _ = sys!(cpu, l4_sys::ipc::sleep(cpu, Timeout::from_us(50)));
                cpu.goto(0);
            }
            Ok(())
        }
    }
    Arc::new(C)
}

#[test]
fn a_hundred_checkpoint_restore_cycles_leave_the_child_exact() {
    let mut m = model(Arch::Amd64, counter());
    let mut r = m.root();
    let mut env = ModelEnv(&mut r);
    let mut sup = Supervisor::spawn(&mut env, spec("cycles")).unwrap();
    let mut last = 0u64;
    let mut taken = None;
    for cycle in 0..100u64 {
        sup.serve(&mut env, 50, Timeout::from_us(500)).unwrap();
        let (cp, st) = sup.checkpoint(&mut env).unwrap();
        let bytes = rtcr_core::encode_image(Arch::Amd64, st.seq, &cp).unwrap();
        let (meta, cp) = rtcr_image::decode(&bytes).unwrap();
        // restore into the same rtcr: the old child and its objects go first
        let frames = sup.destroy(&mut env).unwrap();
        sup = Supervisor::restore_into(&mut env, spec("x"), &cp, meta.sequence, Some(frames))
            .unwrap_or_else(|e| panic!("cycle {cycle}: {}", e.error));
        // the restored child reuses the frames the old one left: restoring
        // again and again takes nothing more from sigma0
        let now_taken = sup.frames_taken();
        assert_eq!(*taken.get_or_insert(now_taken), now_taken, "cycle {cycle}: frames taken from sigma0 grew");
        let ct = child_obj(env.0.model(), &sup);
        for p in &cp.pages {
            assert_eq!(env.0.model().peek(ct, p.vaddr, 4096).unwrap(), p.data, "cycle {cycle}, page {:#x}", p.vaddr);
        }
        let n = u64::from_le_bytes(env.0.model().peek(ct, DATA, 8).unwrap().try_into().unwrap());
        let h = u64::from_le_bytes(env.0.model().peek(ct, DATA + 8, 8).unwrap().try_into().unwrap());
        assert_eq!(h, n.wrapping_mul(0x9E37_79B9_7F4A_7C15), "cycle {cycle}: state consistent");
        assert!(n > last, "cycle {cycle}: the counter moved on ({last} -> {n})");
        last = n;
    }
}

#[test]
fn a_page_written_before_it_is_copied_keeps_its_contents_at_the_cut() {
    let mut m = model(Arch::Amd64, page_writer());
    let mut r = m.root();
    let mut env = ModelEnv(&mut r);
    let mut sup = Supervisor::spawn(&mut env, spec("cow")).unwrap();
    sup.serve(&mut env, 100, Timeout::from_us(1000)).unwrap();
    let ct = child_obj(env.0.model(), &sup);
    env.0.model().poke(ct, DATA, &4u64.to_le_bytes());
    env.0.model().poke(ct, DATA + 8, &7u64.to_le_bytes());
    sup.serve(&mut env, 100, Timeout::from_us(1000)).unwrap();
    // the cut: pages 1..=4 hold 7
    let (saved, st, t0) = sup.pause(&mut env).unwrap();
    assert!(st.pages_copied >= 5, "the four pages and DATA at least: {st:?}");
    // the child runs before rtcr copies: it writes 8 into the same pages
    env.0.model().poke(ct, DATA + 8, &8u64.to_le_bytes());
    sup.serve(&mut env, 100, Timeout::from_us(1000)).unwrap();
    assert_eq!(u64::from_le_bytes(env.0.model().peek(ct, DATA + 0x1000, 8).unwrap().try_into().unwrap()), 8);
    sup.complete(&mut env).unwrap();
    let mut cp = sup.record(&saved);
    cp.clock_us = t0;
    for i in 1..=4u64 {
        let p = cp.pages.iter().find(|p| p.vaddr == DATA + 0x1000 * i).unwrap();
        assert_eq!(u64::from_le_bytes(p.data[..8].try_into().unwrap()), 7, "page {i} as at the cut");
    }
}

/// RAM the child gets from its pager, 64 KiB at a time into a window of
/// its own (as rtcr-bench does on the kernel).
const RAM: u64 = 0x0200_0000;
const RAM_BLOCKS: u64 = 8;

/// Gets [`RAM_BLOCKS`] × 64 KiB of RAM into [`RAM`], then writes the round
/// (DATA + 8) into the first k pages of it (k at DATA) whenever the round
/// changes, one page per step.
fn ram_writer() -> Arc<dyn fiasco_model::Program> {
    struct W;
    impl fiasco_model::Program for W {
        fn step(&self, cpu: &mut Cpu<'_>) -> Result<(), Trap> {
            match cpu.state() {
                0 => {
                    let b = cpu.r(2);
                    if b < RAM_BLOCKS {
                        let w = l4_sys::Fpage::mem(RAM + 0x1_0000 * b, 16, l4_sys::MemRights::empty());
                        let pager = l4_sys::Cap::new(l4_sys::CapIdx(4));
                        if sys!(cpu, l4_sys::sigma0::map_any(cpu, pager, 16, w)).is_err() {
                            return Err(Trap::Exception(6));
                        }
                        cpu.set_r(2, b + 1);
                    } else {
                        cpu.goto(1);
                    }
                }
                1 => {
                    let round = cpu.load_u64(DATA + 8)?;
                    if round != cpu.r(0) {
                        cpu.set_r(1, 0);
                        cpu.goto(3);
                    } else {
                        cpu.goto(2);
                    }
                }
                2 => {
                    let _ = sys!(cpu, l4_sys::ipc::sleep(cpu, Timeout::from_us(100)));
                    cpu.goto(1);
                }
                _ => {
                    let (round, k, i) = (cpu.load_u64(DATA + 8)?, cpu.load_u64(DATA)?, cpu.r(1));
                    if i < k {
                        cpu.store_u64(RAM + 0x1000 * i, round)?;
                        cpu.set_r(1, i + 1);
                    } else {
                        cpu.set_r(0, round);
                        cpu.goto(1);
                    }
                }
            }
            Ok(())
        }
    }
    Arc::new(W)
}

#[test]
fn pager_ram_never_written_is_writable_after_a_restore_and_mapped_in_blocks() {
    let mut m = model(Arch::Amd64, ram_writer());
    let mut r = m.root();
    let mut env = ModelEnv(&mut r);
    let mut sup = Supervisor::spawn(&mut env, spec("ram")).unwrap();
    sup.serve(&mut env, 1000, Timeout::from_us(1000)).unwrap();
    let pages = RAM_BLOCKS * 16;
    for (round, k, restore) in [(1u64, 4u64, false), (2, 16, true), (3, pages, true), (4, pages, false), (5, 8, true)] {
        let ct = child_obj(env.0.model(), &sup);
        env.0.model().poke(ct, DATA, &k.to_le_bytes());
        env.0.model().poke(ct, DATA + 8, &round.to_le_bytes());
        let out = sup.serve(&mut env, 10_000, Timeout::from_us(1000)).unwrap();
        assert!(!matches!(out, rtcr_core::supervisor::ServeOutcome::Crash { .. }), "round {round}: {out:?}");
        for i in 0..k {
            assert_eq!(child_u64(env.0.model(), &sup, RAM + 0x1000 * i), round, "round {round}, page {i}");
        }
        let (cp, st) = sup.checkpoint(&mut env).unwrap();
        assert_eq!(cp.pages.iter().filter(|p| p.vaddr >= RAM && p.vaddr < RAM + 0x1000 * pages).count() as u64, pages);
        if restore {
            let bytes = rtcr_core::encode_image(Arch::Amd64, st.seq, &cp).unwrap();
            let (meta, cp) = rtcr_image::decode(&bytes).unwrap();
            let frames = sup.destroy(&mut env).unwrap();
            let entries = env.0.model().entries();
            sup = Supervisor::restore_into(&mut env, spec("x"), &cp, meta.sequence, Some(frames))
                .unwrap_or_else(|e| panic!("round {round}: {}", e.error));
            // each page back in its frame: the 64 KiB blocks are mapped
            // whole, not page by page (every other step of the restore
            // together takes fewer kernel calls than there are pages)
            let calls = env.0.model().entries() - entries;
            assert!(calls < cp.pages.len() as u64, "round {round}: {calls} kernel calls for {} pages", cp.pages.len());
        }
    }
}
