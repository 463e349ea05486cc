//! The diagnostics a configuration word turns on (a default boot runs none
//! of them): `report`, what rtcr finds about the kernel it runs on (the
//! foundation's self-report: initial capabilities, KIP version, features,
//! clock, memory descriptors, boot modules), and `selfcheck`, the image
//! format and rtcr-core's environment checked on this kernel.
//!
//! Each line starts with `rtcr:` so scripts can pick them out of the serial
//! log. They double as a check of l4-sys's encoders on the real kernel: log
//! write, task cap_valid, sigma0 requests, debugger naming, IPC sleep.

use core::fmt::Write;

use l4_sys::arch::CurrentThread;
use l4_sys::bootinfo::BootInfo;
use l4_sys::cap::{base, kind, Cap, CapIdx};
use l4_sys::fpage::{Fpage, MemRights};
use l4_sys::kip::Kip;
use l4_sys::{ipc, sigma0, task, Timeout};

use crate::boot::{say, Identity, ARCH};

/// `report`: the facts a developer checks first on a new kernel build.
pub fn report(k: &mut CurrentThread, kip_addr: u64, kip: &Kip<'_>, bi: &BootInfo<'_, Identity>) {
    let utcb = k.utcb_addr();
    say!(k, "rtcr: UTCB at {utcb:#x} ({ARCH})");
    // which initial capabilities exist (fact sheet §10 item 9)
    let mut line = Line::new();
    for i in 1..=11u64 {
        if let Ok(true) = task::cap_valid(k, Cap::new(base::TASK), CapIdx(i)) {
            let _ = write!(line, " {i}");
        }
    }
    say!(k, "rtcr: initial caps valid:{}", line.as_str());
    say!(k, "rtcr: KIP at {kip_addr:#x}, version {:#x}, {}", kip.version(), kip.version_string());
    let mut feats = Line::new();
    for f in kip.features() {
        let _ = write!(feats, " {f}");
    }
    say!(k, "rtcr: KIP features:{}", feats.as_str());
    say!(k, "rtcr: platform {}, explicit_reply_caps {}", kip.platform_name(), kip.has_feature("explicit_reply_caps"));
    // SAFETY: the KIP is mapped executable (sigma0 maps it RX) at `kip_addr`
    // and we run on the architecture it was built for.
    let t0 = unsafe { l4_sys::kip::clock_us(kip_addr as *const u8) };
    let _ = ipc::sleep(k, Timeout::from_us(10_000));
    // SAFETY: as above.
    let t1 = unsafe { l4_sys::kip::clock_us(kip_addr as *const u8) };
    say!(k, "rtcr: KIP clock {t0} us; a 10 ms IPC sleep took {} us", t1.saturating_sub(t0));
    for d in kip.mem_descs().filter(|d| d.ty != l4_sys::kip::MemType::Undefined) {
        say!(k, "rtcr: mem {:#014x}-{:#014x} {:?} sub {} virt {}", d.start, d.end, d.ty, d.sub_type, d.is_virtual);
    }
    for (i, m) in bi.modules().enumerate() {
        match m {
            Ok(m) => say!(k, "rtcr: module {i}: {:?} {:#x}+{:#x} '{}'", m.kind, m.start, m.len(), m.cmdline),
            Err(e) => say!(k, "rtcr: module {i}: unreadable: {e:?}"),
        }
    }
}

/// A fixed-size line buffer (no heap needed); text beyond 160 bytes is cut.
pub(crate) struct Line {
    buf: [u8; 160],
    len: usize,
}

impl Line {
    pub(crate) fn new() -> Self {
        Line { buf: [0; 160], len: 0 }
    }

