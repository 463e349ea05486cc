//! Memory: page faults reach the pager with the kernel's words and a map
//! reply installs the page; write protection makes the next write fault;
//! unmap reports referenced/dirty (x86 only); a refused fault becomes an
//! exception; without a pager the thread is killed.

mod common;
use common::*;

use fiasco_model::{Config, Model};
use l4_sys::cap::CapIdx;
use l4_sys::fpage::{Fpage, MemRights};
use l4_sys::item::Cache;
use l4_sys::msgtag::{MsgTag, TagFlags};
use l4_sys::pagefault::{resolve, PageFault};
use l4_sys::task::unmap_mask;
use l4_sys::{ipc, sigma0, task, Kernel, TimeoutPair};

const DATA2: u64 = 0x60_0000;
const BACKING: u64 = 0x2800_0000;

/// Writes r0+1 to DATA2 each step (r0 counts).
fn writer(m: &mut Model) {
    program(m, CODE, |cpu| {
        let n = cpu.r(0) + 1;
        cpu.store_u64(DATA2, n)?;
        cpu.set_r(0, n);
        Ok(())
    });
}

fn reply_map(r: &mut fiasco_model::HostThread<'_>, fault: u64, rights: MemRights) {
    let it = resolve(fault, Fpage::mem(BACKING, 12, rights), Cache::Keep);
    r.utcb().mr[..2].copy_from_slice(&it.words());
    ipc::reply(r, MsgTag::new(0, 0, 1, TagFlags::empty()), 0, TimeoutPair::NEVER).unwrap();
}

#[test]
fn a_fault_reaches_the_pager_and_the_reply_maps_the_page() {
    let mut m = model();
    writer(&mut m);
    let mut r = m.root();
    sigma0::map_any(&mut r, S0, 12, Fpage::mem(BACKING, 12, MemRights::empty())).unwrap();
    let _child = spawn(&mut r, 0x20, CODE, 0x10, 10);
    let pf = ipc::wait(&mut r, TimeoutPair::NEVER).unwrap();
    assert!(pf.tag.is_page_fault());
    assert_eq!(pf.tag.words(), 2);
    assert_eq!(pf.label, 0x10 | 3);
    let d = PageFault::decode(l4_sys::exc::Arch::Amd64, r.utcb().mr[0], r.utcb().mr[1]);
    assert_eq!((d.addr, d.write, d.present, d.ip), (DATA2, true, false, CODE));
    reply_map(&mut r, d.addr, MemRights::RW);
    r.model().run(4);
    // the step that faulted ran again, then three more
    let mut b = [0u8; 8];
    r.read(BACKING, &mut b).unwrap();
    assert_eq!(u64::from_le_bytes(b), 4);
}

#[test]
fn write_protection_makes_the_next_write_fault_and_dirty_bits_are_reported() {
    let mut m = model();
    writer(&mut m);
    let mut r = m.root();
    sigma0::map_any(&mut r, S0, 12, Fpage::mem(BACKING, 12, MemRights::empty())).unwrap();
    let _child = spawn(&mut r, 0x20, CODE, 0x10, 10);
    ipc::wait(&mut r, TimeoutPair::NEVER).unwrap();
    reply_map(&mut r, DATA2, MemRights::RW);
    r.model().run(2);
    // the child's mapping is derived from ours: query it (rights 0, children)
    let f = task::unmap(&mut r, ME, Fpage::mem(BACKING, 12, MemRights::empty()), unmap_mask::CHILDREN).unwrap();
    assert!(f.referenced && f.dirty);
    // revoke W in the child only
    task::unmap(&mut r, ME, Fpage::mem(BACKING, 12, MemRights::W), unmap_mask::CHILDREN).unwrap();
    let pf = ipc::wait(&mut r, TimeoutPair::NEVER).unwrap();
    assert!(pf.tag.is_page_fault());
    let d = PageFault::decode(l4_sys::exc::Arch::Amd64, r.utcb().mr[0], r.utcb().mr[1]);
    assert!(d.write && d.present, "a write to a present read-only page");
    // the flags were reported, not cleared (as on the x86 kernel)
    let f = task::unmap(&mut r, ME, Fpage::mem(BACKING, 12, MemRights::empty()), unmap_mask::CHILDREN).unwrap();
    assert!(f.dirty);
    reply_map(&mut r, DATA2, MemRights::RW);
    r.model().run(1);
    let mut b = [0u8; 8];
    r.read(BACKING, &mut b).unwrap();
    assert_eq!(u64::from_le_bytes(b), 3);
}

#[test]
fn a_refused_fault_becomes_an_exception_and_no_pager_kills() {
    let mut m = model();
    writer(&mut m);
    let mut r = m.root();
    let child = spawn(&mut r, 0x20, CODE, 0x10, 10);
    ipc::wait(&mut r, TimeoutPair::NEVER).unwrap();
    ipc::reply(&mut r, MsgTag::new(-1, 0, 0, TagFlags::empty()), 0, TimeoutPair::NEVER).unwrap();
    let e = ipc::wait(&mut r, TimeoutPair::NEVER).unwrap();
    assert!(e.tag.is_exception());
    use l4_sys::exc::amd64::mr;
    assert_eq!(r.utcb().mr[mr::TRAPNO], 14);
    assert_eq!(r.utcb().mr[mr::PFA], DATA2);
    assert_eq!(r.utcb().mr[mr::ERR] & 2, 2, "a write");
    // no pager: release the child's slot 4 and let it fault
    let mut m = model();
    writer(&mut m);
    let mut r = m.root();
    let child2 = spawn(&mut r, 0x20, CODE, 0x10, 10);
    task::release_cap(&mut r, child2.task, CapIdx(4)).unwrap();
    r.model().run(5);
    let mm = r.model();
    let th = obj(mm, child2.thread.idx());
    assert!(!mm.thread_alive(th));
    let _ = child;
}

#[test]
fn arm64_reports_faults_with_its_own_bit_sense_and_no_access_flags() {
    let mut m = Model::new(Config::arm64());
    writer(&mut m);
    let mut r = m.root();
    sigma0::map_any(&mut r, S0, 12, Fpage::mem(BACKING, 12, MemRights::empty())).unwrap();
    let _child = spawn(&mut r, 0x20, CODE, 0x10, 10);
    ipc::wait(&mut r, TimeoutPair::NEVER).unwrap();
    let w0 = r.utcb().mr[0];
    assert_eq!(w0 & 1, 1, "arm: bit 0 = translation fault");
    assert_eq!(w0 & 2, 2, "write");
    reply_map(&mut r, DATA2, MemRights::RW);
    r.model().run(2);
    let f = task::unmap(&mut r, ME, Fpage::mem(BACKING, 12, MemRights::empty()), unmap_mask::CHILDREN).unwrap();
    assert!(!f.referenced && !f.dirty, "Arm reports no access flags");
}
