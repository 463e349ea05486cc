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

/// A child whose server takes `delay_us` to answer each call, checkpointed
/// once while a call is in flight (main waits for the reply, T1 works).
fn in_flight(arch: Arch, delay_us: u64) -> (ModelEnv<'static, 'static>, Driver<MemRegion>) {
    // the model and its root live for the test (leaked: a test harness)
    let m: &'static mut fiasco_model::Model = Box::leak(Box::new(foreign_model(arch)));
    let r: &'static mut _ = Box::leak(Box::new(m.root()));
    let mut env = ModelEnv(r);
    let store = Store::new(MemRegion::zeroed(2 << 20));
    let policy = Policy { interval_us: 10_000_000, ..Policy::default() };
    let mut d = Driver::start(&mut env, foreign_spec("slow"), store, policy).unwrap();
    let t0 = env.0.model().clock_us();
    d.run_until(&mut env, t0 + 3_000).unwrap();
    let ct = child_obj(env.0.model(), &d.sup);
    env.0.model().poke(ct, SERVER_DELAY, &delay_us.to_le_bytes());
    // wait until a call is in flight: T1 has taken a number main has no reply for
    loop {
        let now = env.0.model().clock_us();
        d.run_until(&mut env, now + 50).unwrap();
        if word(&mut env, &d, SERVED) > word(&mut env, &d, CALLS) {
            break;
        }
    }
    d.checkpoint(&mut env);
    (env, d)
}

/// Stated in the child contract: a call in flight at the cut (the callee has
/// the request, the caller waits for the reply) is left alone by the
/// checkpoint — answered once, no error — and the image holds the caller
/// after the call. After a restore from that image the caller goes on with
/// its reply; the callee, restored before it replied, works again and its
/// reply fails (send phase, the caller no longer waits).
fn a_call_in_flight_at_the_cut(arch: Arch) {
    let (mut env, mut d) = in_flight(arch, 3_000);
    assert!(matches!(d.events.last(), Some(Event::Checkpoint { .. })), "{:?}", d.events);
    let now = env.0.model().clock_us();
    d.run_until(&mut env, now + 20_000).unwrap();
    assert_eq!(d.sup.visible_cancels, 0, "{:?}", d.events);
    assert_eq!(word(&mut env, &d, ERRORS), 0, "the live child saw nothing");
    assert_eq!(d.sup.visible_cancels, 0);
    let calls = word(&mut env, &d, CALLS);
    let (_, img) = d.store.latest().unwrap();
    let (_, cp) = rtcr_image::decode(&img).unwrap();
    let at_cut =
        u64::from_le_bytes(cp.pages.iter().find(|p| p.vaddr == DATA).unwrap().data[0x408..0x410].try_into().unwrap());
    let served_at_cut =
        u64::from_le_bytes(cp.pages.iter().find(|p| p.vaddr == DATA).unwrap().data[0x410..0x418].try_into().unwrap());
    assert_eq!(served_at_cut, at_cut + 1, "the image: T1 has call {} in hand, main waits for it", at_cut + 1);
    assert_eq!(cp.threads[0].state, rtcr_image::ThreadState::Running, "main recorded after the call");
    // restore from it
    d.sup.inject_wild_jump(&mut env, 2).unwrap();
    let now = env.0.model().clock_us();
    d.run_until(&mut env, now + 30_000).unwrap();
    assert!(d.events.iter().any(|e| matches!(e, Event::Restored { .. })), "{:?}", d.events);
    assert_eq!(word(&mut env, &d, ERRORS), 0, "{arch:?}: no call answered twice, no number lost");
    assert_eq!(word(&mut env, &d, REPLY_FAILED), 1, "{arch:?}: T1's reply to the call in flight failed, once");
    assert!(word(&mut env, &d, CALLS) > at_cut + 1, "main went on past the call in flight ({calls} before)");
}

#[test]
fn a_call_in_flight_at_the_cut_amd64() {
    a_call_in_flight_at_the_cut(Arch::Amd64);
}

#[test]
fn a_call_in_flight_at_the_cut_arm64() {
    a_call_in_flight_at_the_cut(Arch::Arm64);
}

/// Stated in the child contract: a call still waiting for its reply
/// `SETTLE_US` after the cut is cancelled (the kernel gives no way to take
/// its state otherwise): the caller sees RECANCELED, and the callee's reply
/// fails.
fn a_call_longer_than_the_settle_time(arch: Arch) {
    let (mut env, mut d) = in_flight(arch, rtcr_core::checkpoint::SETTLE_US * 3);
    assert_eq!(d.sup.visible_cancels, 1, "{arch:?}: one call was cut");
    let now = env.0.model().clock_us();
    d.run_until(&mut env, now + 100_000).unwrap();
    // main saw its call cancelled; it calls again with the same number,
    // which T1 (it had taken that number) counts as a repeat: two errors
    assert_eq!(word(&mut env, &d, ERRORS), 2, "{arch:?}: the cancel, and the repeat it caused");
    assert_eq!(word(&mut env, &d, REPLY_FAILED), 1, "{arch:?}: T1's reply went nowhere");
}

#[test]
fn a_call_longer_than_the_settle_time_amd64() {
    a_call_longer_than_the_settle_time(Arch::Amd64);
}

#[test]
fn a_call_longer_than_the_settle_time_arm64() {
    a_call_longer_than_the_settle_time(Arch::Arm64);
}
