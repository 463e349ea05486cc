//! The smallest end-to-end: a counting child is checkpointed, crashes, and
//! is restored on a fresh kernel from the image bytes alone; the counter
//! continues from the checkpointed value.

use rtcr_sim::*;

use fiasco_model::{sys, Cpu, Trap};
use l4_sys::exc::Arch;
use l4_sys::{Kernel, Timeout};
use rtcr_core::supervisor::ServeOutcome;
use rtcr_core::Supervisor;
use std::sync::Arc;

/// Counts in DATA; every 16 counts it sleeps 100 µs; crashes once DATA+8
/// holds 1 (set by the test).
fn counter() -> Arc<dyn fiasco_model::Program> {
    struct C;
    impl fiasco_model::Program for C {
        fn step(&self, cpu: &mut Cpu<'_>) -> Result<(), Trap> {
            match cpu.state() {
                0 => {
                    if cpu.load_u64(DATA + 8)? == 1 {
                        return Err(cpu.crash());
                    }
                    let n = cpu.load_u64(DATA)? + 1;
                    cpu.store_u64(DATA, n)?;
                    if n % 16 == 0 {
                        cpu.goto(1);
                    }
                    Ok(())
                }
                _ => {
                    let _ = sys!(cpu, l4_sys::ipc::sleep(cpu, Timeout::from_us(100)));
                    cpu.goto(0);
                    Ok(())
                }
            }
        }
    }
    Arc::new(C)
}

fn counter_of(m: &fiasco_model::Model, sup: &Supervisor) -> u64 {
    child_u64(m, sup, DATA)
}

#[test]
fn counter_survives_a_crash_on_another_kernel() {
    let mut m = model(Arch::Amd64, counter());
    let (image, at_checkpoint) = {
        let mut r = m.root();
        let mut env = ModelEnv(&mut r);
        let mut sup = Supervisor::spawn(&mut env, spec("counter")).expect("spawn");
        let out = sup.serve(&mut env, 1000, Timeout::from_us(5000)).unwrap();
        assert!(matches!(out, ServeOutcome::Idle | ServeOutcome::Budget), "{out:?}");
        let (cp, stats) = sup.checkpoint(&mut env).expect("checkpoint");
        assert_eq!(stats.threads, 1);
        assert!(stats.pages_copied >= 2, "code and data at least: {stats:?}");
        let at = counter_of(env.0.model(), &sup);
        assert!(at > 16, "the child counted: {at}");
        let bytes = rtcr_core::encode_image(Arch::Amd64, stats.seq, &cp).unwrap();
        // the child goes on, then crashes
        sup.serve(&mut env, 200, Timeout::from_us(5000)).unwrap();
        assert!(counter_of(env.0.model(), &sup) > at);
        (bytes, at)
    };
    // another ECU: a fresh kernel, the image bytes only
    let (meta, cp) = rtcr_image::decode(&image).expect("decode");
    let mut m2 = model(Arch::Amd64, counter());
    let mut r = m2.root();
    let mut env = ModelEnv(&mut r);
    let mut sup = Supervisor::restore(&mut env, spec("ignored"), &cp, meta.sequence).expect("restore");
    assert_eq!(counter_of(env.0.model(), &sup), at_checkpoint, "memory as at the cut");
    sup.serve(&mut env, 300, Timeout::from_us(5000)).unwrap();
    let now = counter_of(env.0.model(), &sup);
    assert!(now > at_checkpoint, "the counter continues: {at_checkpoint} -> {now}");
    drop(m);
}

