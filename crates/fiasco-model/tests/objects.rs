//! Kernel objects: factory (kinds, buffer, rights, quota, protocol), log,
//! debugger, KIP, scheduler, ICU with hardware lines, semaphore.

mod common;
use common::*;

use fiasco_model::ObjKindName;
use l4_sys::cap::{base, kind, Cap, CapIdx};
use l4_sys::error::{IpcErrorCode, Phase};
use l4_sys::fpage::{CapRights, Fpage, MemRights};
use l4_sys::item::{ObjAttr, SendItem};
use l4_sys::scheduler::{CpuSet, SchedParam};
use l4_sys::{
    debugger, factory, icu, ipc, irq, log, scheduler, semaphore, sigma0, task, Errno, Error, Kernel, TimeoutPair,
};

#[test]
fn factory_creates_every_kind_in_the_requested_slot() {
    let mut m = model();
    let mut r = m.root();
    factory::create_task(&mut r, F, CapIdx(0x20), Fpage::mem(UTCB, 12, MemRights::empty())).unwrap();
    factory::create_thread(&mut r, F, CapIdx(0x21)).unwrap();
    factory::create_gate(&mut r, F, CapIdx(0x22), Some((ROOT_THREAD, 0x120))).unwrap();
    factory::create_gate(&mut r, F, CapIdx(0x23), None).unwrap();
    factory::create_irq(&mut r, F, CapIdx(0x24)).unwrap();
    factory::create_semaphore(&mut r, F, CapIdx(0x25)).unwrap();
    factory::create_factory(&mut r, F, CapIdx(0x26), 4096).unwrap();
    let m = r.model();
    let rows = m.cap_table(m.boot_objects().root_task);
    let kinds: Vec<(u64, ObjKindName, u8)> =
        rows.iter().filter(|r| r.idx >= 0x20).map(|r| (r.idx, r.kind, r.rights)).collect();
    use ObjKindName::*;
    assert_eq!(
        kinds,
        vec![
            (0x20, Task, 0xF),
            (0x21, Thread, 0xF),
            (0x22, Gate, 0xF),
            (0x23, Gate, 0xF),
            (0x24, Irq, 0xF),
            (0x25, Semaphore, 0xF),
            (0x26, Factory, 0xF)
        ]
    );
    let gate = rows.iter().find(|r| r.idx == 0x22).unwrap();
    assert_eq!(gate.label, Some(0x120));
    assert!(gate.server, "a factory's first mapping carries the server right");
    let root_thread_id = rows.iter().find(|r| r.idx == 3).unwrap().debug_id;
    assert_eq!(gate.bound_thread, Some(root_thread_id));
    assert_eq!(rows.iter().find(|r| r.idx == 0x23).unwrap().bound_thread, None);
}

#[test]
fn factory_errors_blame_the_right_party() {
    let mut m = model();
    let mut r = m.root();
    // no single-cap receive buffer: an IPC error in the receive phase
    r.utcb().br[0] = 0;
    let e = ipc::rpc(&mut r, base::FACTORY, -15, &[(-12i64) as u64], &[]).unwrap_err();
    assert_eq!(e, Error::Ipc(l4_sys::IpcError { code: IpcErrorCode::MsgCut, phase: Phase::Receive }));
    // a wrong protocol label
    assert_eq!(ipc::rpc(&mut r, base::FACTORY, -11, &[0], &[]), Err(Error::Kernel(Errno::BadProto)));
    // unknown object type
    r.utcb().br[0] = l4_sys::item::rcv_single_cap(CapIdx(0x30));
    assert_eq!(ipc::rpc(&mut r, base::FACTORY, -15, &[(-99i64) as u64], &[]), Err(Error::Kernel(Errno::NoDev)));
    // a gate label with the rights bits set
    assert_eq!(
        factory::create_gate(&mut r, F, CapIdx(0x30), Some((ROOT_THREAD, 0x41))),
        Err(Error::Kernel(Errno::Inval))
    );
    // a factory capability without S may not create
    let item = SendItem::map_obj(CapIdx(0x31), Fpage::obj(base::FACTORY, 0, CapRights::RW), ObjAttr::empty(), false);
    task::map(&mut r, ME, ME, item).unwrap();
    assert_eq!(factory::create_irq(&mut r, Cap::new(CapIdx(0x31)), CapIdx(0x32)), Err(Error::Kernel(Errno::Perm)));
    // an empty slot
    let e = factory::create_irq(&mut r, Cap::new(CapIdx(0x99)), CapIdx(0x32)).unwrap_err();
    assert_eq!(e, Error::Ipc(l4_sys::IpcError { code: IpcErrorCode::NotExistent, phase: Phase::Send }));
}

#[test]
fn factory_quota_is_enforced() {
    let mut m = model();
    let mut r = m.root();
    let child = factory::create_factory(&mut r, F, CapIdx(0x20), 200).unwrap();
    for i in 0..3 {
        factory::create_irq(&mut r, child, CapIdx(0x30 + i)).unwrap();
    }
    assert_eq!(factory::create_irq(&mut r, child, CapIdx(0x40)), Err(Error::Kernel(Errno::NoMem)));
    // the root factory is not limited
    factory::create_irq(&mut r, F, CapIdx(0x40)).unwrap();
}

