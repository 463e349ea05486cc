//! A recovery in place (the driver's default, `Policy::in_place`) keeps the
//! crashed child's task and the pages not written since the newest image,
//! and rewrites only the others: the child it leaves must be the one a
//! restore into a new task leaves, slot for slot and byte for byte. Each
//! test runs the same child twice on twin models, once recovered in place
//! and once in full, and compares what the kernel holds afterwards.

use std::sync::Arc;

use fiasco_model::Model;
use l4_sys::exc::Arch;
use l4_sys::Timeout;
use rtcr_core::driver::{Driver, Event, Policy};
use rtcr_core::Region;
use rtcr_image::{MemRegion, Store};
use rtcr_sim::*;

/// What the kernel holds of the child: its slots (index, kind, rights,
/// server right, label, the bound thread by its place among the child's
/// threads), its pages with their bytes, and its threads' registers.
struct Held {
    caps: Vec<Slot>,
    pages: Vec<(u64, Vec<u8>)>,
    regs: Vec<Option<Vec<u64>>>,
}

/// A slot: index, kind, rights, server right, label, bound thread.
type Slot = (u64, String, u8, bool, Option<u64>, Option<usize>);

fn held(m: &Model, d: &Driver<MemRegion>) -> Held {
    let child = child_obj(m, &d.sup);
    let threads = m.threads_of(child);
    let debug_ids: Vec<u64> =
        threads.iter().map(|t| m.cap_table(child).iter().find(|r| r.obj == *t).map_or(0, |r| r.debug_id)).collect();
    let caps = m
        .cap_table(child)
        .into_iter()
        .map(|r| {
            let bound = r.bound_thread.and_then(|b| debug_ids.iter().position(|d| *d == b));
            (r.idx, format!("{:?}", r.kind), r.rights, r.server, r.label, bound)
        })
        .collect();
    let pages = m
        .page_frames(child)
        .into_iter()
        .map(|(va, _)| (va, m.peek(child, va, 4096).expect("a mapped page reads")))
        .collect();
    let regs = threads.iter().map(|t| m.thread_regs(*t)).collect();
    Held { caps, pages, regs }
}

fn policy(in_place: bool) -> Policy {
    // checkpoints only when the test takes them; a crash soon after a
    // restore is not taken for a loop (only one before any checkpoint is)
    Policy { interval_us: u64::MAX / 4, loop_window_us: 0, in_place, ..Policy::default() }
}

/// The scenario child (three threads, gates and IRQs bound to them, a
/// counter it keeps writing): checkpointed, run on, recovered.
fn scenario_recovered(in_place: bool) -> (Held, u64, u64) {
    let mut m = scenario_model(Arch::Amd64);
    let mut r = m.root();
    let mut env = ModelEnv(&mut r);
    let store = Store::new(MemRegion::zeroed(2 << 20));
    let mut d = Driver::start(&mut env, spec("twin"), store, policy(in_place)).unwrap();
    d.sup.serve(&mut env, 2_000, Timeout::from_us(2_000)).unwrap();
    d.checkpoint_now(&mut env);
    // the child writes its counter (and its stack) after the image
    d.sup.serve(&mut env, 2_000, Timeout::from_us(2_000)).unwrap();
    d.recover(&mut env).unwrap();
    assert!(d.events.iter().any(|e| matches!(e, Event::Restored { .. })), "{:?}", d.events);
    let (_, image) = d.store.latest().unwrap();
    let (_, cp) = rtcr_image::decode(&image).unwrap();
    assert_eq!(d.sup.restore_in_place, in_place);
    (held(env.0.model(), &d), d.sup.restore_kept_pages, cp.pages.len() as u64)
}

/// The child holds the pages of `image`, each with its bytes, and in its
/// data region no other page.
fn holds_image(h: &Held, image: &[u8]) {
    let (_, cp) = rtcr_image::decode(image).unwrap();
    for p in &cp.pages {
        let (_, bytes) = h.pages.iter().find(|x| x.0 == p.vaddr).expect("the image's page is mapped");
        let want: &[u8] = if p.data.is_empty() { &[0u8; 4096] } else { &p.data };
        assert!(bytes[..] == want[..], "page {:#x} as the image has it", p.vaddr);
    }
    for (va, _) in &h.pages {
        if *va >= DATA && *va < STACK_TOP {
            assert!(cp.pages.iter().any(|p| p.vaddr == *va), "page {va:#x} is not in the image");
        }
    }
}

