//! The L4Re environment rtcr serves an L4Re child, on the model: the words
//! an L4Re program sends (region map attach/reserve_area/detach, page faults
//! through the region map, mem_alloc, dataspace info/clear/copy_in) are
//! answered as L4Re's own servers answer them, every region, area and
//! dataspace is in the checkpoint, and a restore on a fresh kernel brings
//! them back at the same addresses, with the same contents, the child
//! going on where it was.

use rtcr_sim::*;

use fiasco_model::{sys, Cpu, Trap};
use l4_sys::cap::CapIdx;
use l4_sys::exc::Arch;
use l4_sys::l4re::dataspace::{self, Alloc};
use l4_sys::l4re::rm::{self, Attach, ReserveArea};
use l4_sys::l4re::{INVALID_CAP, PROTO_DATASPACE, PROTO_RM};
use l4_sys::{ipc, Error, Kernel, Timeout};
use rtcr_core::state::l4re_slots;
use rtcr_core::{L4reSpec, OnExit, Supervisor};
use rtcr_image::ObjectRecord;
use std::sync::Arc;

const RM: CapIdx = CapIdx(l4re_slots::RM);
const MEM: CapIdx = CapIdx(l4re_slots::MEM_ALLOC);
const DS: CapIdx = CapIdx(0x30);
const DS2: CapIdx = CapIdx(0x31);

/// Where the program keeps what it learnt (in its DATA region).
mod at {
    use super::DATA;
    pub const ANON: u64 = DATA;
    pub const ALLOC: u64 = DATA + 8;
    pub const SIZE: u64 = DATA + 16;
    pub const DS_AT: u64 = DATA + 24;
    pub const CLEAR: u64 = DATA + 32;
    pub const AREA: u64 = DATA + 40;
    pub const IN_AREA: u64 = DATA + 48;
    pub const ROUNDS: u64 = DATA + 56;
    pub const ERRORS: u64 = DATA + 64;
    pub const COPY: u64 = DATA + 72;
    pub const DETACH: u64 = DATA + 80;
    pub const GONE: u64 = DATA + 88;
    pub const ALIAS: u64 = DATA + 96;
}

fn code<T>(r: Result<T, Error>) -> u64 {
    match r {
        Ok(_) => 0,
        Err(Error::Kernel(e)) => e.value() as u64,
        Err(_) => 0xffff,
    }
}

fn attach(start: u64, size: u64, flags: u64, cap: u64) -> Vec<u64> {
    let a = Attach { start, size, flags, offset: 0, align: 12, client_cap: cap, name: [0; 32] };
    let (w, n) = a.encode(b"[anon]\0");
    w[..n].to_vec()
}

