//! What the model costs: IPC round trips per second between the root (a
//! host thread) and a child program that echoes, against a baseline
//! measured in the same run — the same l4-sys calls against the scripted
//! fake kernel (encoding and decoding only, no kernel).
//!
//! Run: `cargo bench -p fiasco-model --bench ipc`

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use fiasco_model::{sys, Config, Cpu, Model, Program, Trap};
use l4_sys::cap::{base, kind, Cap, CapIdx};
use l4_sys::fpage::{CapRights, Fpage, MemRights};
use l4_sys::item::{Cache, ObjAttr, SendItem};
use l4_sys::msgtag::{MsgTag, TagFlags};
use l4_sys::scheduler::SchedParam;
use l4_sys::thread::{Control, ExRegsFlags};
use l4_sys::{factory, ipc, scheduler, sigma0, task, thread, Kernel, TimeoutPair};

const CODE: u64 = 0x40_0000;

struct Echo;
impl Program for Echo {
    fn step(&self, cpu: &mut Cpu<'_>) -> Result<(), Trap> {
        loop {
            if cpu.state() == 0 {
                let _ = sys!(cpu, ipc::wait(cpu, TimeoutPair::NEVER));
                cpu.goto(1);
            } else {
                let w = cpu.utcb().mr[0];
                cpu.utcb().mr[0] = w + 1;
                let _ =
                    sys!(cpu, ipc::reply_and_wait(cpu, MsgTag::new(0, 1, 0, TagFlags::empty()), 0, TimeoutPair::NEVER));
            }
        }
    }
}

fn setup() -> Model {
    let mut m = Model::new(Config { trace: false, ..Config::amd64() });
    m.register_program(CODE, Arc::new(Echo));
    {
        let mut r = m.root();
        let f: Cap<kind::Factory> = Cap::new(base::FACTORY);
        let me: Cap<kind::Task> = Cap::new(base::TASK);
        scheduler::run_thread(&mut r, Cap::new(base::SCHEDULER), Cap::new(base::THREAD), &SchedParam::prio(200))
            .unwrap();
        let t = factory::create_task(&mut r, f, CapIdx(0x20), Fpage::mem(0xB300_0000, 12, MemRights::empty())).unwrap();
        let th = factory::create_thread(&mut r, f, CapIdx(0x21)).unwrap();
        factory::create_gate(&mut r, f, CapIdx(0x22), Some((th, 0x10))).unwrap();
        factory::create_gate(&mut r, f, CapIdx(0x23), Some((Cap::new(base::THREAD), 0x20))).unwrap();
        let g = SendItem::map_obj(CapIdx(4), Fpage::obj(CapIdx(0x23), 0, CapRights::RWS), ObjAttr::empty(), false);
        task::map(&mut r, t, me, g).unwrap();
        sigma0::map_any(&mut r, Cap::new(base::PAGER), 12, Fpage::mem(0x2000_0000, 12, MemRights::empty())).unwrap();
        let code = SendItem::map_mem(CODE, Fpage::mem(0x2000_0000, 12, MemRights::RX), Cache::Keep, false);
        task::map(&mut r, t, me, code).unwrap();
        thread::control(&mut r, th, &Control::new().pager(CapIdx(4)).exc_handler(CapIdx(4)).bind(0xB300_0000, t))
            .unwrap();
        scheduler::run_thread(&mut r, Cap::new(base::SCHEDULER), th, &SchedParam::prio(10)).unwrap();
        thread::ex_regs(&mut r, th, CODE, 0, ExRegsFlags::empty()).unwrap();
    }
    m
}

fn main() {
    let n = 200_000u64;
    let mut m = setup();
    let mut r = m.root();
    let t = Instant::now();
    for i in 0..n {
        r.utcb().mr[0] = i;
        ipc::call(&mut r, CapIdx(0x22), MsgTag::new(0, 1, 0, TagFlags::empty()), TimeoutPair::NEVER).unwrap();
        assert_eq!(r.utcb().mr[0], i + 1);
    }
    let model = t.elapsed();

    let mut f = l4_sys::fake::FakeKernel::new();
    let t = Instant::now();
    for i in 0..n {
        f.utcb().mr[0] = i;
        black_box(
            ipc::call(&mut f, CapIdx(0x22), MsgTag::new(0, 1, 0, TagFlags::empty()), TimeoutPair::NEVER).unwrap(),
        );
        if f.log.len() > 1024 {
            f.log.clear();
        }
    }
    let baseline = t.elapsed();

    let per_s = n as f64 / model.as_secs_f64();
    println!("model IPC round trips (root -> child echo -> root): {n} in {model:?}: {per_s:.0} round trips/s");
    println!("baseline (same l4-sys calls on the fake kernel):     {n} in {baseline:?}");
    println!("ratio model / baseline: {:.1}x", model.as_secs_f64() / baseline.as_secs_f64());
}