#[test]
fn log_is_captured_per_task_and_long_writes_are_dropped() {
    let mut m = model();
    let mut r = m.root();
    log::write(&mut r, Cap::new(base::LOG), b"hello model\n").unwrap();
    // one chunk over the kernel's limit is ignored, as by the kernel
    let words: Vec<u64> =
        std::iter::once(0u64).chain(std::iter::once(600)).chain(std::iter::repeat_n(0x4141414141414141, 61)).collect();
    ipc::oneway(&mut r, base::LOG, -13, &words, Default::default(), TimeoutPair::NEVER).unwrap();
    let m = r.model();
    assert_eq!(m.log_of(m.boot_objects().root_task), "hello model\n");
}

#[test]
fn debugger_names_objects_and_reports_ids() {
    let mut m = model();
    let mut r = m.root();
    let dbg = Cap::<kind::Debugger>::new(base::DEBUGGER);
    debugger::set_object_name(&mut r, dbg, Cap::<kind::Task>::new(base::TASK), "rtcr").unwrap();
    let id_task = debugger::global_id(&mut r, dbg, Cap::<kind::Task>::new(base::TASK)).unwrap();
    let id_thread = debugger::global_id(&mut r, dbg, ROOT_THREAD).unwrap();
    assert_ne!(id_task, id_thread);
    let m = r.model();
    let rows = m.cap_table(m.boot_objects().root_task);
    let t = rows.iter().find(|r| r.idx == 1).unwrap();
    assert_eq!(t.name, "rtcr");
    assert_eq!(t.debug_id, id_task);
}

#[test]
fn kip_from_sigma0_has_the_magic_and_a_deterministic_clock() {
    let mut m = model();
    let mut r = m.root();
    let win = Fpage::mem(0x3000_0000, 12, MemRights::empty());
    let phys = sigma0::map_kip(&mut r, S0, win).unwrap();
    assert_eq!(phys, r.model().kip_phys());
    let mut page = vec![0u8; 4096];
    r.read(0x3000_0000, &mut page).unwrap();
    let kip = l4_sys::kip::Kip::parse(&page).expect("a KIP");
    assert_eq!(kip.platform_name(), "model");
    let c0 = kip.clock_field();
    // a 5 ms sleep moves the clock by exactly 5 ms (nothing else runs)
    ipc::sleep(&mut r, l4_sys::Timeout::from_us(5000)).unwrap();
    r.read(0x3000_0000, &mut page).unwrap();
    let c1 = l4_sys::kip::Kip::parse(&page).unwrap().clock_field();
    assert_eq!(c1 - c0, 5000);
}

#[test]
fn scheduler_info_and_run_thread_checks() {
    let mut m = model();
    let mut r = m.root();
    let s = Cap::<kind::Scheduler>::new(base::SCHEDULER);
    let i = scheduler::info(&mut r, s, CpuSet::ALL).unwrap();
    assert_eq!((i.cpus, i.cpu_max, i.classes), (1, 1, 2));
    let th = factory::create_thread(&mut r, F, CapIdx(0x20)).unwrap();
    assert_eq!(scheduler::run_thread(&mut r, s, th, &SchedParam::prio(0)), Err(Error::Kernel(Errno::Inval)));
    scheduler::run_thread(&mut r, s, th, &SchedParam::prio(300)).unwrap();
}

#[test]
fn icu_binds_hardware_lines_and_masks_after_delivery() {
    let mut m = model();
    let mut r = m.root();
    let icu_cap = Cap::<kind::Icu>::new(base::ICU);
    let info = icu::info(&mut r, icu_cap).unwrap();
    assert_eq!(info.nr_irqs, 24);
    let q = factory::create_irq(&mut r, F, CapIdx(0x20)).unwrap();
    irq::bind_thread(&mut r, q, ROOT_THREAD, 0x777).unwrap();
    assert_eq!(icu::bind(&mut r, icu_cap, 5, q), Ok(icu::UnmaskVia::Irq));
    assert_eq!(icu::bind(&mut r, icu_cap, 99, q), Err(Error::Kernel(Errno::Inval)));
    assert!(r.model().fire_hw_irq(5));
    assert!(!r.model().fire_hw_irq(6), "nothing bound to line 6");
    let got = ipc::wait(&mut r, TimeoutPair::RECV_ZERO).unwrap();
    assert_eq!((got.tag.0, got.label), (0, 0x777));
    // masked now: a second fire is held back until the unmask
    r.model().fire_hw_irq(5);
    assert!(ipc::wait(&mut r, TimeoutPair::RECV_ZERO).unwrap_err().is_timeout());
    irq::unmask(&mut r, q).unwrap();
    assert_eq!(ipc::wait(&mut r, TimeoutPair::RECV_ZERO).unwrap().label, 0x777);
}

#[test]
fn semaphore_counts_and_down_times_out() {
    let mut m = model();
    let mut r = m.root();
    let s = factory::create_semaphore(&mut r, F, CapIdx(0x20)).unwrap();
    semaphore::up(&mut r, s).unwrap();
    semaphore::up(&mut r, s).unwrap();
    semaphore::down(&mut r, s, TimeoutPair::RECV_ZERO).unwrap();
    semaphore::down(&mut r, s, TimeoutPair::RECV_ZERO).unwrap();
    assert!(semaphore::down(&mut r, s, TimeoutPair::RECV_ZERO).unwrap_err().is_timeout());
}
