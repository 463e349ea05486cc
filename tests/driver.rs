//! The driver: periodic checkpoints alternate between the store's slots; a
//! crash is answered by a restore from the newest good image; a child that
//! crashes right after every restore is restored with a growing backoff, and
//! rtcr's share of time spent restoring stays small.

use rtcr_sim::child::*;
use rtcr_sim::*;

use l4_sys::exc::Arch;
use rtcr_core::driver::{Driver, Event, Policy};
use rtcr_image::{MemRegion, Store};

fn counter(env: &mut ModelEnv<'_, '_>, d: &Driver<MemRegion>) -> u64 {
    child_u64(env.0.model(), &d.sup, COUNTER)
}

#[test]
fn periodic_checkpoints_and_a_restore_after_a_crash() {
    let mut m = scenario_model(Arch::Amd64);
    let mut r = m.root();
    let mut env = ModelEnv(&mut r);
    let store = Store::new(MemRegion::zeroed(2 << 20));
    let mut d = Driver::start(&mut env, spec("driver"), store, Policy::default()).unwrap();
    let t0 = env.0.model().clock_us();
    d.run_until(&mut env, t0 + 55_000).unwrap();
    let slots: Vec<u8> = d
        .events
        .iter()
        .filter_map(|e| if let Event::Checkpoint { slot, .. } = e { Some(*slot) } else { None })
        .collect();
    assert!(slots.len() >= 4, "{:?}", d.events);
    assert!(slots.windows(2).all(|w| w[0] != w[1]), "A/B alternate: {slots:?}");
    // crash the child: main's check fails at the next count
    let m2 = env.0.model();
    let t = m2.object_at(m2.boot_objects().root_task, d.sup.child_task().idx().0).unwrap();
    let c = counter(&mut env, &d);
    env.0.model().poke(t, CRASH_AT, &(c + 1).to_le_bytes());
    let (_, newest) = d.store.latest().unwrap();
    let (meta, cp) = rtcr_image::decode(&newest).unwrap();
    let at_image = u64::from_le_bytes(cp.pages.iter().find(|p| p.vaddr == DATA).unwrap().data[..8].try_into().unwrap());
    let now = env.0.model().clock_us();
    d.run_until(&mut env, now + 3_000).unwrap();
    let restored = d.events.iter().find_map(|e| if let Event::Restored { seq, .. } = e { Some(*seq) } else { None });
    assert_eq!(restored, Some(meta.sequence), "{:?}", d.events);
    assert!(d.events.iter().any(|e| matches!(e, Event::Crash { thread: 0, .. })));
    let after = counter(&mut env, &d);
    assert!(after >= at_image, "continues from the image's {at_image}, now {after}");
    // where the restore's time went, phase by phase
    let phases: Vec<&str> = d.sup.restore_phases.iter().map(|p| p.0).collect();
    assert_eq!(
        phases,
        [
            "delete the child and its objects",
            "read and verify the image",
            "objects and slots",
            "memory",
            "threads and UTCBs",
            "registers and resume"
        ]
    );
}

#[test]
fn a_crash_loop_is_restored_with_backoff() {
    let mut m = scenario_model(Arch::Amd64);
    let mut r = m.root();
    let mut env = ModelEnv(&mut r);
    let store = Store::new(MemRegion::zeroed(2 << 20));
    let policy = Policy {
        interval_us: 1_000_000,
        backoff_min_us: 2_000,
        backoff_max_us: 64_000,
        loop_window_us: 50_000,
        max_restore_permille: 50,
        // this test is about the backoff: the poisoned image is never abandoned
        max_image_failures: u32::MAX,
        ..Policy::default()
    };
    let mut d = Driver::start(&mut env, spec("looper"), store, policy).unwrap();
    let t0 = env.0.model().clock_us();
    d.run_until(&mut env, t0 + 5_000).unwrap();
    // make every restored child crash at once: the crash marker goes into the image
    let m2 = env.0.model();
    let t = m2.object_at(m2.boot_objects().root_task, d.sup.child_task().idx().0).unwrap();
    env.0.model().poke(t, CRASH_AT, &1u64.to_le_bytes());
    d.checkpoint(&mut env);
    let start = env.0.model().clock_us();
    d.run_until(&mut env, start + 500_000).unwrap();
    let backoffs: Vec<u64> = d
        .events
        .iter()
        .filter_map(|e| if let Event::Restored { backoff_us, .. } = e { Some(*backoff_us) } else { None })
        .collect();
    assert!(backoffs.len() >= 5, "{backoffs:?}");
    assert!(backoffs.windows(2).all(|w| w[1] >= w[0]), "backoff grows: {backoffs:?}");
    assert_eq!(*backoffs.last().unwrap(), 64_000, "and stops at the limit");
    let took: u64 = d
        .events
        .iter()
        .filter_map(|e| if let Event::Restored { took_us, .. } = e { Some(*took_us) } else { None })
        .sum();
    let elapsed = env.0.model().clock_us() - start;
    let share = took as f64 / elapsed as f64;
    assert!(share < 0.05, "rtcr spent {share:.3} of the time restoring");
    let now = env.0.model().clock_us();
    let permille = d.restore_permille(now);
    assert!(permille <= policy.max_restore_permille, "under the configured bound: {permille} per mille");
    eprintln!(
        "crash loop: {} restores, rtcr restoring {permille} per mille of the time (bound {})",
        backoffs.len(),
        policy.max_restore_permille
    );
}