/// Asserts that `a` (in place) holds what `b` (in full) holds, naming the
/// first difference.
fn same(a: &Held, b: &Held) {
    assert_eq!(a.caps, b.caps);
    assert_eq!(a.regs, b.regs);
    let va = |h: &Held| h.pages.iter().map(|p| p.0).collect::<Vec<_>>();
    assert_eq!(va(a), va(b), "the same pages mapped");
    for (x, y) in a.pages.iter().zip(&b.pages) {
        assert!(x.1 == y.1, "page {:#x} holds what a full restore puts there", x.0);
    }
}

#[test]
fn a_recovery_in_place_leaves_the_child_a_full_restore_leaves() {
    let (full, kept_full, _) = scenario_recovered(false);
    let (in_place, kept, image_pages) = scenario_recovered(true);
    assert_eq!(kept_full, 0, "a full restore keeps nothing");
    assert!(kept > 0 && kept < image_pages, "kept {kept} of {image_pages} pages: the counter's page was written");
    assert!(!full.caps.is_empty() && full.caps.iter().any(|c| c.5.is_some()), "gates and IRQs bound: {:?}", full.caps);
    same(&in_place, &full);
}

/// The page writer, told to write pages 1..=k of its data (see
/// `rtcr_sim::PageWriter`); its command words are put back as the image has
/// them afterwards, so that every difference from the image is the child's.
fn write_round(env: &mut ModelEnv<'_, '_>, d: &mut Driver<MemRegion>, k: u64, round: u64, then: Option<(u64, u64)>) {
    let ct = child_obj(env.0.model(), &d.sup);
    env.0.model().poke(ct, DATA, &k.to_le_bytes());
    env.0.model().poke(ct, DATA + 8, &round.to_le_bytes());
    d.sup.serve(env, 100_000, Timeout::from_us(1_000)).unwrap();
    if let Some((k, round)) = then {
        env.0.model().poke(ct, DATA, &k.to_le_bytes());
        env.0.model().poke(ct, DATA + 8, &round.to_le_bytes());
    }
}

fn writer_spec() -> rtcr_core::ChildSpec {
    let mut s = spec("writer");
    s.regions = vec![Region { start: DATA, len: 64 * 4096, rights: 6 }];
    s
}

/// Pages 1..=20 written before the image, 1..=30 after it (21..=30 new):
/// recovered; then one more round, a checkpoint and a second recovery.
fn writer_recovered(in_place: bool) -> (Held, Held, Vec<u64>, Vec<u8>) {
    let mut m = model(Arch::Amd64, Arc::new(PageWriter));
    let mut r = m.root();
    let mut env = ModelEnv(&mut r);
    let store = Store::new(MemRegion::zeroed(4 << 20));
    let mut d = Driver::start(&mut env, writer_spec(), store, policy(in_place)).unwrap();
    d.sup.serve(&mut env, 1_000, Timeout::from_us(1_000)).unwrap();
    write_round(&mut env, &mut d, 20, 1, None);
    d.checkpoint_now(&mut env);
    write_round(&mut env, &mut d, 30, 2, Some((20, 1)));
    d.recover(&mut env).unwrap();
    let first = held(env.0.model(), &d);
    let mut kept = vec![d.sup.restore_kept_pages];
    // on from the restored child: pages 1..=5 written, a checkpoint, 1..=3
    // written after it, recovered again
    write_round(&mut env, &mut d, 5, 3, None);
    d.checkpoint_now(&mut env);
    write_round(&mut env, &mut d, 3, 4, Some((5, 3)));
    let image = d.store.latest().unwrap().1;
    d.recover(&mut env).unwrap();
    kept.push(d.sup.restore_kept_pages);
    let second = held(env.0.model(), &d);
    // dirty tracking goes on: pages written after the restore (those put
    // back among them) are in the second checkpoint after it
    d.checkpoint_now(&mut env);
    write_round(&mut env, &mut d, 3, 7, None);
    d.checkpoint_now(&mut env);
    let (_, cp) = rtcr_image::decode(&d.store.latest().unwrap().1).unwrap();
    for i in 1..=3 {
        let p = cp.pages.iter().find(|p| p.vaddr == DATA + 0x1000 * i).expect("the page is in the image");
        assert_eq!(p.data[..8], 7u64.to_le_bytes(), "page {i} as written after the restore");
    }
    (first, second, kept, image)
}

