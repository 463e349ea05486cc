//! A child whose kernel entries are not l4-sys's (bare `syscall` / `svc`
//! with L4Re's register use): checkpoints do not disturb its kernel calls —
//! no cancelled receive, no sleep cut short, every call answered once — and
//! a restore brings its blocked receives back as they were.

use l4_sys::exc::Arch;
use rtcr_core::driver::{Driver, Event, Policy};
use rtcr_image::{MemRegion, Store};
use rtcr_sim::foreign::*;
use rtcr_sim::*;

fn word(env: &mut ModelEnv<'_, '_>, d: &Driver<MemRegion>, a: u64) -> u64 {
    child_u64(env.0.model(), &d.sup, a)
}

fn run(arch: Arch, name: &str, until_us: u64, crash_every_us: Option<u64>) {
    let mut m = foreign_model(arch);
    let mut r = m.root();
    let mut env = ModelEnv(&mut r);
    let store = Store::new(MemRegion::zeroed(2 << 20));
    let policy = Policy { interval_us: 700, ..Policy::default() };
    let mut d = Driver::start(&mut env, foreign_spec(name), store, policy).unwrap();
    let t0 = env.0.model().clock_us();
    let mut last = (0, 0, 0);
    let mut next_crash = crash_every_us.map(|c| t0 + c);
    while env.0.model().clock_us() < t0 + until_us {
        let now = env.0.model().clock_us();
        d.run_until(&mut env, now + 5_000).unwrap();
        if let Some(at) = next_crash {
            if env.0.model().clock_us() >= at {
                d.sup.inject_wild_jump(&mut env, 0).unwrap();
                next_crash = Some(at + crash_every_us.unwrap());
                let now = env.0.model().clock_us();
                d.run_until(&mut env, now + 1_000).unwrap();
            }
        }
        let errors = word(&mut env, &d, ERRORS);
        let early = word(&mut env, &d, EARLY);
        let ledger = word(&mut env, &d, LEDGER_BAD);
        assert_eq!(
            (errors, early, ledger),
            (0, 0, 0),
            "{arch:?}: the child saw an error, an early sleep or a bad ledger: {:?}",
            d.events
        );
        assert!(!d.events.iter().any(|e| matches!(e, Event::LoopCrash { .. })), "{arch:?}: {:?}", d.events);
        let now = (word(&mut env, &d, CALLS), word(&mut env, &d, SERVED), word(&mut env, &d, SLEEPS));
        assert!(now.0 >= last.0 && now.1 >= last.1, "{arch:?}: counters went back: {last:?} -> {now:?}");
        last = now;
    }
    let checkpoints = d.events.iter().filter(|e| matches!(e, Event::Checkpoint { .. })).count();
    let restores = d.events.iter().filter(|e| matches!(e, Event::Restored { .. })).count();
    assert!(checkpoints > 15, "{checkpoints} checkpoints");
    assert!(last.0 > 100 && last.2 > 20, "the child made progress: {last:?}");
    assert_eq!(word(&mut env, &d, LATE), 0, "no sleep stretched to twice its length");
    assert_eq!(d.sup.visible_cancels, 0, "no kernel call was cut");
    assert!(word(&mut env, &d, LEDGER) > 100, "the ledger in the windows moved on");
    // the image has the child's memory where the child has it
    let (_, newest) = d.store.latest().unwrap();
    let (_, cp) = rtcr_image::decode(&newest).unwrap();
    for a in [RAM_WINDOW, RAM16_WINDOW, RAM16_WINDOW + 0x3000] {
        assert!(cp.pages.iter().any(|p| p.vaddr == a), "{arch:?}: page {a:#x} in the image");
    }
    assert!(cp.objects.contains(&rtcr_image::ObjectRecord::Kip { vaddr: KIP_WINDOW }), "{arch:?}: the KIP's place");
    if crash_every_us.is_some() {
        assert!(restores >= 2, "{:?}", d.events);
        assert!(!d.events.iter().any(|e| matches!(e, Event::StartedAfresh)), "always from an image");
        let (good, total) = d.sup.verify_slots(&mut env).unwrap();
        assert_eq!(good, total);
    }
    eprintln!("{arch:?}: {checkpoints} checkpoints, {restores} restores, calls/served/sleeps {last:?}");
}

#[test]
fn checkpoints_leave_a_foreign_childs_kernel_calls_alone_amd64() {
    run(Arch::Amd64, "foreign", 200_000, None);
}

#[test]
fn checkpoints_leave_a_foreign_childs_kernel_calls_alone_arm64() {
    run(Arch::Arm64, "foreign", 200_000, None);
}

#[test]
fn a_foreign_child_is_restored_with_its_receives_in_place_amd64() {
    run(Arch::Amd64, "foreign", 200_000, Some(40_000));
}

#[test]
fn a_foreign_child_is_restored_with_its_receives_in_place_arm64() {
    run(Arch::Arm64, "foreign", 200_000, Some(40_000));
}