/// Keeps its count in FPU registers (f0, and f1 = 7 × f0, checked each
/// step) and publishes it to DATA: if the FPU state were lost or mixed up in
/// a checkpoint or restore, the check would crash the child.
fn fpu_counter() -> Arc<dyn fiasco_model::Program> {
    struct F;
    impl fiasco_model::Program for F {
        fn step(&self, cpu: &mut Cpu<'_>) -> Result<(), Trap> {
            match cpu.state() {
                0 => {
                    let f0 = cpu.fpu(0);
                    if cpu.fpu(1) != f0 * 7 {
                        return Err(cpu.crash());
                    }
                    cpu.set_fpu(0, f0 + 1);
                    cpu.set_fpu(1, (f0 + 1) * 7);
                    cpu.store_u64(DATA, f0 + 1)?;
                    if (f0 + 1) % 8 == 0 {
                        cpu.goto(1);
                    }
                    Ok(())
                }
                _ => {
                    let _ = sys!(cpu, l4_sys::ipc::sleep(cpu, Timeout::from_us(50)));
                    cpu.goto(0);
                    Ok(())
                }
            }
        }
    }
    Arc::new(F)
}

#[test]
fn fpu_state_goes_into_the_image_and_comes_back() {
    let mut m = model(Arch::Amd64, fpu_counter());
    let bytes;
    {
        let mut r = m.root();
        let mut env = ModelEnv(&mut r);
        let mut sup = Supervisor::spawn(&mut env, spec("fpu")).unwrap();
        sup.serve(&mut env, 200, Timeout::from_us(2000)).unwrap();
        let (cp, st) = sup.checkpoint(&mut env).unwrap();
        let f = &cp.threads[0].fpu;
        let f0 = u64::from_le_bytes(f[0..8].try_into().unwrap());
        assert!(f0 > 8, "the FPU state was captured: f0 = {f0}");
        assert_eq!(u64::from_le_bytes(f[8..16].try_into().unwrap()), f0 * 7);
        // and the child goes on after the checkpoint without tripping its check
        let out = sup.serve(&mut env, 200, Timeout::from_us(2000)).unwrap();
        assert!(!matches!(out, ServeOutcome::Crash { .. }), "{out:?}");
        bytes = rtcr_core::encode_image(Arch::Amd64, st.seq, &cp).unwrap();
    }
    let (meta, cp) = rtcr_image::decode(&bytes).unwrap();
    let mut m2 = model(Arch::Amd64, fpu_counter());
    let mut r = m2.root();
    let mut env = ModelEnv(&mut r);
    let mut sup = Supervisor::restore(&mut env, spec("x"), &cp, meta.sequence).unwrap();
    let out = sup.serve(&mut env, 300, Timeout::from_us(2000)).unwrap();
    assert!(!matches!(out, ServeOutcome::Crash { .. }), "FPU state restored: {out:?}");
    let f0 = u64::from_le_bytes(cp.threads[0].fpu[0..8].try_into().unwrap());
    assert!(counter_of(env.0.model(), &sup) > f0, "counting on from the FPU value {f0}");
}

/// Sleeps until an absolute deadline 40 ms ahead: the deadline goes into
/// BR2 first, then the sleep (re-issued after a restore) names BR2 — as a
/// real restartable kernel entry re-issues only the `syscall`, with the
/// buffer registers as the UTCB holds them. Records when it woke.
fn deadline_sleeper() -> Arc<dyn fiasco_model::Program> {
    struct D;
    impl fiasco_model::Program for D {
        fn step(&self, cpu: &mut Cpu<'_>) -> Result<(), Trap> {
            match cpu.state() {
                0 => {
                    let d = cpu.clock_us() + 40_000;
                    l4_sys::Kernel::utcb(cpu).br[2] = d;
                    cpu.goto(1);
                    Ok(())
                }
                1 => {
                    let _ = sys!(cpu, l4_sys::ipc::sleep(cpu, Timeout::abs_in_br(2)));
                    let now = cpu.clock_us();
                    cpu.store_u64(DATA, now)?;
                    cpu.goto(2);
                    Ok(())
                }
                _ => {
                    let _ = sys!(cpu, l4_sys::ipc::sleep(cpu, Timeout::NEVER));
                    Ok(())
                }
            }
        }
    }
    Arc::new(D)
}

