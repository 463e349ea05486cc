//! Shared set-up for the model tests: a root task (host thread) that
//! creates children through the ABI, exactly as rtcr will.
#![allow(dead_code)]

use fiasco_model::{Config, HostThread, Model, ObjId};
use l4_sys::cap::{base, kind, Cap, CapIdx};
use l4_sys::fpage::{CapRights, Fpage, MemRights};
use l4_sys::item::{Cache, ObjAttr, SendItem};
use l4_sys::scheduler::SchedParam;
use l4_sys::thread::{Control, ExRegsFlags};
use l4_sys::{factory, scheduler, sigma0, task, thread};

pub const F: Cap<kind::Factory> = Cap::new(base::FACTORY);
pub const ME: Cap<kind::Task> = Cap::new(base::TASK);
pub const ROOT_THREAD: Cap<kind::Thread> = Cap::new(base::THREAD);
pub const S0: Cap<kind::Sigma0> = Cap::new(base::PAGER);
pub const SCHED: Cap<kind::Scheduler> = Cap::new(base::SCHEDULER);

/// Child code lives here (programs are registered at this entry).
pub const CODE: u64 = 0x40_0000;
/// Child data page(s).
pub const DATA: u64 = 0x50_0000;
/// Child UTCB area.
pub const UTCB: u64 = 0xB300_0000;
/// Where the root keeps the child's pages in its own space.
pub const ROOT_WINDOW: u64 = 0x2000_0000;

/// A child made by the root: its capabilities in the root's space.
pub struct Child {
    pub task: Cap<kind::Task>,
    pub thread: Cap<kind::Thread>,
    pub gate: CapIdx,
}

pub fn model() -> Model {
    Model::new(Config::amd64())
}

/// Maps a fresh page from sigma0 into the root at `root_va` and into the
/// child at `child_va`.
pub fn give_page(root: &mut HostThread<'_>, child: Cap<kind::Task>, root_va: u64, child_va: u64, rights: MemRights) {
    sigma0::map_any(root, S0, 12, Fpage::mem(root_va, 12, MemRights::empty())).expect("sigma0 page");
    let item = SendItem::map_mem(child_va, Fpage::mem(root_va, 12, rights), Cache::Keep, false);
    task::map(root, child, ME, item).expect("map into child");
}

/// Creates a child task with one thread starting at `entry`, its pager and
/// exception handler a gate (label `label`) to the root's thread in slot 4,
/// code and one data page mapped, and runs it at `prio`.
/// The root runs at priority 200 (as rtcr does), so children never
/// preempt it while it sets them up.
pub fn spawn(root: &mut HostThread<'_>, base_slot: u64, entry: u64, label: u64, prio: u64) -> Child {
    scheduler::run_thread(root, SCHED, ROOT_THREAD, &SchedParam::prio(200)).unwrap();
    let t = factory::create_task(root, F, CapIdx(base_slot), Fpage::mem(UTCB, 12, MemRights::empty())).unwrap();
    let th = factory::create_thread(root, F, CapIdx(base_slot + 1)).unwrap();
    let gate = CapIdx(base_slot + 2);
    factory::create_gate(root, F, gate, Some((ROOT_THREAD, label))).unwrap();
    let g = SendItem::map_obj(CapIdx(4), Fpage::obj(gate, 0, CapRights::RWS), ObjAttr::empty(), false);
    task::map(root, t, ME, g).unwrap();
    let w = ROOT_WINDOW + base_slot * 0x10_0000;
    give_page(root, t, w, CODE, MemRights::RX);
    give_page(root, t, w + 0x1000, DATA, MemRights::RW);
    let c = Control::new().pager(CapIdx(4)).exc_handler(CapIdx(4)).bind(UTCB, t);
    thread::control(root, th, &c).unwrap();
    scheduler::run_thread(root, SCHED, th, &SchedParam::prio(prio)).unwrap();
    thread::ex_regs(root, th, entry, DATA + 0x1000, ExRegsFlags::empty()).unwrap();
    Child { task: t, thread: th, gate }
}

/// The object behind a root slot.
pub fn obj(m: &Model, idx: CapIdx) -> ObjId {
    let root = m.boot_objects().root_task;
    m.object_at(root, idx.0).expect("slot occupied")
}

/// A program from a closure.
pub struct Fnp<F>(pub F);
impl<F> fiasco_model::Program for Fnp<F>
where
    F: Fn(&mut fiasco_model::Cpu<'_>) -> Result<(), fiasco_model::Trap> + Send + Sync,
{
    fn step(&self, cpu: &mut fiasco_model::Cpu<'_>) -> Result<(), fiasco_model::Trap> {
        (self.0)(cpu)
    }
}

/// Registers a closure program at `entry`.
pub fn program<F>(m: &mut Model, entry: u64, f: F)
where
    F: Fn(&mut fiasco_model::Cpu<'_>) -> Result<(), fiasco_model::Trap> + Send + Sync + 'static,
{
    m.register_program(entry, std::sync::Arc::new(Fnp(f)));
}

/// Reads a u64 of a child's memory (through the root's slot for its task).
pub fn child_u64(m: &Model, child: &Child, addr: u64) -> u64 {
    let t = obj(m, child.task.idx());
    u64::from_le_bytes(m.peek(t, addr, 8).expect("mapped").try_into().unwrap())
}

/// The TCR error of the last failed call of the root.
pub fn tcr(root: &mut HostThread<'_>) -> u64 {
    use l4_sys::Kernel;
    root.utcb().tcr_error
}

/// A computing child at CODE: r0 += 1 and store it at DATA, forever, one
/// step each.
pub fn counter(m: &mut Model) {
    program(m, CODE, |cpu| {
        let n = cpu.r(0) + 1;
        cpu.set_r(0, n);
        cpu.store_u64(DATA, n)?;
        Ok(())
    });
}

/// A program at `entry` that runs `f` once (its kernel call, if any, then
/// the rest of `f` after the call) and then sleeps forever.
pub fn program_once<F>(m: &mut Model, entry: u64, f: F)
where
    F: Fn(&mut fiasco_model::Cpu<'_>) -> Result<(), fiasco_model::Trap> + Send + Sync + 'static,
{
    program(m, entry, move |cpu| {
        if cpu.state() == 0 {
            f(cpu)?;
            cpu.goto(1);
        } else {
            let _ = fiasco_model::sys!(cpu, l4_sys::ipc::sleep(cpu, l4_sys::Timeout::NEVER));
        }
        Ok(())
    });
}
