//! Two children, each served by its own rtcr thread: one runs the
//! scenario, the other is hostile. The hostile one never gets anything of
//! the other child's (nor of rtcr's), checked after every request it makes
//! of rtcr, and the other child works on undisturbed.

use rtcr_sim::child::*;
use rtcr_sim::*;

use fiasco_model::{sys, Cpu, ObjId, Trap};
use l4_sys::cap::{base, kind, Cap, CapIdx};
use l4_sys::exc::Arch;
use l4_sys::fpage::{Fpage, MemRights};
use l4_sys::msgtag::{MsgTag, TagFlags};
use l4_sys::scheduler::SchedParam;
use l4_sys::thread::Control;
use l4_sys::{factory, ipc, scheduler, thread, Kernel, Timeout, TimeoutPair};
use rtcr_core::supervisor::ServeOutcome;
use rtcr_core::Supervisor;
use std::sync::Arc;

const HOSTILE: u64 = 0x2040_0000;

struct Hostile;
impl fiasco_model::Program for Hostile {
    fn step(&self, cpu: &mut Cpu<'_>) -> Result<(), Trap> {
        if cpu.state() == 0 {
            cpu.set_r(0, 0x1234_5678_9abc_def1);
            cpu.goto(1);
            return Ok(());
        }
        let mut x = cpu.r(0);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let slot = [1u64, 2, 3, 4, 5, 6, 7, 0x10, 0x20, 0x30][(x % 10) as usize];
        let label = [-1i64, -10, -11, -12, -13, -14, -15, -18, -20, -6, -2][((x >> 8) % 11) as usize];
        let words = ((x >> 16) % 6) as usize;
        let items = ((x >> 20) % 2) as usize;
        let op = [0u64, 2, 3, 4, 5, 6, 0x10, 0x11, 0x12][((x >> 24) % 9) as usize];
        cpu.utcb().mr[0] = op;
        for i in 1..words {
            cpu.utcb().mr[i] = ((x >> (i * 5)) % 0x80) << 12;
        }
        if items == 1 {
            // try to pass on whatever sits in a random slot of its own
            let it = l4_sys::item::SendItem::cap_arg(CapIdx((x >> 40) % 0x40));
            cpu.utcb().mr[words..words + 2].copy_from_slice(&it.words());
        }
        cpu.utcb().br[0] = l4_sys::item::rcv_single_cap(CapIdx(0x40 + (x >> 50) % 8));
        let tag = MsgTag::new(label, words, items, TagFlags::empty());
        let _ = sys!(
            cpu,
            ipc::call(cpu, CapIdx(slot), tag, TimeoutPair::new(Timeout::from_us(100), Timeout::from_us(100)))
        );
        cpu.set_r(0, x);
        Ok(())
    }
}

#[test]
fn a_hostile_child_cannot_reach_the_other_child() {
    let mut m = scenario_model(Arch::Amd64);
    m.register_program(HOSTILE, Arc::new(Hostile));
    let boot = m.boot_objects();
    // rtcr's second server thread, for the second child
    let server_b = CapIdx(0x90);
    let tb: ObjId;
    let mut sup_a;
    {
        let mut r = m.root();
        let f: Cap<kind::Factory> = Cap::new(base::FACTORY);
        let th = factory::create_thread(&mut r, f, server_b).unwrap();
        thread::control(&mut r, th, &Control::new().pager(base::PAGER).bind(0x7f_ff00_0400, Cap::new(base::TASK)))
            .unwrap();
        scheduler::run_thread(&mut r, Cap::new(base::SCHEDULER), th, &SchedParam::prio(250)).unwrap();
        tb = r.model().object_at(boot.root_task, server_b.0).unwrap();
        let mut env = ModelEnv(&mut r);
        sup_a = Supervisor::spawn(&mut env, spec("good")).unwrap();
    }
    m.make_host(tb);
    let mut spec_b = spec("hostile");
    spec_b.entry = HOSTILE;
    spec_b.load = vec![(HOSTILE, vec![0x90; 4096], 5)];
    spec_b.rtcr_slots = 0x800;
    spec_b.rtcr_mem = 0x2_0000_0000;
    spec_b.server_thread = server_b.0;
    let mut sup_b = {
        let mut h = m.host(tb);
        let mut env = ModelEnv(&mut h);
        Supervisor::spawn(&mut env, spec_b).unwrap()
    };
    let mut forbidden = root_objects(m.root().model());
    forbidden.push(tb);
    let mut checked = 0;
    for round in 0..60 {
        {
            let mut r = m.root();
            let mut env = ModelEnv(&mut r);
            env.0.model().fire_hw_irq(HW_LINE as u32);
            let out = sup_a.serve(&mut env, 50, Timeout::from_us(1000)).unwrap();
            assert!(!matches!(out, ServeOutcome::Crash { .. }), "round {round}: the good child crashed");
        }
        let mut h = m.host(tb);
        let mut env = ModelEnv(&mut h);
        for _ in 0..20 {
            // one request at a time, then walk the hostile child's spaces
            let out = sup_b.serve(&mut env, 1, Timeout::from_us(200)).unwrap();
            let mm = env.0.model();
            let root = boot.root_task;
            let child_b = mm.object_at(root, sup_b.child_task().idx().0).unwrap();
            let child_a = mm.object_at(root, sup_a.child_task().idx().0).unwrap();
            let held_a: Vec<ObjId> = sup_a.held_slots().iter().filter_map(|s| mm.object_at(root, s.0)).collect();
            for row in mm.cap_table(child_b) {
                assert!(
                    row.obj != child_a && !held_a.contains(&row.obj),
                    "the other child's {:?} in slot {:#x}",
                    row.kind,
                    row.idx
                );
            }
            let pages_a: Vec<u64> = mm.page_frames(child_a).into_iter().map(|(_, p)| p).collect();
            for (va, pa) in mm.page_frames(child_b) {
                assert!(!pages_a.contains(&pa) || pa == mm.kip_phys(), "page {va:#x} is the other child's memory");
            }
            if let Err(e) = check_child_spaces(mm, &sup_b, &forbidden) {
                panic!("{e}");
            }
            checked += 1;
            if let ServeOutcome::Crash { .. } = out {
                break;
            }
        }
    }
    // the good child counted on, its checks passing
    let mut r = m.root();
    let mm = r.model();
    let a = mm.object_at(boot.root_task, sup_a.child_task().idx().0).unwrap();
    let c = u64::from_le_bytes(mm.peek(a, COUNTER, 8).unwrap().try_into().unwrap());
    let mirror = u64::from_le_bytes(mm.peek(a, MIRROR, 8).unwrap().try_into().unwrap());
    assert!(c > 1000 && mirror == 3 * c, "counter {c}, mirror {mirror}");
    eprintln!("isolation: {checked} walks of the hostile child's spaces after single requests; {} requests reached its server", sup_b.served);
    assert!(sup_b.served > 200);
    let _ = (Fpage::INVALID, MemRights::empty(), r.utcb());
}