#[test]
fn an_absolute_timeout_is_kept_as_time_remaining() {
    let mut m = model(Arch::Amd64, deadline_sleeper());
    let bytes;
    {
        let mut r = m.root();
        let mut env = ModelEnv(&mut r);
        let mut sup = Supervisor::spawn(&mut env, spec("sleeper")).unwrap();
        sup.serve(&mut env, 50, Timeout::from_us(10_000)).unwrap();
        // 10 ms into the 40 ms sleep
        let (cp, st) = sup.checkpoint(&mut env).unwrap();
        assert_eq!(cp.threads[0].state, rtcr_image::ThreadState::InKernel);
        let (br, left) = cp.threads[0].timeouts[0];
        assert_eq!(br, 2);
        assert!((29_000..=30_500).contains(&left), "about 30 ms left: {left}");
        bytes = rtcr_core::encode_image(Arch::Amd64, st.seq, &cp).unwrap();
    }
    // another ECU whose clock already reads 5 s
    let (meta, cp) = rtcr_image::decode(&bytes).unwrap();
    let left = cp.threads[0].timeouts[0].1;
    let mut m2 = model(Arch::Amd64, deadline_sleeper());
    let mut r = m2.root();
    let mut env = ModelEnv(&mut r);
    l4_sys::ipc::sleep(&mut env, Timeout::from_us(5_000_000)).unwrap();
    let mut sup = Supervisor::restore(&mut env, spec("x"), &cp, meta.sequence).unwrap();
    let restored_at = env.0.model().clock_us();
    sup.serve(&mut env, 50, Timeout::from_us(100_000)).unwrap();
    let woke = counter_of(env.0.model(), &sup);
    assert!(
        woke >= restored_at + left && woke <= restored_at + left + 500,
        "woke at {woke}, restored at {restored_at} with {left} µs left"
    );
}

/// Sleeps 40 ms with a relative timeout, then records when it woke (DATA)
/// and when it went to sleep (DATA + 8).
fn relative_sleeper() -> Arc<dyn fiasco_model::Program> {
    struct R;
    impl fiasco_model::Program for R {
        fn step(&self, cpu: &mut Cpu<'_>) -> Result<(), Trap> {
            match cpu.state() {
                0 => {
                    let now = cpu.clock_us();
                    cpu.store_u64(DATA + 8, now)?;
                    cpu.goto(1);
                    Ok(())
                }
                1 => {
                    let _ = sys!(cpu, l4_sys::ipc::sleep(cpu, Timeout::from_us(40_000)));
                    let now = cpu.clock_us();
                    cpu.store_u64(DATA, now)?;
                    cpu.goto(2);
                    Ok(())
                }
                _ => {
                    let _ = sys!(cpu, l4_sys::ipc::sleep(cpu, Timeout::NEVER));
                    Ok(())
                }
            }
        }
    }
    Arc::new(R)
}

#[test]
fn a_checkpoint_does_not_stretch_a_relative_sleep() {
    for arch in [Arch::Amd64, Arch::Arm64] {
        let mut m = model(arch, relative_sleeper());
        let mut r = m.root();
        let mut env = ModelEnv(&mut r);
        let mut sup = Supervisor::spawn(&mut env, spec("sleeper")).unwrap();
        sup.serve(&mut env, 50, Timeout::from_us(25_000)).unwrap();
        // 25 ms into the 40 ms sleep: cut, resume
        let (cp, _) = sup.checkpoint(&mut env).unwrap();
        assert_eq!(cp.threads[0].state, rtcr_image::ThreadState::InKernel);
        let rr = arch.restart_regs();
        let left = l4_sys::TimeoutPair::from_raw(cp.threads[0].regs[rr.timeout]).rcv.rel_us().unwrap();
        assert!((14_000..=15_500).contains(&left), "{arch:?}: about 15 ms left in the image: {left}");
        sup.serve(&mut env, 50, Timeout::from_us(100_000)).unwrap();
        let m = env.0.model();
        let (slept_at, woke) = (child_u64(m, &sup, DATA + 8), child_u64(m, &sup, DATA));
        assert!(woke != 0, "{arch:?}: the sleep ended");
        let took = woke - slept_at;
        assert!((40_000..=41_000).contains(&took), "{arch:?}: 40 ms sleep took {took} µs across a checkpoint");
    }
}

