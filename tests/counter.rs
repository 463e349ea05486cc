//! The smallest end-to-end: a counting child is checkpointed, crashes, and
//! is restored on a fresh kernel from the image bytes alone; the counter
//! continues from the checkpointed value.

use rtcr_sim::*;

use fiasco_model::{sys, Cpu, Trap};
use l4_sys::exc::Arch;
use l4_sys::Timeout;
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
    let root = m.boot_objects().root_task;
    let t = m.object_at(root, sup.child_task().idx().0).unwrap();
    u64::from_le_bytes(m.peek(t, DATA, 8).unwrap().try_into().unwrap())
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
        let meta = rtcr_image::ImageMeta {
            arch: rtcr_image::image::Arch::Amd64,
            page_shift: 12,
            sequence: stats.seq,
            clock_us: cp.clock_us,
        };
        let bytes = rtcr_image::encode(&meta, &cp).expect("encode");
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
