//! Each consistency rule has a checkpoint that breaks it: `encode` refuses
//! to write it, and `decode` refuses it when it arrives anyway (sealed by
//! hand, as a buggy or foreign writer would).

mod common;

use common::{body, meta, realistic, seal};
use rtcr_image::{decode, encode, Arch, Checkpoint, ImageError, ImageMeta, ObjectRecord};

fn refused(m: &ImageMeta, cp: &Checkpoint, why: &str) {
    match encode(m, cp) {
        Err(ImageError::Inconsistent(w)) => assert!(w.contains(why), "encode: {w:?} should mention {why:?}"),
        other => panic!("encode should refuse ({why}): {other:?}"),
    }
    match decode(&seal(m, &body(cp))) {
        Err(ImageError::Inconsistent(w)) => assert!(w.contains(why), "decode: {w:?} should mention {why:?}"),
        other => panic!("decode should refuse ({why}): {other:?}"),
    }
}

fn base() -> (ImageMeta, Checkpoint) {
    let m = meta(Arch::Amd64, 12, 1);
    let cp = realistic(&m);
    (m, cp)
}

#[test]
fn the_base_is_consistent() {
    let (m, cp) = base();
    assert_eq!(decode(&seal(&m, &body(&cp))).unwrap().1, cp);
}

#[test]
fn cap_object_out_of_range() {
    let (m, mut cp) = base();
    cp.caps[3].object = cp.objects.len() as u32;
    refused(&m, &cp, "capability refers to an object index out of range");
}

#[test]
fn gate_bound_out_of_range() {
    let (m, mut cp) = base();
    cp.objects[7] = ObjectRecord::Gate { label: 0x100, bound: Some(99) };
    refused(&m, &cp, "gate is bound to an object index out of range");
}

#[test]
fn gate_bound_to_a_non_thread() {
    let (m, mut cp) = base();
    cp.objects[7] = ObjectRecord::Gate { label: 0x100, bound: Some(1) };
    refused(&m, &cp, "gate is bound to an object that is not a thread");
}

#[test]
fn irq_bound_out_of_range() {
    let (m, mut cp) = base();
    cp.objects[8] = ObjectRecord::Irq { label: 0, bound: Some(u32::MAX), hw_line: None, pending: false };
    refused(&m, &cp, "IRQ is bound to an object index out of range");
}

#[test]
fn irq_bound_to_a_non_thread() {
    let (m, mut cp) = base();
    cp.objects[8] = ObjectRecord::Irq { label: 0, bound: Some(9), hw_line: None, pending: false };
    refused(&m, &cp, "IRQ is bound to an object that is not a thread");
}

#[test]
fn thread_object_out_of_range() {
    let (m, mut cp) = base();
    cp.objects[6] = ObjectRecord::Thread { thread: 2 };
    refused(&m, &cp, "thread object names no thread record");
}

#[test]
fn two_objects_for_one_thread() {
    let (m, mut cp) = base();
    cp.objects[6] = ObjectRecord::Thread { thread: 0 };
    refused(&m, &cp, "two thread objects name the same thread record");
}

#[test]
fn page_not_aligned() {
    let (m, mut cp) = base();
    cp.pages[2].vaddr += 8;
    refused(&m, &cp, "page address is not page-aligned");
}

#[test]
fn duplicate_page() {
    let (m, mut cp) = base();
    cp.pages[3].vaddr = cp.pages[0].vaddr;
    refused(&m, &cp, "two pages have the same address");
}

#[test]
fn page_too_short_or_long() {
    let (m, mut cp) = base();
    cp.pages[1].data.pop();
    refused(&m, &cp, "page's data is neither one page long nor empty");
    let (m, mut cp) = base();
    cp.pages[1].data.push(0);
    refused(&m, &cp, "page's data is neither one page long nor empty");
    // no bytes: a page of zeros
    let (m, mut cp) = base();
    cp.pages[1].data.clear();
    let img = rtcr_image::encode(&m, &cp).unwrap();
    let (_, back) = rtcr_image::decode(&img).unwrap();
    assert_eq!(back.pages[1].bytes(4096).as_ref(), &[0u8; 4096][..]);
}

