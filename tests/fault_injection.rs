//! Fault injection on the model, where every step can be a fault point
//! (issue "Reliability and security"):
//! * power lost while a checkpoint is written to the store, after every
//!   write unit of the image: the previous image stays, and restores exactly;
//! * power lost at every kernel entry of a checkpoint: the same;
//! * the child killed at each of its first 500 kernel entries: rtcr
//!   restores it from the last checkpoint and the restored child passes its
//!   own checks (the counter and its mirror, every gate and IRQ working).
//!
//! Each test prints how many fault points it tried.

use rtcr_sim::child::*;
use rtcr_sim::*;

use l4_sys::exc::Arch;
use l4_sys::Timeout;
use rtcr_core::driver::{Driver, Event, Policy};
use rtcr_core::Supervisor;
use rtcr_image::{Checkpoint, MemRegion, Store, TearingRegion};

fn encode(cp: &Checkpoint, seq: u64) -> Vec<u8> {
    rtcr_core::encode_image(Arch::Amd64, seq, cp).unwrap()
}

/// Restores `image` on a fresh kernel and checks memory and counter.
fn restores_exactly(image: &[u8]) {
    let (meta, cp) = rtcr_image::decode(image).expect("a complete image");
    let mut m = scenario_model(Arch::Amd64);
    let mut r = m.root();
    let mut env = ModelEnv(&mut r);
    let sup = Supervisor::restore(&mut env, spec("x"), &cp, meta.sequence).expect("restore");
    let mm = env.0.model();
    let t = mm.object_at(mm.boot_objects().root_task, sup.child_task().idx().0).unwrap();
    for p in &cp.pages {
        assert_eq!(mm.peek(t, p.vaddr, 4096).unwrap(), p.data, "page {:#x}", p.vaddr);
    }
}

/// Two checkpoints in a store, and a third image not yet written.
fn three_images() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let mut m = scenario_model(Arch::Amd64);
    let mut r = m.root();
    let mut env = ModelEnv(&mut r);
    let mut sup = Supervisor::spawn(&mut env, spec("power")).unwrap();
    let mut store = Store::new(MemRegion::zeroed(64 << 10));
    let mut images = Vec::new();
    for _ in 0..3 {
        for _ in 0..5 {
            env.0.model().fire_hw_irq(HW_LINE as u32);
            sup.serve(&mut env, 200, Timeout::from_us(2000)).unwrap();
        }
        let (cp, st) = sup.checkpoint(&mut env).unwrap();
        images.push(encode(&cp, st.seq));
    }
    store.write(&images[0]).unwrap();
    store.write(&images[1]).unwrap();
    (store.into_inner().0, images[1].clone(), images[2].clone())
}

#[test]
fn power_loss_at_every_write_unit_keeps_the_previous_checkpoint() {
    let (region, second, third) = three_images();
    let len = third.len();
    // a cut after every byte the store writes (body, then header), and past the end
    let cuts: Vec<usize> = (0..len + 64 + 8).collect();
    let (mut torn, mut complete) = (0, 0);
    for &cut in &cuts {
        let mut store = Store::new(TearingRegion::new(MemRegion(region.clone()), cut));
        let wrote = store.write(&third).is_ok();
        let (_, newest) = store.latest().expect("a good image is always there");
        if wrote {
            assert_eq!(newest, third, "cut {cut}: complete write");
            complete += 1;
        } else {
            assert_eq!(newest, second, "cut {cut}: the previous checkpoint");
            torn += 1;
        }
    }
    // what survives is byte for byte one of two images (checked at every
    // cut above); each restores exactly
    restores_exactly(&second);
    restores_exactly(&third);
    eprintln!(
        "power loss during a store write: {} cut points tried ({torn} torn, {complete} complete), 0 lost a checkpoint",
        cuts.len()
    );
    assert!(torn >= len, "every cut inside the image tears it: {torn} torn of {len} bytes");
    assert!(complete > 0, "a write that is not cut completes");
}