#[test]
fn only_the_pages_written_since_the_image_are_put_back_and_pages_new_since_go() {
    let (full1, full2, kept_full, _) = writer_recovered(false);
    let (in1, in2, kept, image) = writer_recovered(true);
    assert_eq!(kept_full, [0, 0]);
    same(&in1, &full1);
    // after the first restore the two children differ in when they fault
    // (in place, pages written before the crash kept W), so their second
    // images were taken at other points: each is checked against its own
    assert_eq!(in2.caps, full2.caps);
    holds_image(&in2, &image);
    let data_pages = |h: &Held| h.pages.iter().filter(|p| p.0 > DATA && p.0 < DATA + 64 * 4096).count();
    assert_eq!(data_pages(&in1), 20, "pages 21..=30, first mapped after the image, are gone");
    // what stayed: every page of the image but the 20 written since it
    // (the first time) and the 3 written since (the second)
    let child_pages = in1.pages.iter().filter(|p| p.0 >= CODE && p.0 < STACK_TOP).count() as u64;
    assert_eq!(kept[0], child_pages - 20, "{kept:?} of {child_pages}");
    assert_eq!(kept[1], child_pages - 3, "{kept:?} of {child_pages}");
}

#[test]
fn a_crash_loop_and_an_older_image_are_restored_in_full() {
    let mut m = model(Arch::Amd64, Arc::new(PageWriter));
    let mut r = m.root();
    let mut env = ModelEnv(&mut r);
    let store = Store::new(MemRegion::zeroed(4 << 20));
    let mut d = Driver::start(&mut env, writer_spec(), store, policy(true)).unwrap();
    d.sup.serve(&mut env, 1_000, Timeout::from_us(1_000)).unwrap();
    write_round(&mut env, &mut d, 10, 1, None);
    d.checkpoint_now(&mut env);
    write_round(&mut env, &mut d, 12, 2, None);
    d.recover(&mut env).unwrap();
    assert!(d.sup.restore_kept_pages > 0, "a crash after a checkpoint: in place");
    // no checkpoint since the restore: a crash loop, every page rewritten
    d.recover(&mut env).unwrap();
    assert_eq!(d.sup.restore_kept_pages, 0, "a crash loop: in full");
    let in_full = held(env.0.model(), &d);
    // two more images; the newest is then damaged, so the restore takes the
    // older one, which the kept pages do not match: in full as well
    write_round(&mut env, &mut d, 6, 3, None);
    d.checkpoint_now(&mut env);
    let older = d.store.latest().unwrap().1;
    write_round(&mut env, &mut d, 8, 4, None);
    d.checkpoint_now(&mut env);
    let newest = d.store.newest_first()[0];
    // a byte of a page's data in the image's body
    let at = d.store.slot_offset(newest) + 8192;
    let mut region = std::mem::replace(&mut d.store, Store::new(MemRegion::zeroed(4096))).into_inner();
    region.0[at] ^= 0x40;
    d.store = Store::new(region);
    write_round(&mut env, &mut d, 9, 5, None);
    d.recover(&mut env).unwrap();
    assert_eq!(d.sup.restore_kept_pages, 0, "an older image than the last checkpoint: in full");
    let seq = rtcr_image::verify(&older).unwrap().sequence;
    assert!(d.events.iter().any(|e| matches!(e, Event::Restored { seq: s, .. } if *s == seq)), "{:?}", d.events);
    // the child is the older image's, byte for byte
    holds_image(&held(env.0.model(), &d), &older);
    assert!(!in_full.pages.is_empty());
    // no stale task: rtcr's slot for the child names the one it restored
    let root = env.0.model().boot_objects().root_task;
    let tasks = env.0.model().cap_table(root).iter().filter(|r| format!("{:?}", r.kind) == "Task").count();
    assert_eq!(tasks, 2, "rtcr's own task and the child's, no kept one left over");
}