#[test]
fn an_image_from_outside_is_verified_before_use() {
    // an arm64 image handed to an x86_64 rtcr is refused; the child starts fresh
    let arm_image = {
        let mut m = scenario_model(Arch::Arm64);
        let mut r = m.root();
        let mut env = ModelEnv(&mut r);
        let mut sup = rtcr_core::Supervisor::spawn(&mut env, spec("arm")).unwrap();
        sup.serve(&mut env, 100, l4_sys::Timeout::from_us(2000)).unwrap();
        let (cp, st) = sup.checkpoint(&mut env).unwrap();
        rtcr_core::encode_image(Arch::Arm64, st.seq, &cp).unwrap()
    };
    let mut store = Store::new(MemRegion::zeroed(1 << 20));
    store.write(&arm_image).unwrap();
    let mut m = scenario_model(Arch::Amd64);
    let mut r = m.root();
    let mut env = ModelEnv(&mut r);
    let d = Driver::start(&mut env, spec("x"), store, Policy::default()).unwrap();
    match &d.events[..] {
        [Event::ImageRefused(why)] => assert!(why.contains("arm"), "{why}"),
        e => panic!("{e:?}"),
    }
    // a store whose both slots are corrupt: refused with both reasons
    let mut bytes = vec![0u8; 1 << 20];
    bytes[0] = b'X';
    bytes[(1 << 19) + 3] = 1;
    let store = Store::new(MemRegion(bytes));
    let d = Driver::start(&mut env, spec("y"), store, Policy::default()).unwrap();
    assert!(matches!(&d.events[..], [Event::ImageRefused(_)]), "{:?}", d.events);
}

#[test]
fn a_wild_jump_crashes_the_child_and_it_is_restored_with_every_slot() {
    let mut m = scenario_model(Arch::Arm64);
    let mut r = m.root();
    let mut env = ModelEnv(&mut r);
    let store = Store::new(MemRegion::zeroed(2 << 20));
    let mut d = Driver::start(&mut env, spec("wild"), store, Policy::default()).unwrap();
    let t0 = env.0.model().clock_us();
    d.run_until(&mut env, t0 + 25_000).unwrap();
    let slots_before = d.sup.recorded_slots();
    // the test hook of rtcr's crash_ms=: the main thread jumps to 0
    d.sup.inject_wild_jump(&mut env, 0).unwrap();
    assert!(d.sup.inject_wild_jump(&mut env, 99).is_err(), "no such thread");
    let now = env.0.model().clock_us();
    d.run_until(&mut env, now + 5_000).unwrap();
    assert!(d.events.iter().any(|e| matches!(e, Event::Crash { thread: 0, .. })), "{:?}", d.events);
    assert!(d.events.iter().any(|e| matches!(e, Event::Restored { .. })), "{:?}", d.events);
    assert_eq!(d.sup.recorded_slots(), slots_before);
    let (good, total) = d.sup.verify_slots(&mut env).unwrap();
    assert_eq!(good, total);
    assert_eq!(total, slots_before.len() + 8, "recorded slots, four exception gates and four threads for direct IPC");
}