#[test]
fn a_relative_sleep_restored_elsewhere_sleeps_what_was_left() {
    let mut m = model(Arch::Arm64, relative_sleeper());
    let bytes;
    {
        let mut r = m.root();
        let mut env = ModelEnv(&mut r);
        let mut sup = Supervisor::spawn(&mut env, spec("sleeper")).unwrap();
        sup.serve(&mut env, 50, Timeout::from_us(30_000)).unwrap();
        let (cp, st) = sup.checkpoint(&mut env).unwrap();
        bytes = rtcr_core::encode_image(Arch::Arm64, st.seq, &cp).unwrap();
    }
    // another ECU, its clock and counter already 3 s on
    let (meta, cp) = rtcr_image::decode(&bytes).unwrap();
    let mut m2 = model(Arch::Arm64, relative_sleeper());
    let mut r = m2.root();
    let mut env = ModelEnv(&mut r);
    l4_sys::ipc::sleep(&mut env, Timeout::from_us(3_000_000)).unwrap();
    let mut sup = Supervisor::restore(&mut env, spec("x"), &cp, meta.sequence).unwrap();
    let restored_at = env.0.model().clock_us();
    sup.serve(&mut env, 50, Timeout::from_us(100_000)).unwrap();
    let woke = child_u64(env.0.model(), &sup, DATA);
    // about 10 ms were left at the cut
    let after = woke - restored_at;
    assert!((9_000..=11_000).contains(&after), "woke {after} µs after the restore");
}

/// Runs ordinary code (no kernel call) whose registers look like a
/// cancelled call: the tag register has the error bit and the UTCB's error
/// word says "cancelled" (left over from an earlier call, as on the kernel).
fn looks_cancelled() -> Arc<dyn fiasco_model::Program> {
    struct L;
    impl fiasco_model::Program for L {
        fn step(&self, cpu: &mut Cpu<'_>) -> Result<(), Trap> {
            let tag = match cpu.arch() {
                Arch::Amd64 => l4_sys::exc::amd64::mr::RAX,
                Arch::Arm64 => l4_sys::exc::arm64::mr::X0,
            };
            let n = cpu.load_u64(DATA)?;
            if n > 0 && cpu.reg(tag) != 0x8000 | n {
                // the register was not what this code left in it
                return Err(cpu.crash());
            }
            cpu.utcb().tcr_error = l4_sys::error::tcr::RECANCELED;
            cpu.store_u64(DATA, n + 1)?;
            cpu.set_reg(tag, 0x8000 | (n + 1));
            Ok(())
        }
    }
    Arc::new(L)
}

#[test]
fn a_thread_stopped_in_ordinary_code_is_not_rewound_whatever_its_registers_say() {
    for arch in [Arch::Amd64, Arch::Arm64] {
        let mut m = model(arch, looks_cancelled());
        let mut r = m.root();
        let mut env = ModelEnv(&mut r);
        let mut sup = Supervisor::spawn(&mut env, spec("looks")).unwrap();
        for round in 0..20 {
            let out = sup.serve(&mut env, 20, Timeout::from_us(200)).unwrap();
            assert!(!matches!(out, ServeOutcome::Crash { .. }), "{arch:?} round {round}: {out:?}");
            let (cp, _) = sup.checkpoint(&mut env).unwrap();
            // stopped between two instructions, not inside a kernel call
            assert_eq!(cp.threads[0].state, rtcr_image::record::ThreadState::Running, "{arch:?} round {round}");
        }
        assert!(child_u64(env.0.model(), &sup, DATA) > 20, "{arch:?}: it ran on");
    }
}
