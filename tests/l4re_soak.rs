//! The memory of an L4Re program across many checkpoints, crashes and
//! restores, on the model: a dataspace from mem_alloc attached through the
//! region map and an anonymous region (what malloc gets), every page
//! written with a pattern of its address and the round and checked the
//! next round, as rtcr-l4-suite does on the kernel. Each restore is into
//! the frames the crashed child left (the driver's recovery), with the
//! shadow filled lazily. The program counts every word that is not what
//! it wrote.

use rtcr_sim::*;

use fiasco_model::{sys, Cpu, Trap};
use l4_sys::cap::CapIdx;
use l4_sys::exc::Arch;
use l4_sys::l4re::dataspace::Alloc;
use l4_sys::l4re::rm::{self, Attach};
use l4_sys::l4re::{INVALID_CAP, PROTO_RM};
use l4_sys::{ipc, Kernel, Timeout};
use rtcr_core::driver::{Driver, Event, Policy};
use rtcr_core::state::l4re_slots;
use rtcr_core::{L4reSpec, OnExit};
use rtcr_image::{MemRegion, Store};
use std::sync::Arc;

const RM: CapIdx = CapIdx(l4re_slots::RM);
const MEM: CapIdx = CapIdx(l4re_slots::MEM_ALLOC);
const DS: CapIdx = CapIdx(0x30);

/// Pages of each block.
const PAGES: u64 = 16;
/// Words checked and written per page (spread over it).
const WORDS: u64 = 4;

mod at {
    use super::DATA;
    pub const DS_AT: u64 = DATA;
    pub const ANON_AT: u64 = DATA + 8;
    pub const ROUND: u64 = DATA + 16;
    pub const ERRORS: u64 = DATA + 24;
    pub const SET_UP: u64 = DATA + 32;
}

fn pattern(addr: u64, round: u64) -> u64 {
    let mut z = addr ^ round.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn attach(size: u64, flags: u64, cap: u64) -> Vec<u64> {
    let a = Attach { start: 0, size, flags, offset: 0, align: 12, client_cap: cap, name: [0; 32] };
    let (w, n) = a.encode(b"[soak]\0");
    w[..n].to_vec()
}

/// Sets up both blocks, then round after round: each page of both (one
/// page a step, so cuts fall inside a round) must hold the last round's
/// pattern and gets this round's; a short sleep between rounds.
fn program() -> Arc<dyn fiasco_model::Program> {
    struct P;
    impl fiasco_model::Program for P {
        fn step(&self, cpu: &mut Cpu<'_>) -> Result<(), Trap> {
            match cpu.state() {
                0 => {
                    cpu.utcb().br[0] = l4_sys::item::rcv_single_cap(DS);
                    let w = Alloc { size: PAGES * 4096, flags: 0, align: 0 }.encode();
                    if sys!(cpu, ipc::rpc(cpu, MEM, -15, &w, &[])).is_err() {
                        return Err(Trap::Exception(6));
                    }
                    cpu.goto(1);
                }
                1 => {
                    let it = [l4_sys::item::SendItem::cap_arg(DS)];
                    let w = attach(PAGES * 4096, rm::SEARCH_ADDR | 6, DS.0 << 12);
                    if sys!(cpu, ipc::rpc(cpu, RM, PROTO_RM, &w, &it)).is_err() {
                        return Err(Trap::Exception(6));
                    }
                    let a = cpu.utcb().mr[0];
                    cpu.store_u64(at::DS_AT, a)?;
                    cpu.goto(2);
                }
                2 => {
                    let w = attach(PAGES * 4096, rm::SEARCH_ADDR | rm::ANONYMOUS | 6, INVALID_CAP);
                    if sys!(cpu, ipc::rpc(cpu, RM, PROTO_RM, &w, &[])).is_err() {
                        return Err(Trap::Exception(6));
                    }
                    let a = cpu.utcb().mr[0];
                    cpu.store_u64(at::ANON_AT, a)?;
                    cpu.store_u64(at::SET_UP, 1)?;
                    cpu.set_r(1, 0);
                    cpu.goto(10);
                }
                10 => {
                    let i = cpu.r(1);
                    let round = cpu.load_u64(at::ROUND)?;
                    if i == 2 * PAGES {
                        cpu.store_u64(at::ROUND, round + 1)?;
                        cpu.goto(11);
                        return Ok(());
                    }
                    let block = if i < PAGES { cpu.load_u64(at::DS_AT)? } else { cpu.load_u64(at::ANON_AT)? };
                    let page = block + 4096 * (i % PAGES);
                    let mut bad = 0;
                    for k in 0..WORDS {
                        let a = page + k * (4096 / WORDS);
                        if round > 0 && cpu.load_u64(a)? != pattern(a, round - 1) {
                            bad += 1;
                        }
                        cpu.store_u64(a, pattern(a, round))?;
                    }
                    if bad > 0 {
                        let e = cpu.load_u64(at::ERRORS)?;
                        cpu.store_u64(at::ERRORS, e + bad)?;
                    }
                    cpu.set_r(1, i + 1);
                }
                _ => {
                    let _ = sys!(cpu, ipc::sleep(cpu, Timeout::from_us(300)));
                    cpu.set_r(1, 0);
                    cpu.goto(10);
                }
            }
            Ok(())
        }
    }
    Arc::new(P)
}

fn l4re_spec() -> rtcr_core::ChildSpec {
    let mut s = spec("l4re-soak");
    s.l4re =
        Some(L4reSpec { kip: 0x6fff_f000, rm_limit: (0x1_0000, 0xc000_0000), roms: vec![], on_exit: OnExit::Stop });
    s
}

fn word(env: &mut ModelEnv<'_, '_>, d: &Driver<MemRegion>, a: u64) -> u64 {
    let m = env.0.model();
    m.peek(child_obj(m, &d.sup), a, 8).map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap()))
}

