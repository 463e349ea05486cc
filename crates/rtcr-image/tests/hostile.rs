//! Bodies that claim absurd lengths must fail without reserving memory for
//! them: the decoder only trusts a length as far as the bytes present go
//! (postcard reports no size hint past the remaining input; serde caps any
//! hint at 1 MiB). A pre-allocation of 2^60 elements would abort the test
//! process, so these tests passing is the proof.

mod common;

use common::{meta, seal};
use rtcr_image::{decode, Arch, BodyError, ImageError};

/// Postcard varint of `v`.
fn varint(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let b = (v & 0x7F) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return out;
        }
        out.push(b | 0x80);
    }
}

/// A body up to (not including) the `objects` length: empty name, clock,
/// utcb area.
fn prefix(clock: u64) -> Vec<u8> {
    let mut b = varint(0); // child: ""
    b.extend(varint(clock));
    b.extend(varint(0x1000)); // utcb_area.0
    b.push(12); // utcb_area.1 (u8 is a raw byte)
    b
}

const HUGE: u64 = 1 << 60;

fn assert_unexpected_end(body: Vec<u8>) {
    let m = meta(Arch::Amd64, 12, 1);
    assert_eq!(decode(&seal(&m, &body)), Err(ImageError::Body(BodyError::UnexpectedEnd)));
}

#[test]
fn huge_object_count() {
    let m = meta(Arch::Amd64, 12, 1);
    let mut b = prefix(m.clock_us);
    b.extend(varint(HUGE)); // objects: 2^60 of them
    b.push(0); // one Task
    assert_unexpected_end(b);
}

#[test]
fn huge_string() {
    let mut b = varint(HUGE);
    b.extend_from_slice(b"abc");
    assert_unexpected_end(b);
}

#[test]
fn huge_cap_thread_and_page_counts() {
    let m = meta(Arch::Amd64, 12, 1);
    for which in 0..3 {
        let mut b = prefix(m.clock_us);
        b.extend(varint(0)); // no objects
        for field in 0..3 {
            b.extend(varint(if field == which { HUGE } else { 0 }));
            if field == which {
                break;
            }
        }
        b.extend_from_slice(&[1, 2, 3]);
        assert_unexpected_end(b);
    }
}

#[test]
fn huge_register_and_page_data_lengths() {
    let m = meta(Arch::Amd64, 12, 1);
    // One thread whose regs claim 2^60 words.
    let mut b = prefix(m.clock_us);
    b.extend(varint(0)); // objects
    b.extend(varint(0)); // caps
    b.extend(varint(1)); // threads: 1
    b.extend(varint(0x1000)); // utcb
    b.push(1); // prio
    b.extend(varint(0)); // quantum
    b.extend(varint(4)); // pager slot
    b.extend(varint(4)); // exc slot
    b.extend(varint(HUGE)); // regs
    b.extend_from_slice(&[0; 8]);
    assert_unexpected_end(b);

    // One page whose data claims 2^60 bytes.
    let mut b = prefix(m.clock_us);
    b.extend(varint(0)); // objects
    b.extend(varint(0)); // caps
    b.extend(varint(0)); // threads
    b.extend(varint(1)); // pages: 1
    b.extend(varint(0x40_0000)); // vaddr
    b.push(4); // rights
    b.extend(varint(HUGE)); // data
    b.extend_from_slice(&[0; 8]);
    assert_unexpected_end(b);
}

#[test]
fn a_length_past_usize_is_a_bad_varint() {
    let mut b = prefix(0);
    b.extend_from_slice(&[0xFF; 11]);
    let m = meta(Arch::Amd64, 12, 1);
    assert!(matches!(decode(&seal(&m, &b)), Err(ImageError::Body(_))));
}

#[test]
fn body_length_is_bounded_by_the_input_before_anything_else() {
    let m = meta(Arch::Amd64, 12, 1);
    let mut img = seal(&m, &[1, 2, 3]);
    img[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
    common::reseal_header_only(&mut img);
    assert_eq!(decode(&img), Err(ImageError::BodyLength { stored: u64::MAX, available: 3 }));
}
