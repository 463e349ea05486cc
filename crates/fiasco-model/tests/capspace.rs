//! Capability spaces: rights on map, the server attribute, cap_valid and
//! cap_equal, unmap with child-only and all-spaces masks, grant, the
//! hot-spot rule, and object deletion with the last capability (and what
//! happens to a thread blocked on the object).

mod common;
use common::*;

use fiasco_model::ObjKindName;
use l4_sys::cap::{base, CapIdx};
use l4_sys::fpage::{CapRights, Fpage};
use l4_sys::item::{ObjAttr, SendItem};
use l4_sys::task::unmap_mask;
use l4_sys::{factory, ipc, task, Kernel, TimeoutPair};

fn map_obj(r: &mut fiasco_model::HostThread<'_>, src: u64, dst: u64, rights: CapRights, attr: ObjAttr, grant: bool) {
    let it = SendItem::map_obj(CapIdx(dst), Fpage::obj(CapIdx(src), 0, rights), attr, grant);
    task::map(r, ME, ME, it).unwrap();
}

fn row(m: &fiasco_model::Model, idx: u64) -> Option<fiasco_model::CapRow> {
    m.cap_table(m.boot_objects().root_task).into_iter().find(|r| r.idx == idx)
}

#[test]
fn map_masks_rights_and_the_server_attribute() {
    let mut m = model();
    let mut r = m.root();
    factory::create_gate(&mut r, F, CapIdx(0x20), Some((ROOT_THREAD, 0x10))).unwrap();
    map_obj(&mut r, 0x20, 0x21, CapRights::RW, ObjAttr::empty(), false);
    map_obj(&mut r, 0x20, 0x22, CapRights::RWS, ObjAttr::IPCGATE_SVR, false);
    let m2 = r.model();
    let a = row(m2, 0x21).unwrap();
    assert_eq!((a.rights, a.server), (CapRights::RW.bits() as u8, false));
    let b = row(m2, 0x22).unwrap();
    assert_eq!((b.rights, b.server), (CapRights::RWS.bits() as u8, true));
    // a client capability cannot reach the gate's control operations:
    // get_infos through it is plain IPC to the bound thread (ourselves), and
    // with a zero send timeout it cannot be delivered
    let e = l4_sys::ipc_gate::get_infos(&mut r, l4_sys::Cap::new(CapIdx(0x21))).unwrap_err();
    assert!(matches!(e, l4_sys::Error::Ipc(_)), "{e:?}");
    assert_eq!(l4_sys::ipc_gate::get_infos(&mut r, l4_sys::Cap::new(CapIdx(0x22))), Ok(0x10));
}

#[test]
fn cap_valid_and_cap_equal() {
    let mut m = model();
    let mut r = m.root();
    factory::create_irq(&mut r, F, CapIdx(0x20)).unwrap();
    map_obj(&mut r, 0x20, 0x21, CapRights::RWSD, ObjAttr::OBJ_RIGHTS, false);
    map_obj(&mut r, 0x20, 0x22, CapRights::RW, ObjAttr::empty(), false);
    assert_eq!(task::cap_valid(&mut r, ME, CapIdx(0x20)), Ok(true));
    assert_eq!(task::cap_valid(&mut r, ME, CapIdx(0x23)), Ok(false));
    assert_eq!(task::cap_valid(&mut r, ME, CapIdx(0)), Ok(false));
    assert_eq!(task::cap_equal(&mut r, ME, CapIdx(0x20), CapIdx(0x21)), Ok(true));
    assert_eq!(task::cap_equal(&mut r, ME, CapIdx(0x20), CapIdx(0x22)), Ok(false), "other W/S rights");
    assert_eq!(task::cap_equal(&mut r, ME, CapIdx(0x20), CapIdx(base::LOG.0)), Ok(false));
}

#[test]
fn unmap_revokes_in_derived_mappings_only_unless_all_spaces() {
    let mut m = model();
    let mut r = m.root();
    factory::create_irq(&mut r, F, CapIdx(0x20)).unwrap();
    map_obj(&mut r, 0x20, 0x21, CapRights::RWSD, ObjAttr::empty(), false); // derived from 0x20
    map_obj(&mut r, 0x21, 0x22, CapRights::RWSD, ObjAttr::empty(), false); // derived from 0x21
                                                                           // revoke W below 0x20 (children only): 0x21 and 0x22 lose W, 0x20 keeps it
    task::unmap(&mut r, ME, Fpage::obj(CapIdx(0x20), 0, CapRights::W), unmap_mask::CHILDREN).unwrap();
    let mm = r.model();
    assert_eq!(row(mm, 0x20).unwrap().rights & 1, 1);
    assert_eq!(row(mm, 0x21).unwrap().rights & 1, 0);
    assert_eq!(row(mm, 0x22).unwrap().rights & 1, 0);
    // revoking R below 0x21 removes 0x22 only
    task::unmap(&mut r, ME, Fpage::obj(CapIdx(0x21), 0, CapRights::R), unmap_mask::CHILDREN).unwrap();
    assert!(row(r.model(), 0x21).is_some());
    assert!(row(r.model(), 0x22).is_none());
    // with ALL_SPACES the named entry goes too
    task::unmap(&mut r, ME, Fpage::obj(CapIdx(0x21), 0, CapRights::R), unmap_mask::ALL_SPACES).unwrap();
    assert!(row(r.model(), 0x21).is_none());
    assert!(row(r.model(), 0x20).is_some());
}

