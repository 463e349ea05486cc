//! The scenario that must pass (issue: "The scenario that must pass"): a
//! child with a main thread and three more — an entrypoint serving three IPC
//! gates with distinct labels (two of them called by a client thread), three
//! IRQs with distinct labels (two software IRQs triggered by the client, one
//! hardware line fired through the model's ICU), a counter in memory that
//! main increments and checks. It is checkpointed while its threads are
//! computing, blocked on a gate, blocked on an IRQ and inside a call to rtcr;
//! it crashes; it is restored on a fresh kernel from the image bytes alone.

use rtcr_sim::child::*;
use rtcr_sim::*;

use fiasco_model::{Model, ObjKindName};
use l4_sys::exc::Arch;
use l4_sys::Timeout;
use rtcr_core::supervisor::ServeOutcome;
use rtcr_core::Supervisor;
use rtcr_image::record::ThreadState;

/// Slot, type, rights, label of every capability of the child (object ids
/// and bound-thread ids differ between kernels and are left out).
fn cap_view(m: &Model, sup: &Supervisor) -> Vec<(u64, ObjKindName, u8, Option<u64>)> {
    m.cap_table(child_obj(m, sup)).into_iter().map(|r| (r.idx, r.kind, r.rights, r.label)).collect()
}

fn image_of(cp: &rtcr_image::Checkpoint, seq: u64, arch: Arch) -> Vec<u8> {
    rtcr_core::encode_image(arch, seq, cp).expect("encode")
}

/// Serves and fires the hardware line now and then.
fn run(env: &mut ModelEnv<'_, '_>, sup: &mut Supervisor, rounds: usize) -> ServeOutcome {
    let mut last = ServeOutcome::Idle;
    for i in 0..rounds {
        if i % 3 == 0 {
            env.0.model().fire_hw_irq(HW_LINE as u32);
        }
        last = sup.serve(env, 200, Timeout::from_us(2000)).expect("serve");
        if let ServeOutcome::Crash { .. } = last {
            return last;
        }
    }
    last
}

