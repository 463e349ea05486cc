//! The fuzz targets' bodies, shared by `fuzz/` (cargo fuzz, libFuzzer) and
//! the smoke run in the test suite, so CI exercises exactly what the fuzzer
//! does.
//!
//! * [`image_decode`]: arbitrary bytes as an image and as a store region —
//!   decoding must not panic, allocate without bound, or accept garbage.
//! * [`dispatch`]: arbitrary bytes as a script of requests a model child
//!   sends to the services rtcr offers (tags, words, items, capability
//!   selectors, receive buffers) — rtcr must answer without failing, and
//!   the child must end up holding nothing of rtcr's own.

use std::sync::Arc;

use fiasco_model::{sys, Cpu, Trap};
use l4_sys::cap::CapIdx;
use l4_sys::exc::Arch;
use l4_sys::msgtag::{MsgTag, TagFlags};
use l4_sys::{ipc, Kernel, Timeout, TimeoutPair};
use rtcr_core::Supervisor;

use crate::{check_child_spaces, root_objects};
use crate::{model, spec, ModelEnv, CODE, DATA};

/// Decodes `data` as an image and as an A/B store; checks that whatever is
/// accepted is consistent.
pub fn image_decode(data: &[u8]) {
    let decoded = rtcr_image::decode(data);
    if let Ok((meta, cp)) = &decoded {
        // whatever decodes re-encodes to the same bytes (an older format
        // version to the same body: only the header's version and
        // checksums differ)
        let again = rtcr_image::encode(meta, cp).expect("a decoded image encodes");
        let version = rtcr_image::read_header(data).expect("a decoded image has a header").format_version;
        if version == rtcr_image::FORMAT_VERSION {
            assert_eq!(again, data, "decode/encode round trip");
        } else {
            assert_eq!(again[rtcr_image::HEADER_LEN..], data[rtcr_image::HEADER_LEN..], "decode/encode round trip");
        }
    }
    // the restore's decode, the page bytes borrowed, agrees with it
    if let Ok(h) = rtcr_image::read_header(data) {
        match rtcr_image::decode_borrowed_for(data, h.arch, h.page_shift) {
            Ok((meta, mut cp, bytes)) => {
                for (p, b) in cp.pages.iter_mut().zip(&bytes) {
                    p.data = b.to_vec();
                }
                assert_eq!(decoded, Ok((meta, cp)), "borrowed decode agrees with decode");
            }
            // (for an image wrong in two ways each may name another)
            Err(e) => assert!(decoded.is_err(), "only the borrowed decode refuses: {e}"),
        }
    }
    let _ = rtcr_image::verify(data);
    let _ = rtcr_image::read_header(data);
    let store = rtcr_image::Store::new(rtcr_image::MemRegion(data.to_vec()));
    let _ = store.status();
    if let Ok((_, img)) = store.latest() {
        rtcr_image::verify_prefix(&img).expect("latest() returns a verified image");
    }
}

/// Where the script lies in the child (a loaded page).
const SCRIPT: u64 = CODE + 0x3000;
/// Bytes per request.
const REQ: usize = 24;

/// A child that plays the script: request `i` is 24 bytes at SCRIPT + 24·i.
struct Player;
impl fiasco_model::Program for Player {
    fn step(&self, cpu: &mut Cpu<'_>) -> Result<(), Trap> {
        let i = cpu.r(0);
        if i as usize >= 4096 / REQ {
            let _ = sys!(cpu, ipc::sleep(cpu, Timeout::NEVER));
            return Ok(());
        }
        let base = SCRIPT + i * REQ as u64;
        let mut b = [0u8; REQ];
        for (k, x) in b.iter_mut().enumerate() {
            *x = cpu.load_u8(base + k as u64)?;
        }
        let slot = [1u64, 2, 3, 4, 5, 6, 7, 0x20, 0x21, 0x30][(b[0] % 10) as usize];
        let label = -((b[1] % 26) as i64) + if b[1] & 0x80 != 0 { 30 } else { 0 };
        let words = (b[2] % 8) as usize;
        let items = (b[3] % 3) as usize;
        let w = |k: usize| u64::from_le_bytes(b[4 + (k % 2) * 8..12 + (k % 2) * 8].try_into().unwrap_or([0; 8]));
        let ops = [0u64, 1, 2, 3, 4, 5, 6, 0x10, 0x11, 0x12, (-12i64) as u64, (-18i64) as u64, (-20i64) as u64];
        let mut op = ops[(b[20] as usize) % ops.len()];
        if label == -12 && op == 1 {
            op = 3; // not ex_regs on itself: that is suicide, not an attack
        }
        cpu.utcb().mr[0] = op;
        for k in 1..words {
            let v = w(k).rotate_left(k as u32 * 7);
            cpu.utcb().mr[k] = if b[21] & (1 << k) != 0 { (v % 0x40) << 12 } else { v };
        }
        for k in 0..items {
            let ctl = 8 | (b[22] as u64 & 0x23);
            let fp = if b[23] & 1 == 0 {
                l4_sys::Fpage::obj(
                    CapIdx((b[23] >> 1) as u64 % 0x40),
                    0,
                    l4_sys::CapRights::from_bits_truncate(b[22] as u64 >> 4),
                )
            } else {
                l4_sys::Fpage(w(k + 1))
            };
            cpu.utcb().mr[words + 2 * k] = ctl;
            cpu.utcb().mr[words + 2 * k + 1] = fp.0;
        }
        cpu.utcb().br[0] =
            if b[21] & 1 == 0 { l4_sys::item::rcv_single_cap(CapIdx(0x40 + (b[4] as u64 % 8))) } else { w(0) & !1 };
        let tag = MsgTag::new(label, words, items, TagFlags::empty());
        let _ = sys!(
            cpu,
            ipc::call(cpu, CapIdx(slot), tag, TimeoutPair::new(Timeout::from_us(100), Timeout::from_us(100)))
        );
        cpu.set_r(0, i + 1);
        Ok(())
    }
}

/// Runs the script `data` against rtcr on the model and checks the
/// invariants; returns how many requests reached rtcr.
pub fn dispatch(data: &[u8]) -> u64 {
    let mut m = model(Arch::Amd64, Arc::new(Player));
    let mut r = m.root();
    let mut env = ModelEnv(&mut r);
    let mut sp = spec("fuzz");
    let mut page = data.to_vec();
    page.resize(4096, 0);
    sp.load = vec![(CODE, vec![0x90; 3 * 4096], 5), (SCRIPT, page, 4)];
    sp.max_objects = 8;
    let mut sup = Supervisor::spawn(&mut env, sp).expect("spawn");
    let forbidden = root_objects(env.0.model());
    for _ in 0..8 {
        let out = sup.serve(&mut env, 64, Timeout::from_us(500)).expect("rtcr never fails on a child's request");
        if let Err(e) = check_child_spaces(env.0.model(), &sup, &forbidden) {
            panic!("{e}");
        }
        if let rtcr_core::supervisor::ServeOutcome::Crash { .. } = out {
            break;
        }
    }
    let _ = DATA;
    sup.served
}
