//! What a checkpoint costs the child, on the model, against a baseline
//! measured in the same run: the pause for D dirty pages (D = 1, 16, 256,
//! 4096) against a plain memcpy of the same bytes; an incremental
//! checkpoint of 1 page with many clean pages resident (is the pause
//! independent of clean pages?); and a restore against a memcpy of the
//! image. Host wall-clock time (the model's own clock counts child steps
//! only). The goal on the target is pause <= 1.25 x memcpy + a fixed cost;
//! on the model every copy goes through the model's page tables, so the
//! ratios here say what the model and rtcr-core cost, not the target.
//!
//! Run: `cargo bench -p rtcr-sim --bench checkpoint`

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fiasco_model::Model;
use l4_sys::exc::Arch;
use l4_sys::Timeout;
use rtcr_core::{Region, Supervisor};
use rtcr_sim::*;

fn big_spec() -> rtcr_core::ChildSpec {
    let mut s = spec("bench");
    s.regions = vec![Region { start: DATA, len: 4100 * 4096, rights: 6 }];
    s.max_pages = 5000;
    s
}

fn memcpy(bytes: usize) -> Duration {
    let src = vec![0x5au8; bytes];
    let mut dst = vec![0u8; bytes];
    let t = Instant::now();
    for _ in 0..10 {
        dst.copy_from_slice(black_box(&src));
        black_box(&mut dst);
    }
    t.elapsed() / 10
}

fn round(env: &mut ModelEnv<'_, '_>, sup: &mut Supervisor, ct: fiasco_model::ObjId, k: u64, r: u64) {
    env.0.model().poke(ct, DATA, &k.to_le_bytes());
    env.0.model().poke(ct, DATA + 8, &r.to_le_bytes());
    sup.serve(env, 100_000, Timeout::from_us(1000)).unwrap();
}

fn main() {
    println!("{:>6} {:>14} {:>14} {:>8}", "pages", "pause", "memcpy", "ratio");
    let mut rows = Vec::new();
    for d in [1u64, 16, 256, 4096] {
        let mut m: Model = model(Arch::Amd64, Arc::new(PageWriter));
        let mut r = m.root();
        let mut env = ModelEnv(&mut r);
        let mut sup = Supervisor::spawn(&mut env, big_spec()).unwrap();
        sup.serve(&mut env, 1000, Timeout::from_us(1000)).unwrap();
        let ct = {
            let mm = env.0.model();
            mm.object_at(mm.boot_objects().root_task, sup.child_task().idx().0).unwrap()
        };
        round(&mut env, &mut sup, ct, d, 1);
        sup.checkpoint(&mut env).unwrap();
        // (the pause is stop, UTCB saves, write-protect, resume: the copy
        // of the dirty pages comes after the resume, copy on write);
        // the median of 7 checkpoints, each after the child wrote d pages
        let mut pauses = Vec::new();
        for r in 2..9 {
            round(&mut env, &mut sup, ct, d, r);
            let t = Instant::now();
            let (_, st, _) = sup.pause(&mut env).unwrap();
            pauses.push(t.elapsed());
            sup.complete(&mut env).unwrap();
            assert_eq!(st.pages_copied as u64, d);
        }
        pauses.sort();
        let pause = pauses[pauses.len() / 2];
        let base = memcpy(d as usize * 4096);
        println!("{d:>6} {:>14?} {:>14?} {:>7.1}x", pause, base, pause.as_secs_f64() / base.as_secs_f64().max(1e-9));
        rows.push((d, pause, base));
    }
    // the goal: pause <= 1.25 x memcpy + a fixed cost, the fixed cost
    // being what a 1-page checkpoint pauses (stop, UTCB saves, resume)
    let fixed = rows[0].1;
    for &(d, pause, base) in &rows {
        let bound = base.mul_f64(1.25) + fixed;
        println!(
            "goal for {d} pages: pause {pause:?} <= 1.25 x memcpy + fixed {fixed:?} = {bound:?}: {}",
            if pause <= bound { "met" } else { "NOT met" }
        );
    }

    // incremental: 1 dirty page with 4096 clean pages resident, against a full first checkpoint
    let mut m: Model = model(Arch::Amd64, Arc::new(PageWriter));
    let mut r = m.root();
    let mut env = ModelEnv(&mut r);
    let mut sup = Supervisor::spawn(&mut env, big_spec()).unwrap();
    sup.serve(&mut env, 1000, Timeout::from_us(1000)).unwrap();
    let ct = {
        let mm = env.0.model();
        mm.object_at(mm.boot_objects().root_task, sup.child_task().idx().0).unwrap()
    };
    round(&mut env, &mut sup, ct, 4096, 1);
    let t = Instant::now();
    let (_, full, _) = sup.pause(&mut env).unwrap();
    let full_t = t.elapsed();
    let t = Instant::now();
    let n = sup.complete(&mut env).unwrap();
    println!("copy after the resume (copy on write): {n} pages in {:?}", t.elapsed());
    // the median of 7 one-page checkpoints
    let mut incs = Vec::new();
    let mut last = None;
    for r in 2..9 {
        round(&mut env, &mut sup, ct, 1, r);
        let t = Instant::now();
        let out = sup.pause(&mut env).unwrap();
        incs.push(t.elapsed());
        sup.complete(&mut env).unwrap();
        last = Some(out);
    }
    incs.sort();
    let inc_t = incs[incs.len() / 2];
    let (saved, inc, t0) = last.unwrap();
    let mut cp = sup.record(&saved);
    cp.clock_us = t0;
    println!(
        "pause, full checkpoint: {} pages in {full_t:?}; incremental with {} pages resident: {} page in {inc_t:?} ({:.1}% of full)",
        full.pages_copied,
        sup.page_count(),
        inc.pages_copied,
        100.0 * inc_t.as_secs_f64() / full_t.as_secs_f64()
    );

    // restore against a memcpy of the image
    let bytes = rtcr_core::encode_image(Arch::Amd64, 2, &cp).unwrap();
    drop(m);
    let mut m2: Model = model(Arch::Amd64, Arc::new(PageWriter));
    let mut r2 = m2.root();
    let mut env2 = ModelEnv(&mut r2);
    let t = Instant::now();
    let (meta, cp) = rtcr_image::decode(&bytes).unwrap();
    Supervisor::restore(&mut env2, big_spec(), &cp, meta.sequence).unwrap();
    let rest = t.elapsed();
    let base = memcpy(bytes.len());
    println!(
        "restore of a {} byte image ({} pages): {rest:?}; memcpy of the image {base:?}; ratio {:.1}x",
        bytes.len(),
        cp.pages.len(),
        rest.as_secs_f64() / base.as_secs_f64().max(1e-9)
    );
}