#[test]
fn a_zero_page_costs_a_few_bytes() {
    use rtcr_image::PageRecord;
    let zero = PageRecord::new(0x1000, 6, &[0u8; 4096]);
    assert!(zero.data.is_empty());
    let mut page = [0u8; 4096];
    page[4095] = 1;
    assert_eq!(PageRecord::new(0x2000, 6, &page).data.len(), 4096, "one byte set: the whole page");
    let (m, mut cp) = base();
    let full = rtcr_image::encode(&m, &cp).unwrap().len();
    let n = cp.pages.len();
    for p in cp.pages.iter_mut() {
        *p = PageRecord::new(p.vaddr, p.rights, &[0u8; 4096]);
    }
    let small = rtcr_image::encode(&m, &cp).unwrap().len();
    assert!(full - small >= n * 4000, "{n} zero pages saved {} bytes", full - small);
}

#[test]
fn arm64_registers_in_an_amd64_image() {
    let (m, mut cp) = base();
    cp.threads[1].regs.resize(40, 0);
    refused(&m, &cp, "register count does not match the architecture");
    // And the other way round.
    let m = meta(Arch::Arm64, 12, 1);
    let mut cp = realistic(&m);
    cp.threads[0].regs.truncate(26);
    refused(&m, &cp, "register count does not match the architecture");
}

#[test]
fn utcb_not_128_words() {
    let (m, mut cp) = base();
    cp.threads[0].utcb_words.pop();
    refused(&m, &cp, "UTCB is not 128 words");
}

#[test]
fn duplicate_cap_slot() {
    let (m, mut cp) = base();
    cp.caps[5].slot = cp.caps[9].slot;
    refused(&m, &cp, "two capabilities occupy the same slot");
}

#[test]
fn cap_rights_beyond_dswr() {
    let (m, mut cp) = base();
    cp.caps[0].rights = 0x1F;
    refused(&m, &cp, "rights bits other than W, S, R, D");
}

#[test]
fn gate_label_with_rights_bits() {
    let (m, mut cp) = base();
    cp.objects[10] = ObjectRecord::Gate { label: 0x501, bound: None };
    refused(&m, &cp, "gate label has bits 0-1 set");
}

#[test]
fn service_label_with_rights_bits() {
    let (m, mut cp) = base();
    cp.objects[2] = ObjectRecord::Service { service: rtcr_image::Service::Log, label: 0x22 };
    refused(&m, &cp, "service gate label has bits 0-1 set");
}

#[test]
fn header_clock_differs_from_the_checkpoint() {
    let (m, mut cp) = base();
    cp.clock_us += 1;
    refused(&m, &cp, "clock");
}

#[test]
fn page_shift_the_arch_cannot_run() {
    let m = meta(Arch::Amd64, 16, 1);
    let cp = realistic(&m);
    assert_eq!(encode(&m, &cp), Err(ImageError::BadPageShift(16)));
    assert_eq!(decode(&seal(&m, &body(&cp))), Err(ImageError::BadPageShift(16)));
}

#[test]
fn unknown_arch_flags_reserved_and_version() {
    let (m, cp) = base();
    let good = seal(&m, &body(&cp));
    let edit = |at: usize, v: u8| {
        let mut img = good.clone();
        img[at] = v;
        common::reseal(&mut img);
        decode(&img)
    };
    assert_eq!(edit(10, 3), Err(ImageError::UnknownArch(3)));
    assert_eq!(edit(12, 1), Err(ImageError::UnsupportedFlags(1)));
    assert_eq!(edit(50, 1), Err(ImageError::ReservedNotZero));
    assert_eq!(edit(8, 6), Err(ImageError::UnsupportedVersion(6)));
    assert_eq!(edit(8, 0), Err(ImageError::UnsupportedVersion(0)));
}