#[test]
fn when_the_newest_image_cannot_be_restored_the_older_one_is() {
    let mut m = scenario_model(Arch::Amd64);
    let mut r = m.root();
    let mut env = ModelEnv(&mut r);
    let store = Store::new(MemRegion::zeroed(2 << 20));
    let mut d = Driver::start(&mut env, spec("fallback"), store, Policy::default()).unwrap();
    let t0 = env.0.model().clock_us();
    d.run_until(&mut env, t0 + 25_000).unwrap();
    // a newest image that decodes but cannot be restored: its hardware IRQ
    // names an interrupt line this kernel does not have
    let (_, newest) = d.store.latest().unwrap();
    let (meta, mut cp) = rtcr_image::decode(&newest).unwrap();
    let hw = cp.objects.iter_mut().find_map(|o| match o {
        rtcr_image::ObjectRecord::Irq { hw_line: Some(line), .. } => Some(line),
        _ => None,
    });
    *hw.expect("the scenario binds a hardware line") = 999;
    let poisoned = rtcr_core::encode_image(Arch::Amd64, meta.sequence + 1, &cp).unwrap();
    d.store.write(&poisoned).unwrap();
    let taken = d.sup.frames_taken();
    let slots = d.sup.recorded_slots();
    d.events.clear();
    // crash: the driver tries the poisoned image, takes it down, restores the older
    let ct = child_obj(env.0.model(), &d.sup);
    let c = counter(&mut env, &d);
    env.0.model().poke(ct, CRASH_AT, &(c + 1).to_le_bytes());
    let now = env.0.model().clock_us();
    d.run_until(&mut env, now + 5_000).unwrap();
    let failed =
        d.events.iter().position(|e| matches!(e, Event::RestoreFailed { seq, .. } if *seq == meta.sequence + 1));
    let restored = d.events.iter().position(|e| matches!(e, Event::Restored { seq, .. } if *seq == meta.sequence));
    assert!(failed.is_some() && restored.is_some() && failed < restored, "{:?}", d.events);
    assert!(!d.events.iter().any(|e| matches!(e, Event::StartedAfresh)), "{:?}", d.events);
    // the child is whole and runs on; the failed try left nothing behind
    assert_eq!(d.sup.recorded_slots(), slots);
    let (good, total) = d.sup.verify_slots(&mut env).unwrap();
    assert_eq!(good, total);
    assert_eq!(d.sup.frames_taken(), taken, "the failed restore's frames were reused");
    let later = env.0.model().clock_us();
    let before = counter(&mut env, &d);
    d.run_until(&mut env, later + 3_000).unwrap();
    assert!(counter(&mut env, &d) > before, "it counts on");
}

#[test]
fn when_no_image_can_be_restored_the_child_starts_afresh() {
    let mut m = scenario_model(Arch::Arm64);
    let mut r = m.root();
    let mut env = ModelEnv(&mut r);
    let store = Store::new(MemRegion::zeroed(2 << 20));
    let mut d = Driver::start(&mut env, spec("afresh"), store, Policy::default()).unwrap();
    let t0 = env.0.model().clock_us();
    d.run_until(&mut env, t0 + 25_000).unwrap();
    // both slots poisoned
    for _ in 0..2 {
        let (_, newest) = d.store.latest().unwrap();
        let (meta, mut cp) = rtcr_image::decode(&newest).unwrap();
        for o in cp.objects.iter_mut() {
            if let rtcr_image::ObjectRecord::Irq { hw_line: Some(line), .. } = o {
                *line = 999;
            }
        }
        d.store.write(&rtcr_core::encode_image(Arch::Arm64, meta.sequence + 1, &cp).unwrap()).unwrap();
    }
    d.events.clear();
    d.recover(&mut env).unwrap();
    let fails = d.events.iter().filter(|e| matches!(e, Event::RestoreFailed { .. })).count();
    assert_eq!(fails, 2, "{:?}", d.events);
    assert!(matches!(d.events.last(), Some(Event::StartedAfresh)), "{:?}", d.events);
    let now = env.0.model().clock_us();
    d.run_until(&mut env, now + 5_000).unwrap();
    assert!(counter(&mut env, &d) > 0, "the fresh child counts");
}