fn soak(arch: Arch, interval_us: u64, crash_every_us: u64, until_us: u64) {
    let mut m = model(arch, program());
    let mut r = m.root();
    let mut env = ModelEnv(&mut r);
    let store = Store::new(MemRegion::zeroed(2 << 20));
    let policy = Policy { interval_us, loop_window_us: 0, ..Policy::default() };
    let mut d = Driver::start(&mut env, l4re_spec(), store, policy).unwrap();
    let t0 = env.0.model().clock_us();
    let mut next_crash = t0 + crash_every_us;
    let mut last_round = 0;
    while env.0.model().clock_us() < t0 + until_us {
        let now = env.0.model().clock_us();
        d.run_until(&mut env, now + 97).unwrap();
        if env.0.model().clock_us() >= next_crash && word(&mut env, &d, at::SET_UP) == 1 {
            d.sup.inject_wild_jump(&mut env, 0).unwrap();
            next_crash += crash_every_us;
            let now = env.0.model().clock_us();
            d.run_until(&mut env, now + 50).unwrap();
        }
        let errors = word(&mut env, &d, at::ERRORS);
        let round = word(&mut env, &d, at::ROUND);
        assert_eq!(
            errors,
            0,
            "{arch:?}: wrong words in round {round}: {:?}",
            &d.events[d.events.len().saturating_sub(8)..]
        );
        assert!(
            !d.events.iter().any(|e| matches!(e, Event::StartedAfresh | Event::LoopCrash { .. })),
            "{arch:?}: {:?}",
            d.events
        );
        last_round = last_round.max(round);
    }
    let restores = d.events.iter().filter(|e| matches!(e, Event::Restored { .. })).count();
    let checkpoints = d.events.iter().filter(|e| matches!(e, Event::Checkpoint { .. })).count();
    eprintln!("{arch:?}: {checkpoints} checkpoints, {restores} restores, {last_round} rounds");
    assert!(restores > 20 && last_round > 20, "{arch:?}: {restores} restores, {last_round} rounds");
}

#[test]
fn an_l4re_programs_memory_holds_across_many_restores_amd64() {
    soak(Arch::Amd64, 700, 3_100, 400_000);
}

#[test]
fn an_l4re_programs_memory_holds_across_many_restores_arm64() {
    soak(Arch::Arm64, 700, 3_100, 400_000);
}