#[test]
fn grant_moves_and_a_multi_slot_fpage_lands_at_the_hot_spot() {
    let mut m = model();
    let mut r = m.root();
    for i in 0..4 {
        factory::create_irq(&mut r, F, CapIdx(0x40 + i)).unwrap();
    }
    // four slots (order 2) at hot spot 0x80: they land at 0x80..0x84
    let it = SendItem::map_obj(CapIdx(0x80), Fpage::obj(CapIdx(0x40), 2, CapRights::RWSD), ObjAttr::empty(), false);
    task::map(&mut r, ME, ME, it).unwrap();
    for i in 0..4 {
        assert_eq!(task::cap_equal(&mut r, ME, CapIdx(0x40 + i), CapIdx(0x80 + i)), Ok(true), "slot {i}");
    }
    map_obj(&mut r, 0x40, 0x90, CapRights::RWSD, ObjAttr::empty(), true);
    assert_eq!(task::cap_valid(&mut r, ME, CapIdx(0x40)), Ok(false), "granted away");
    assert_eq!(task::cap_equal(&mut r, ME, CapIdx(0x90), CapIdx(0x80)), Ok(true));
}

#[test]
fn mapping_onto_an_occupied_slot_replaces_it() {
    let mut m = model();
    let mut r = m.root();
    factory::create_irq(&mut r, F, CapIdx(0x20)).unwrap();
    factory::create_semaphore(&mut r, F, CapIdx(0x21)).unwrap();
    map_obj(&mut r, 0x20, 0x21, CapRights::RWSD, ObjAttr::empty(), false);
    assert_eq!(row(r.model(), 0x21).unwrap().kind, ObjKindName::Irq);
    // the semaphore lost its only capability and is gone
    assert_eq!(task::cap_equal(&mut r, ME, CapIdx(0x20), CapIdx(0x21)), Ok(true));
}

#[test]
fn deleting_a_gate_wakes_its_blocked_sender_with_an_error() {
    let mut m = model();
    // the child calls the gate in its slot 5, whose thread never receives
    program(&mut m, CODE, |cpu| {
        use fiasco_model::sys;
        match cpu.state() {
            0 => {
                let r = sys!(
                    cpu,
                    ipc::call(cpu, CapIdx(5), l4_sys::MsgTag::new(0, 0, 0, Default::default()), TimeoutPair::NEVER)
                );
                let code = match r {
                    Ok(_) => 1,
                    Err(l4_sys::Error::Ipc(e)) => 0x100 | e.to_tcr(),
                    Err(_) => 2,
                };
                cpu.store_u64(DATA, code)?;
                cpu.goto(1);
                Ok(())
            }
            _ => {
                let _ = sys!(cpu, ipc::sleep(cpu, l4_sys::Timeout::NEVER));
                Ok(())
            }
        }
    });
    let mut r = m.root();
    // a thread that never receives, and a gate bound to it
    factory::create_thread(&mut r, F, CapIdx(0x40)).unwrap();
    factory::create_gate(&mut r, F, CapIdx(0x41), Some((l4_sys::Cap::new(CapIdx(0x40)), 0x50))).unwrap();
    let child = spawn(&mut r, 0x20, CODE, 0x10, 10);
    let it = SendItem::map_obj(CapIdx(5), Fpage::obj(CapIdx(0x41), 0, CapRights::RWS), ObjAttr::empty(), false);
    task::map(&mut r, child.task, ME, it).unwrap();
    r.model().run(100);
    assert_eq!(child_u64(r.model(), &child, DATA), 0, "blocked in the send");
    // the root drops the only other capability: the gate is deleted
    task::delete_obj(&mut r, ME, CapIdx(0x41)).unwrap();
    r.model().run(100);
    assert_eq!(child_u64(r.model(), &child, DATA), 0x100 | 0x4, "ENOT_EXISTENT in the send phase");
    let mm = r.model();
    let ct = obj(mm, child.task.idx());
    assert!(mm.object_at(ct, 5).is_none(), "the child's capability went with the object");
}

#[test]
fn invalid_and_missing_capabilities() {
    let mut m = model();
    let mut r = m.root();
    let e = ipc::call(&mut r, CapIdx(0x99), l4_sys::MsgTag(0), TimeoutPair::NEVER).unwrap_err();
    assert_eq!(
        e,
        l4_sys::Error::Ipc(l4_sys::IpcError { code: l4_sys::IpcErrorCode::NotExistent, phase: l4_sys::Phase::Send })
    );
    assert_eq!(tcr(&mut r), 4);
    // the slot limit: nothing maps beyond it
    let it = SendItem::map_obj(CapIdx(1 << 21), Fpage::obj(base::LOG, 0, CapRights::RW), ObjAttr::empty(), false);
    task::map(&mut r, ME, ME, it).unwrap();
    assert_eq!(task::cap_valid(&mut r, ME, CapIdx(1 << 21)), Ok(false));
    let _ = r.utcb();
}