/// Writes a copy of the newest image, one sequence on, whose child crashes
/// at its next count (its crash marker set); returns the new sequence.
fn write_poisoned(d: &mut Driver<MemRegion>, arch: Arch) -> u64 {
    let (_, newest) = d.store.latest().unwrap();
    let (meta, mut cp) = rtcr_image::decode(&newest).unwrap();
    let page = cp.pages.iter_mut().find(|p| p.vaddr == CRASH_AT & !0xfff).expect("the data page");
    let off = (CRASH_AT & 0xfff) as usize;
    page.data[off..off + 8].copy_from_slice(&1u64.to_le_bytes());
    let seq = meta.sequence + 1;
    d.store.write(&rtcr_core::encode_image(arch, seq, &cp).unwrap()).unwrap();
    seq
}

/// A policy with no periodic checkpoints (the tests take them) and an image
/// abandoned after two failures.
fn escalating() -> Policy {
    Policy { interval_us: 10_000_000, max_image_failures: 2, ..Policy::default() }
}

#[test]
fn a_poisoned_image_is_abandoned_and_the_older_one_restored() {
    let mut m = scenario_model(Arch::Amd64);
    let mut r = m.root();
    let mut env = ModelEnv(&mut r);
    let store = Store::new(MemRegion::zeroed(2 << 20));
    let mut d = Driver::start(&mut env, spec("poisoned"), store, escalating()).unwrap();
    let t0 = env.0.model().clock_us();
    d.run_until(&mut env, t0 + 5_000).unwrap();
    d.checkpoint(&mut env);
    let (_, good) = d.store.latest().unwrap();
    let good_seq = rtcr_image::decode(&good).unwrap().0.sequence;
    // the next image is poisoned: a child restored from it crashes at once
    let bad_seq = write_poisoned(&mut d, Arch::Amd64);
    assert_eq!(bad_seq, good_seq + 1);
    d.sup.inject_wild_jump(&mut env, 0).unwrap();
    let now = env.0.model().clock_us();
    d.run_until(&mut env, now + 300_000).unwrap();
    let ev = &d.events;
    let loops: Vec<u32> = ev
        .iter()
        .filter_map(|e| match e {
            Event::LoopCrash { seq: Some(s), failures } if *s == bad_seq => Some(*failures),
            _ => None,
        })
        .collect();
    assert_eq!(loops, vec![1, 2], "{ev:?}");
    let abandoned = ev.iter().position(|e| matches!(e, Event::ImageAbandoned { seq, failures: 2 } if *seq == bad_seq));
    let older = ev.iter().position(|e| matches!(e, Event::Restored { seq, .. } if *seq == good_seq));
    assert!(abandoned.is_some() && older.is_some() && abandoned < older, "{ev:?}");
    assert!(!ev.iter().any(|e| matches!(e, Event::StartedAfresh)), "{ev:?}");
    assert_eq!(ev.iter().filter(|e| matches!(e, Event::Crash { .. })).count(), 3, "the first crash, then two loops");
    // the child restored from the older image runs and counts on
    let before = counter(&mut env, &d);
    let later = env.0.model().clock_us();
    d.run_until(&mut env, later + 5_000).unwrap();
    assert!(counter(&mut env, &d) > before, "it counts on");
}