/// An L4Re program's use of its environment, one request per state, then
/// a loop that checks every byte it wrote.
fn l4re_program() -> Arc<dyn fiasco_model::Program> {
    struct P;
    impl fiasco_model::Program for P {
        fn step(&self, cpu: &mut Cpu<'_>) -> Result<(), Trap> {
            let anon = rm::SEARCH_ADDR | rm::ANONYMOUS | 6;
            match cpu.state() {
                0 => {
                    let r = sys!(cpu, ipc::rpc(cpu, RM, PROTO_RM, &attach(0, 0x3000, anon, INVALID_CAP), &[]));
                    let a = if r.is_ok() { cpu.utcb().mr[0] } else { 0 };
                    cpu.store_u64(at::ANON, a)?;
                    cpu.goto(1);
                }
                1 => {
                    // three pages, through the region map's page faults
                    let a = cpu.load_u64(at::ANON)?;
                    for i in 0..3 {
                        cpu.store_u64(a + 4096 * i, 0xA000 + i)?;
                    }
                    cpu.goto(2);
                }
                2 => {
                    cpu.utcb().br[0] = l4_sys::item::rcv_single_cap(DS);
                    let w = Alloc { size: 0x2000, flags: 0, align: 0 }.encode();
                    let r = sys!(cpu, ipc::rpc(cpu, MEM, -15, &w, &[]));
                    cpu.store_u64(at::ALLOC, code(r) + 1)?;
                    cpu.goto(3);
                }
                3 => {
                    let r = sys!(cpu, ipc::rpc(cpu, DS, PROTO_DATASPACE, &[dataspace::op::INFO], &[]));
                    let size = if r.is_ok() { cpu.utcb().mr[0] } else { 0 };
                    cpu.store_u64(at::SIZE, size)?;
                    cpu.goto(4);
                }
                4 => {
                    let it = [l4_sys::item::SendItem::cap_arg(DS)];
                    let w = attach(0, 0x2000, rm::SEARCH_ADDR | 6, DS.0 << 12);
                    let r = sys!(cpu, ipc::rpc(cpu, RM, PROTO_RM, &w, &it));
                    let a = if r.is_ok() { cpu.utcb().mr[0] } else { 0 };
                    cpu.store_u64(at::DS_AT, a)?;
                    cpu.goto(5);
                }
                5 => {
                    let b = cpu.load_u64(at::DS_AT)?;
                    cpu.store_u64(b, 0xB0)?;
                    cpu.store_u64(b + 4096, 0xB1)?;
                    cpu.goto(6);
                }
                6 => {
                    // the second page of the dataspace cleared by the server
                    let w = [dataspace::op::CLEAR, 4096, 4096];
                    let r = sys!(cpu, ipc::rpc(cpu, DS, PROTO_DATASPACE, &w, &[]));
                    cpu.store_u64(at::CLEAR, code(r) + 1)?;
                    cpu.goto(7);
                }
                7 => {
                    let w = ReserveArea { start: 0, size: 0x10_0000, flags: rm::SEARCH_ADDR, align: 20 }.encode();
                    let r = sys!(cpu, ipc::rpc(cpu, RM, PROTO_RM, &w, &[]));
                    let a = if r.is_ok() { cpu.utcb().mr[0] } else { 0 };
                    cpu.store_u64(at::AREA, a)?;
                    cpu.goto(8);
                }
                8 => {
                    let area = cpu.load_u64(at::AREA)?;
                    let w = attach(area, 0x1000, rm::IN_AREA | rm::ANONYMOUS | 6, INVALID_CAP);
                    let r = sys!(cpu, ipc::rpc(cpu, RM, PROTO_RM, &w, &[]));
                    let a = if r.is_ok() { cpu.utcb().mr[0] } else { 0 };
                    cpu.store_u64(at::IN_AREA, a)?;
                    cpu.goto(9);
                }
                9 => {
                    // a second dataspace gets the first one's first page
                    cpu.utcb().br[0] = l4_sys::item::rcv_single_cap(DS2);
                    let w = Alloc { size: 0x1000, flags: 0, align: 0 }.encode();
                    let _ = sys!(cpu, ipc::rpc(cpu, MEM, -15, &w, &[]));
                    cpu.goto(10);
                }
                10 => {
                    let it = [l4_sys::item::SendItem::cap_arg(DS)];
                    let w = [dataspace::op::COPY_IN, 0, 0, 0x1000];
                    let r = sys!(cpu, ipc::rpc(cpu, DS2, PROTO_DATASPACE, &w, &it));
                    cpu.store_u64(at::COPY, code(r) + 1)?;
                    cpu.goto(11);
                }
                11 => {
                    // the anonymous region's last page goes away with it
                    let a = cpu.load_u64(at::ANON)?;
                    let r = sys!(cpu, ipc::rpc(cpu, RM, PROTO_RM, &[rm::op::DETACH, a, 0x3000, 0], &[]));
                    let start = if r.is_ok() { cpu.utcb().mr[0] } else { 0 };
                    cpu.store_u64(at::DETACH, start)?;
                    cpu.goto(12);
                }
                12 => {
                    let a = cpu.load_u64(at::ANON)?;
                    let r = sys!(cpu, ipc::rpc(cpu, RM, PROTO_RM, &[rm::op::FIND, a, 1], &[]));
                    cpu.store_u64(at::GONE, code(r) + 1)?;
                    cpu.goto(20);
                }
                20 => {
                    // the first dataspace a second time: one frame, two addresses
                    let it = [l4_sys::item::SendItem::cap_arg(DS)];
                    let w = attach(0, 0x2000, rm::SEARCH_ADDR | 6, DS.0 << 12);
                    let r = sys!(cpu, ipc::rpc(cpu, RM, PROTO_RM, &w, &it));
                    let a = if r.is_ok() { cpu.utcb().mr[0] } else { 0 };
                    cpu.store_u64(at::ALIAS, a)?;
                    cpu.goto(13);
                }
                13 => {
                    // every round: the bytes as written, and one more round
                    let (b, c) = (cpu.load_u64(at::DS_AT)?, cpu.load_u64(at::IN_AREA)?);
                    let alias = cpu.load_u64(at::ALIAS)?;
                    let n = cpu.load_u64(at::ROUNDS)?;
                    let mut bad = 0;
                    bad += (cpu.load_u64(b)? != 0xB0) as u64;
                    bad += (cpu.load_u64(b + 4096)? != 0) as u64;
                    bad += (n > 0 && cpu.load_u64(c)? != n - 1) as u64;
                    // written through the higher address, read through the
                    // lower (a restore fills the shared frame from the lower)
                    let (lo, hi) = (b.min(alias), b.max(alias));
                    bad += (n > 0 && cpu.load_u64(lo + 16)? != n - 1) as u64;
                    cpu.store_u64(hi + 16, n)?;
                    if bad > 0 {
                        let e = cpu.load_u64(at::ERRORS)?;
                        cpu.store_u64(at::ERRORS, e + bad)?;
                    }
                    cpu.store_u64(c, n)?;
                    cpu.store_u64(at::ROUNDS, n + 1)?;
                    cpu.goto(14);
                }
                _ => {
                    let _ = sys!(cpu, ipc::sleep(cpu, Timeout::from_us(500)));
                    cpu.goto(13);
                }
            }
            Ok(())
        }
    }
    Arc::new(P)
}