    pub(crate) fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("?")
    }
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// `selfcheck`, first half: the image format and the A/B store, run on the
/// kernel rtcr boots on: a checkpoint of one page is written twice into a
/// store in heap memory, the newest one reads back equal, and a flipped byte
/// in it makes the store fall back to the older one with the reason.
pub fn image_self_check(k: &mut CurrentThread) {
    use alloc::vec;
    use rtcr_image::{Checkpoint, MemRegion, PageRecord, Store};
    let cp = |seq: u64| Checkpoint {
        child: "self-check".into(),
        clock_us: seq,
        utcb_area: (0xB300_0000, 12),
        objects: vec![],
        caps: vec![],
        threads: vec![],
        pages: vec![PageRecord { vaddr: 0x40_0000, rights: 6, data: vec![seq as u8; 4096] }],
        placement: vec![],
    };
    let images = (1..=2u64).map(|seq| rtcr_core::encode_image(crate::env::ARCH, seq, &cp(seq)));
    let mut store = Store::new(MemRegion::zeroed(32 << 10));
    for img in images {
        match img.map_err(|e| alloc::format!("{e}")).and_then(|b| store.write(&b).map_err(|e| alloc::format!("{e}"))) {
            Ok(slot) => say!(k, "rtcr: image self-check: wrote slot {slot:?}"),
            Err(e) => {
                say!(k, "rtcr: image self-check FAILED: {e}");
                return;
            }
        }
    }
    let newest = store.latest().map(|(slot, b)| (slot, rtcr_image::decode(&b).map(|(m, c)| (m.sequence, c))));
    let ok_newest = matches!(&newest, Ok((_, Ok((2, c))))  if *c == cp(2));
    // flip one byte of the newest slot's body: the store must use the older one
    let (slot, _) = match store.latest() {
        Ok(x) => x,
        Err(e) => {
            say!(k, "rtcr: image self-check FAILED: {e}");
            return;
        }
    };
    let offset = store.slot_offset(slot) + 100;
    let mut region = store.into_inner();
    region.0[offset] ^= 0x40;
    let store = Store::new(region);
    let older = store.latest().map(|(_, b)| rtcr_image::decode(&b).map(|(m, _)| m.sequence));
    let ok_fallback = matches!(older, Ok(Ok(1)));
    say!(
        k,
        "rtcr: image self-check on this kernel: newest reads back equal: {ok_newest}; after a flipped byte the store \
         falls back to sequence 1: {ok_fallback}; heap free {} KiB",
        crate::heap::free() / 1024
    );
}

/// A page of rtcr's own for the Env self-check (no RAM or device there).
const ENV_TEST_VA: u64 = 0x31_0000_0000;

/// `selfcheck`, second half: rtcr-core's environment on this kernel, checked
/// piece by piece: rtcr's memory through the window check, the FPU
/// save/load pair, and the entry-stamp counter against the KIP clock over a
/// 200 ms sleep. Gives the thread back with the counter's rate as measured
/// (Hz), if it could be measured.
pub fn env_self_check(k: CurrentThread, kip_addr: u64, nominal_hz: u64) -> (CurrentThread, Option<u64>) {
    let mut env = crate::env::KernelEnv::new(k, kip_addr, nominal_hz, alloc::vec![(ENV_TEST_VA, ENV_TEST_VA + 4096)]);
    let measured = env_checks(&mut env);
    (env.into_thread(), measured)
}

fn env_checks(env: &mut crate::env::KernelEnv) -> Option<u64> {
    use rtcr_core::Env;
    let window = Fpage::mem(ENV_TEST_VA, 12, MemRights::empty());
    if let Err(e) = sigma0::map_any(env, Cap::<kind::Sigma0>::new(base::PAGER), 12, window) {
        say!(env, "rtcr: env self-check: no page from sigma0: {e}");
        return None;
    }
    let pattern: alloc::vec::Vec<u8> = (0..4096u32).map(|i| (i * 7 + 3) as u8).collect();
    let mut back = alloc::vec![0u8; 4096];
    let memory_ok =
        env.write_mem(ENV_TEST_VA, &pattern).is_ok() && env.read_mem(ENV_TEST_VA, &mut back).is_ok() && back == pattern;
    let stray_refused =
        env.read_mem(ENV_TEST_VA + 4000, &mut back[..200]).is_err() && env.write_mem(0x1000, &pattern[..8]).is_err();
    crate::probe::own_fpu_reg(Some(0x1111_2222_3333_4444));
    let state = env.fpu_save();
    crate::probe::own_fpu_reg(Some(0x5555));
    env.fpu_load(&state);
    let fpu_ok = crate::probe::own_fpu_reg(None) == 0x1111_2222_3333_4444 && state.len() == crate::env::FPU_BYTES;
    let (t0, s0) = (env.clock_us(), env.stamp_now());
    let _ = ipc::sleep(env, Timeout::from_us(200_000));
    let (t1, s1) = (env.clock_us(), env.stamp_now());
    let hz = env.stamp_hz().max(1);
    let stamp_us = (s1.saturating_sub(s0) as u128 * 1_000_000 / hz as u128) as u64;
    let permille = stamp_us * 1000 / t1.saturating_sub(t0).max(1);
    say!(
        env,
        "rtcr: env self-check: memory round trip {memory_ok}, stray addresses refused {stray_refused}, FPU save/load \
         ({} bytes) {fpu_ok}, stamp counter vs KIP clock over a 200 ms sleep: {permille} per mille",
        state.len()
    );
    let elapsed_us = t1.saturating_sub(t0);
    (elapsed_us >= 100_000).then(|| (s1.saturating_sub(s0) as u128 * 1_000_000 / elapsed_us as u128) as u64)
}