#[test]
fn power_loss_at_every_kernel_entry_of_a_checkpoint() {
    // how many kernel entries does a checkpoint take?
    let entries_of_a_checkpoint = {
        let mut m = scenario_model(Arch::Amd64);
        let mut r = m.root();
        let mut env = ModelEnv(&mut r);
        let mut sup = Supervisor::spawn(&mut env, spec("power")).unwrap();
        sup.serve(&mut env, 200, Timeout::from_us(2000)).unwrap();
        let e0 = env.0.model().entries();
        sup.checkpoint(&mut env).unwrap();
        env.0.model().entries() - e0
    };
    let mut tried = 0;
    for k in 0..entries_of_a_checkpoint {
        let mut m = scenario_model(Arch::Amd64);
        let mut r = m.root();
        let mut env = ModelEnv(&mut r);
        let store = Store::new(MemRegion::zeroed(256 << 10));
        let mut d = Driver::start(&mut env, spec("power"), store, Policy::default()).unwrap();
        let t0 = env.0.model().clock_us();
        d.run_until(&mut env, t0 + 12_000).unwrap();
        let first = d.store.latest().expect("one checkpoint stored").1;
        // the power goes at the k-th kernel entry of the next checkpoint
        env.0.model().halt_after_entries(k);
        d.checkpoint(&mut env);
        assert!(matches!(d.events.last(), Some(Event::CheckpointFailed(_))), "k = {k}: {:?}", d.events.last());
        let (_, newest) = d.store.latest().unwrap();
        assert_eq!(newest, first, "k = {k}: the stored checkpoint is untouched");
        restores_exactly(&newest);
        tried += 1;
    }
    eprintln!("power loss during a checkpoint: {tried} kernel entries tried, 0 lost a checkpoint");
    assert_eq!(tried, entries_of_a_checkpoint);
    assert!(tried >= 10, "a checkpoint is more than a few kernel entries");
}

#[test]
fn the_child_dies_at_each_of_its_first_500_kernel_entries() {
    let mut tried = 0;
    for k in 0..500u64 {
        let mut m = scenario_model(Arch::Amd64);
        let mut r = m.root();
        let mut env = ModelEnv(&mut r);
        let store = Store::new(MemRegion::zeroed(256 << 10));
        let policy = Policy { interval_us: 4_000, ..Policy::default() };
        let mut d = Driver::start(&mut env, spec("death"), store, policy).unwrap();
        let t0 = env.0.model().clock_us();
        d.run_until(&mut env, t0 + 4_500).unwrap();
        assert!(d.events.iter().any(|e| matches!(e, Event::Checkpoint { .. })), "a checkpoint before the death");
        let (_, img) = d.store.latest().unwrap();
        let (_, cp) = rtcr_image::decode(&img).unwrap();
        let at_image =
            u64::from_le_bytes(cp.pages.iter().find(|p| p.vaddr == DATA).unwrap().data[..8].try_into().unwrap());
        let mm = env.0.model();
        let t = mm.object_at(mm.boot_objects().root_task, d.sup.child_task().idx().0).unwrap();
        env.0.model().crash_at_entry(t, k);
        let mut guard = 0;
        while !d.events.iter().any(|e| matches!(e, Event::Restored { .. })) {
            let now = env.0.model().clock_us();
            d.run_until(&mut env, now + 2_000).unwrap();
            guard += 1;
            assert!(guard < 200, "k = {k}: the child never reached its kernel entry {k}");
        }
        // the restored child runs on and passes its own checks
        let now = env.0.model().clock_us();
        for _ in 0..3 {
            env.0.model().fire_hw_irq(HW_LINE as u32);
            let now = env.0.model().clock_us();
            d.run_until(&mut env, now + 1_500).unwrap();
        }
        let crashes = d.events.iter().filter(|e| matches!(e, Event::Crash { .. })).count();
        assert_eq!(crashes, 1, "k = {k}: the restored child did not crash again: {:?}", d.events);
        let mm = env.0.model();
        let t = mm.object_at(mm.boot_objects().root_task, d.sup.child_task().idx().0).unwrap();
        let c = u64::from_le_bytes(mm.peek(t, COUNTER, 8).unwrap().try_into().unwrap());
        let mirror = u64::from_le_bytes(mm.peek(t, MIRROR, 8).unwrap().try_into().unwrap());
        assert!(c > at_image, "k = {k}: counter {c} moved on from the image's {at_image}");
        assert_eq!(mirror, 3 * c, "k = {k}");
        assert!(env.0.model().clock_us() > now);
        tried += 1;
    }
    eprintln!("child killed at each of its first {tried} kernel entries: {tried} restores, each restored child passed its checks");
}