fn l4re_spec() -> rtcr_core::ChildSpec {
    let mut s = spec("l4re-program");
    s.l4re =
        Some(L4reSpec { kip: 0x6fff_f000, rm_limit: (0x1_0000, 0xc000_0000), roms: vec![], on_exit: OnExit::Stop });
    s
}

fn serve_until<F: Fn(&fiasco_model::Model, &Supervisor) -> bool>(
    env: &mut ModelEnv<'_, '_>,
    sup: &mut Supervisor,
    done: F,
) {
    for _ in 0..200 {
        sup.serve(env, 200, Timeout::from_us(1000)).unwrap();
        if done(env.0.model(), sup) {
            return;
        }
    }
    panic!("the program did not get there");
}

#[test]
fn an_l4re_programs_environment_is_served_checkpointed_and_restored_on_a_fresh_kernel() {
    for arch in [Arch::Amd64, Arch::Arm64] {
        environment_round_trip(arch);
    }
}

fn environment_round_trip(arch: Arch) {
    let mut m = model(arch, l4re_program());
    let mut r = m.root();
    let mut env = ModelEnv(&mut r);
    let mut sup = Supervisor::spawn(&mut env, l4re_spec()).unwrap();
    serve_until(&mut env, &mut sup, |m, s| child_u64(m, s, at::ROUNDS) >= 3);
    let m = env.0.model();
    let v = |a| child_u64(m, &sup, a);
    let (anon, ds_at, area, in_area) = (v(at::ANON), v(at::DS_AT), v(at::AREA), v(at::IN_AREA));
    // as L4Re's servers answer
    assert!(anon >= 0x1_0000 && anon % 4096 == 0, "anonymous memory at {anon:#x}");
    assert_eq!(v(at::ALLOC), 1, "mem_alloc gave a dataspace");
    assert_eq!(v(at::SIZE), 0x2000, "its size");
    assert!(ds_at != 0 && ds_at % 4096 == 0 && (ds_at >= anon + 0x3000 || ds_at + 0x2000 <= anon));
    assert_eq!(v(at::CLEAR), 1);
    assert!(area != 0 && area % 0x10_0000 == 0, "an area aligned as asked: {area:#x}");
    assert_eq!(in_area, area, "the In_area attach went into the area");
    assert_eq!(v(at::COPY), 1, "copy_in");
    assert_eq!(v(at::DETACH), anon, "detach gave back the region's start");
    assert_eq!(v(at::GONE), l4_sys::Errno::NoEnt.value() as u64 + 1, "the detached region is gone");
    let alias = v(at::ALIAS);
    assert!(alias != 0 && (alias + 0x2000 <= ds_at || alias >= ds_at + 0x2000), "a second attach: {alias:#x}");
    assert_eq!(v(at::ERRORS), 0);
    let slots = sup.recorded_slots();
    assert!(slots.contains(&(0x30, "dataspace", 7)) && slots.contains(&(0x31, "dataspace", 7)), "{slots:?}");
    assert!(slots.iter().any(|s| s.0 == l4re_slots::RM), "the region map's slot");

    // a checkpoint, more rounds, and the checkpoint to restore: its pages
    // are those written since the first
    sup.checkpoint(&mut env).unwrap();
    let n = child_u64(env.0.model(), &sup, at::ROUNDS);
    serve_until(&mut env, &mut sup, |m, s| child_u64(m, s, at::ROUNDS) >= n + 3);
    let (cp, _) = sup.checkpoint(&mut env).unwrap();
    let regions: Vec<(u64, u64, bool)> = cp
        .objects
        .iter()
        .filter_map(|o| match o {
            ObjectRecord::Region { start, size, ds, .. } => Some((*start, *size, ds.is_some())),
            _ => None,
        })
        .collect();
    assert!(regions.contains(&(ds_at, 0x2000, true)), "{regions:x?}");
    assert!(regions.contains(&(in_area, 0x1000, false)));
    assert!(!regions.contains(&(anon, 0x3000, false)), "detached");
    assert!(regions.contains(&(alias, 0x2000, true)), "the second attach");
    assert!(cp.objects.contains(&ObjectRecord::Area { start: area, size: 0x10_0000, flags: rm::SEARCH_ADDR }));
    // the second dataspace is shown by no region: its page is kept with it
    let loose: Vec<&Vec<(u64, Vec<u8>)>> = cp
        .objects
        .iter()
        .filter_map(|o| match o {
            ObjectRecord::Dataspace { loose, .. } => Some(loose),
            _ => None,
        })
        .collect();
    assert_eq!(loose.len(), 2);
    assert_eq!(loose[1].len(), 1, "ds2's copied page");
    assert_eq!(&loose[1][0].1[..8], &0xB0u64.to_le_bytes(), "copy_in copied the first dataspace's page");
    let rounds_at_cut = child_u64(env.0.model(), &sup, at::ROUNDS);

    // on a fresh kernel, from the image bytes
    let image = rtcr_core::encode_image(arch, 1, &cp).unwrap();
    let (_, cp2) = rtcr_image::decode(&image).unwrap();
    let mut m2 = model(arch, l4re_program());
    let mut r2 = m2.root();
    let mut env2 = ModelEnv(&mut r2);
    let mut sup2 = Supervisor::restore(&mut env2, l4re_spec(), &cp2, 1).unwrap();
    assert_eq!(sup2.verify_slots(&mut env2).unwrap().0, sup2.verify_slots(&mut env2).unwrap().1);
    serve_until(&mut env2, &mut sup2, |m, s| child_u64(m, s, at::ROUNDS) >= rounds_at_cut + 3);
    let m2 = env2.0.model();
    assert_eq!(child_u64(m2, &sup2, at::ERRORS), 0, "every byte as written, after the restore");
    assert_eq!(child_u64(m2, &sup2, at::DS_AT), ds_at);
    // the region map came back whole: the next checkpoint records the same
    let (cp3, _) = sup2.checkpoint(&mut env2).unwrap();
    let shape = |cp: &rtcr_image::Checkpoint| -> Vec<ObjectRecord> {
        cp.objects
            .iter()
            .filter(|o| {
                matches!(o, ObjectRecord::Region { .. } | ObjectRecord::Area { .. } | ObjectRecord::Dataspace { .. })
            })
            .cloned()
            .collect()
    };
    assert_eq!(shape(&cp3), shape(&cp));
}

#[test]
fn requests_the_region_map_cannot_grant_get_l4res_errors() {
    let mut r = rtcr_core::regions::RegionMap::new((0x1_0000, 0xc000_0000), vec![(0x7e00_0000, 0x7f00_1000)]);
    let rec = |start, size| rtcr_core::regions::RegionRec { start, size, flags: 6, ds: None, offset: 0, client_cap: 0 };
    assert_eq!(r.attach(rec(0x7e00_0000, 0x1000), false, 12, false), Err(rtcr_core::regions::Refused::NoRoom));
    assert_eq!(r.attach(rec(0xbfff_f000, 0x2000), false, 12, false), Err(rtcr_core::regions::Refused::NoRoom));
    assert!(r.attach(rec(0x1000_0000, 0x1000), false, 12, false).is_ok());
}