fn scenario(arch: Arch) {
    let mut m = scenario_model(arch);
    let (bytes, before, counter_at_cut, labels_at_cut) = {
        let mut r = m.root();
        let mut env = ModelEnv(&mut r);
        let mut sup = Supervisor::spawn(&mut env, spec("scenario")).expect("spawn");
        run(&mut env, &mut sup, 20);
        // every object the child made is recorded in the slot it chose
        let slots = sup.recorded_slots();
        for s in [0x10, 0x11, 0x12, 0x20, 0x21, 0x22, 0x30, 0x31, 0x32] {
            assert!(slots.iter().any(|x| x.0 == s), "slot {s:#x} recorded: {slots:?}");
        }
        // let the children run while rtcr does not receive: the client ends
        // up inside a call to rtcr, the entrypoint and the IRQ waiter wait
        env.0.model().run(3000);
        let before = cap_view(env.0.model(), &sup);
        let (cp, stats) = sup.checkpoint(&mut env).expect("checkpoint");
        assert_eq!(stats.threads, 4, "{:?}", cp.threads.iter().map(|t| t.state).collect::<Vec<_>>());
        let states: Vec<ThreadState> = cp.threads.iter().map(|t| t.state).collect();
        // a thread blocked in a kernel call at the cut is recorded in it:
        // rewound into l4-sys's entry (cancelled after rtcr waited for it)
        // or as the receive it was in (it came back after the cut)
        let in_call = |s: ThreadState| matches!(s, ThreadState::InKernel | ThreadState::InCall { .. });
        assert_eq!(states[0], ThreadState::Running, "main computing");
        assert!(in_call(states[1]), "entrypoint blocked on its gates: {states:?}");
        // the client was inside a call to rtcr: rtcr answers it while it
        // waits for the blocked threads, so it is recorded after the call
        assert!(in_call(states[2]) || states[2] == ThreadState::Running, "client: {states:?}");
        assert!(in_call(states[3]), "IRQ waiter blocked on its IRQ: {states:?}");
        let page = cp.pages.iter().find(|p| p.vaddr == DATA).expect("data page");
        let counter = u64::from_le_bytes(page.data[0..8].try_into().unwrap());
        let labels: Vec<u64> = [0x100, 0x200, 0x300, 0x1010, 0x1020, 0x1030]
            .iter()
            .map(|&l| {
                let a = (label_slot(l) - DATA) as usize;
                u64::from_le_bytes(page.data[a..a + 8].try_into().unwrap())
            })
            .collect();
        assert!(labels.iter().all(|&n| n > 0), "every gate and IRQ was used before the cut: {labels:?}");
        let bytes = image_of(&cp, stats.seq, arch);
        // the child goes on after the checkpoint
        run(&mut env, &mut sup, 5);
        assert!(child_u64(env.0.model(), &sup, COUNTER) > counter);
        // and then crashes: main's check fails
        let ct = child_obj(env.0.model(), &sup);
        let at = child_u64(env.0.model(), &sup, COUNTER) + 5;
        env.0.model().poke(ct, CRASH_AT, &at.to_le_bytes());
        let out = run(&mut env, &mut sup, 50);
        assert!(matches!(out, ServeOutcome::Crash { thread: 0, .. }), "{out:?}");
        (bytes, before, counter, labels)
    };
    drop(m);

    // another ECU: a fresh kernel and the image bytes
    let (meta, cp) = rtcr_image::decode(&bytes).expect("decode");
    let mut m2 = scenario_model(arch);
    let mut r = m2.root();
    let mut env = ModelEnv(&mut r);
    let mut sup = Supervisor::restore(&mut env, spec("restored"), &cp, meta.sequence).expect("restore");
    // the same slots with the same types, rights and labels: none missing
    let after = cap_view(env.0.model(), &sup);
    assert_eq!(after, before, "capability tables before the checkpoint and after the restore");
    // rtcr's own check (what it logs on the kernel): every recorded slot
    // holds the object rtcr gave for it
    let (good, total) = sup.verify_slots(&mut env).expect("verify");
    assert_eq!(
        (good, total),
        (before.len(), before.len()),
        "slots verified (the recorded ones and the exception gates)"
    );
    // memory byte-identical to the cut
    let ct = child_obj(env.0.model(), &sup);
    for p in &cp.pages {
        assert_eq!(env.0.model().peek(ct, p.vaddr, 4096).unwrap(), p.data, "page {:#x}", p.vaddr);
    }
    assert_eq!(child_u64(env.0.model(), &sup, COUNTER), counter_at_cut);
    // it runs on: the counter continues, every gate and IRQ reaches its thread
    run(&mut env, &mut sup, 20);
    let now = child_u64(env.0.model(), &sup, COUNTER);
    assert!(now > counter_at_cut, "counter continues: {counter_at_cut} -> {now}");
    for (i, &l) in [0x100u64, 0x200, 0x300, 0x1010, 0x1020, 0x1030].iter().enumerate() {
        let n = child_u64(env.0.model(), &sup, label_slot(l));
        assert!(n > labels_at_cut[i], "label {l:#x}: {} -> {n}", labels_at_cut[i]);
    }
    // the check finds a slot that lost its capability, and one that holds
    // another object than the record says
    let ct = sup.child_task();
    l4_sys::task::release_cap(&mut env, ct, GATES[1].0).unwrap();
    assert_eq!(sup.verify_slots(&mut env).unwrap(), (before.len() - 1, before.len()), "a lost slot");
    let wrong = l4_sys::item::SendItem::map_obj(
        GATES[1].0,
        l4_sys::fpage::Fpage::obj(GATES[2].0, 0, l4_sys::fpage::CapRights::all()),
        l4_sys::item::ObjAttr::empty(),
        false,
    );
    l4_sys::task::map(&mut env, ct, ct, wrong).unwrap();
    assert_eq!(sup.verify_slots(&mut env).unwrap(), (before.len() - 1, before.len()), "a slot with another object");
}

#[test]
fn scenario_on_x86_64() {
    scenario(Arch::Amd64);
}

#[test]
fn scenario_on_arm64() {
    scenario(Arch::Arm64);
}