#[test]
fn when_both_images_are_poisoned_the_child_starts_afresh_and_stays_up() {
    let mut m = scenario_model(Arch::Arm64);
    let mut r = m.root();
    let mut env = ModelEnv(&mut r);
    let store = Store::new(MemRegion::zeroed(2 << 20));
    let mut d = Driver::start(&mut env, spec("both"), store, escalating()).unwrap();
    let t0 = env.0.model().clock_us();
    d.run_until(&mut env, t0 + 5_000).unwrap();
    d.checkpoint(&mut env);
    write_poisoned(&mut d, Arch::Arm64);
    write_poisoned(&mut d, Arch::Arm64);
    d.sup.inject_wild_jump(&mut env, 0).unwrap();
    let now = env.0.model().clock_us();
    d.run_until(&mut env, now + 500_000).unwrap();
    let abandoned = d.events.iter().filter(|e| matches!(e, Event::ImageAbandoned { .. })).count();
    assert_eq!(abandoned, 2, "{:?}", d.events);
    let afresh = d.events.iter().position(|e| matches!(e, Event::StartedAfresh));
    let last_abandon = d.events.iter().rposition(|e| matches!(e, Event::ImageAbandoned { .. }));
    assert!(afresh > last_abandon, "{:?}", d.events);
    assert_eq!(d.events.iter().filter(|e| matches!(e, Event::StartedAfresh)).count(), 1, "{:?}", d.events);
    // and is checkpointed again: its images are numbered on from the stored ones
    let stored = rtcr_image::decode(&d.store.latest().unwrap().1).unwrap().0.sequence;
    d.checkpoint(&mut env);
    assert!(matches!(d.events.last(), Some(Event::Checkpoint { .. })), "{:?}", d.events.last());
    assert_eq!(rtcr_image::decode(&d.store.latest().unwrap().1).unwrap().0.sequence, stored + 1);
    // the fresh child (its ELF has no crash marker) counts
    let c = counter(&mut env, &d);
    let later = env.0.model().clock_us();
    d.run_until(&mut env, later + 5_000).unwrap();
    assert!(counter(&mut env, &d) > c && c > 0, "the fresh child counts");
}

#[test]
fn a_child_that_crashes_before_its_first_checkpoint_is_restarted_with_a_growing_backoff() {
    let mut m = scenario_model(Arch::Amd64);
    let mut r = m.root();
    let mut env = ModelEnv(&mut r);
    // the crash marker is in the ELF's data: every fresh start crashes at once
    let mut s = spec("early");
    let mut data = vec![0u8; 4096];
    data[(CRASH_AT - DATA) as usize..][..8].copy_from_slice(&1u64.to_le_bytes());
    s.load.push((DATA, data, 6));
    let policy = Policy { backoff_min_us: 2_000, backoff_max_us: 16_000, ..escalating() };
    let mut d = Driver::start(&mut env, s, Store::new(MemRegion::zeroed(2 << 20)), policy).unwrap();
    let mut backoffs = Vec::new();
    let t0 = env.0.model().clock_us();
    while env.0.model().clock_us() < t0 + 200_000 {
        let until = env.0.model().clock_us() + 1_000;
        d.run_until(&mut env, until).unwrap();
        if backoffs.last() != Some(&d.backoff_us()) {
            backoffs.push(d.backoff_us());
        }
    }
    let loops = d.events.iter().filter(|e| matches!(e, Event::LoopCrash { seq: None, .. })).count();
    let starts = d.events.iter().filter(|e| matches!(e, Event::StartedAfresh)).count();
    assert!(loops >= 4 && starts == loops, "{:?}", d.events);
    assert_eq!(backoffs[..4], [2_000, 4_000, 8_000, 16_000], "doubling to the limit: {backoffs:?}");
    assert_eq!(*backoffs.last().unwrap(), 16_000);
    assert!(!d.events.iter().any(|e| matches!(e, Event::Checkpoint { .. })), "it never got that far");
}

#[test]
fn a_checkpoint_out_of_turn_starts_the_interval_afresh() {
    let mut m = scenario_model(Arch::Arm64);
    let mut r = m.root();
    let mut env = ModelEnv(&mut r);
    let store = Store::new(MemRegion::zeroed(2 << 20));
    let policy = Policy::default();
    let mut d = Driver::start(&mut env, spec("turn"), store, policy).unwrap();
    let t0 = env.0.model().clock_us();
    d.run_until(&mut env, t0 + 25_000).unwrap();
    let count = |d: &Driver<MemRegion>| d.events.iter().filter(|e| matches!(e, Event::Checkpoint { .. })).count();
    // rtcr away for three intervals (as in JDB): the periodic checkpoint is overdue
    l4_sys::ipc::sleep(&mut env, l4_sys::Timeout::from_us(3 * policy.interval_us)).ok();
    d.checkpoint_now(&mut env);
    let n = count(&d);
    let now = env.0.model().clock_us();
    d.run_until(&mut env, now + policy.interval_us / 2).unwrap();
    assert_eq!(count(&d), n, "a periodic checkpoint right after the one out of turn: {:?}", d.events);
    let now = env.0.model().clock_us();
    d.run_until(&mut env, now + 2 * policy.interval_us).unwrap();
    assert!(count(&d) > n, "the periodic checkpoints go on: {:?}", d.events);
}
