//! rtcr-core's environment on the real kernel: the kernel seam (this
//! thread), rtcr's own memory, the KIP clock, the entry-stamp counter and
//! the FPU registers. The model's counterpart is `rtcr_sim::ModelEnv`.
//!
//! rtcr-core names rtcr's memory by address (the frames it maps for a
//! child's pages, exchange pages, the shadow). A root task's page fault is
//! answered by sigma0, which would map whatever RAM lies at a stray
//! address, so every access is checked against the windows rtcr-core was
//! given before a pointer is made.

use alloc::vec::Vec;

use l4_sys::arch::CurrentThread;
use l4_sys::exc::Arch;
use l4_sys::utcb::Utcb;
use l4_sys::{Invocation, Kernel, Outcome};
use rtcr_core::{Env, Error};

/// The architecture rtcr is built for.
#[cfg(target_arch = "x86_64")]
pub const ARCH: Arch = Arch::Amd64;
#[cfg(target_arch = "aarch64")]
pub const ARCH: Arch = Arch::Arm64;

/// Size of the saved FPU state: FXSAVE's 512 bytes on amd64; q0–q31 plus
/// FPSR and FPCR on arm64.
#[cfg(target_arch = "x86_64")]
pub const FPU_BYTES: usize = 512;
#[cfg(target_arch = "aarch64")]
pub const FPU_BYTES: usize = 32 * 16 + 16;

/// The 16 `stp`/`ldp` instructions that move q0–q31 to or from `[{p}]`.
#[cfg(target_arch = "aarch64")]
macro_rules! q_pairs {
    ($op:literal) => {
        concat!(
            $op,
            " q0, q1, [{p}, #0]\n",
            $op,
            " q2, q3, [{p}, #32]\n",
            $op,
            " q4, q5, [{p}, #64]\n",
            $op,
            " q6, q7, [{p}, #96]\n",
            $op,
            " q8, q9, [{p}, #128]\n",
            $op,
            " q10, q11, [{p}, #160]\n",
            $op,
            " q12, q13, [{p}, #192]\n",
            $op,
            " q14, q15, [{p}, #224]\n",
            $op,
            " q16, q17, [{p}, #256]\n",
            $op,
            " q18, q19, [{p}, #288]\n",
            $op,
            " q20, q21, [{p}, #320]\n",
            $op,
            " q22, q23, [{p}, #352]\n",
            $op,
            " q24, q25, [{p}, #384]\n",
            $op,
            " q26, q27, [{p}, #416]\n",
            $op,
            " q28, q29, [{p}, #448]\n",
            $op,
            " q30, q31, [{p}, #480]"
        )
    };
}

#[repr(C, align(64))]
struct FpuArea([u8; FPU_BYTES]);

/// The stamp counter's nominal frequency: CNTFRQ_EL0 on arm64; on amd64
/// the TSC runs at the CPU frequency the KIP reports (kHz).
pub fn nominal_stamp_hz(kip: u64) -> u64 {
    #[cfg(target_arch = "aarch64")]
    {
        let _ = kip;
        l4_sys::arch::stamp_hz()
    }
    #[cfg(target_arch = "x86_64")]
    {
        l4_sys::kip::Kip::parse(crate::boot::kip_page(kip)).map(|k| k.frequency_cpu() * 1000).unwrap_or(0)
    }
}

/// When the stamp counter's rate is measured against the KIP clock, in
/// kernel time since the reference point: first after 200 ms (the x86 KIP
/// clock moves in whole milliseconds, so that gives the rate to 0.5 %, well
/// inside the 2 % `stamp_hz_in_kernel_time` tolerates), then once more over
/// 5 s for a finer figure. The reference point is taken once the child runs,
/// not at rtcr's start: under QEMU TCG the KIP clock fell behind the counter
/// by a third while rtcr booted (first boots of this code: 3.49 GHz measured
/// from rtcr's start over 393 ms, 2.92 GHz over 5 s, as the 200 ms sleep of
/// the old boot self-check had measured).
const CALIBRATE_AT_US: [u64; 2] = [200_000, 5_000_000];

/// The stamp counter measured against the KIP clock while rtcr runs.
struct Calibration {
    nominal: u64,
    /// The reference point: KIP clock (µs) and counter; taken at the first
    /// [`KernelEnv::calibrate_stamp`].
    since: Option<(u64, u64)>,
    /// Measurements taken (an index into [`CALIBRATE_AT_US`]).
    done: usize,
}

/// rtcr-core's `Env` on the kernel.
pub struct KernelEnv {
    k: CurrentThread,
    kip: u64,
    stamp_hz: u64,
    /// The address ranges (start, end) of rtcr's own memory rtcr-core may use.
    windows: Vec<(u64, u64)>,
    /// The counter's rate, measured while rtcr serves.
    calibration: Option<Calibration>,
}

impl KernelEnv {
    /// `kip`: where sigma0 mapped the KIP; `stamp_hz`: the entry-stamp
    /// counter's frequency; `windows`: the memory rtcr-core may read and
    /// write (mapped before use).
    pub fn new(k: CurrentThread, kip: u64, stamp_hz: u64, windows: Vec<(u64, u64)>) -> Self {
        KernelEnv { k, kip, stamp_hz, windows, calibration: None }
    }

    /// `ticks` of the stamp counter in ns, at the rate rtcr-core uses (the
    /// benchmark's figures).
    pub fn ticks_ns(&self, ticks: u64) -> u64 {
        (u128::from(ticks) * 1_000_000_000 / u128::from(self.stamp_hz().max(1))) as u64
    }

    /// Measures the stamp counter against the KIP clock while rtcr serves:
    /// [`Self::calibrate_stamp`] then sets the rate rtcr-core uses (until
    /// then the one given to [`Self::new`]). No sleep: the time the child
    /// runs anyway is the measurement. `nominal`: the counter's nominal rate.
    pub fn calibrate(&mut self, nominal: u64) {
        self.calibration = Some(Calibration { nominal, since: None, done: 0 });
    }

    /// Called now and then while rtcr serves (the first call takes the
    /// reference point): each time enough kernel time has passed since the
    /// reference point ([`CALIBRATE_AT_US`]), the
    /// counter's rate in kernel time
    /// (`rtcr_core::checkpoint::stamp_hz_in_kernel_time`) becomes the one
    /// rtcr-core uses; a change is logged.
    pub fn calibrate_stamp(&mut self) {
        if self.calibration.is_none() {
            return;
        }
        let (t1, s1) = (self.clock_us(), l4_sys::arch::stamp_now());
        let Some(c) = &mut self.calibration else { return };
        let Some((t0, s0)) = c.since else {
            c.since = Some((t1, s1));
            return;
        };
        let elapsed_us = t1.saturating_sub(t0);
        if elapsed_us < CALIBRATE_AT_US[c.done] {
            return;
        }
        let nominal = c.nominal;
        c.done += 1;
        if c.done == CALIBRATE_AT_US.len() {
            self.calibration = None;
        }
        let measured = (u128::from(s1.saturating_sub(s0)) * 1_000_000 / u128::from(elapsed_us)) as u64;
        let hz = rtcr_core::checkpoint::stamp_hz_in_kernel_time(nominal, Some(measured));
        if hz != self.stamp_hz {
            self.stamp_hz = hz;
            crate::logger::log!(
                self,
                "rtcr: stamp counter against the KIP clock over {=u64} ms: {=u64} Hz (nominal {=u64} Hz), used from now on",
                elapsed_us / 1000,
                hz,
                nominal
            );
        }
    }

    /// Gives the thread back (the Env is done).
    pub fn into_thread(self) -> CurrentThread {
        self.k
    }

    fn check(&self, addr: u64, len: usize) -> Result<(), Error> {
        let end = addr.checked_add(len as u64).ok_or(Error::Memory(addr))?;
        if self.windows.iter().any(|&(s, e)| addr >= s && end <= e) {
            Ok(())
        } else {
            Err(Error::Memory(addr))
        }
    }
}

impl Kernel for KernelEnv {
    fn utcb(&mut self) -> &mut Utcb {
        self.k.utcb()
    }
    fn invoke(&mut self, inv: Invocation) -> Outcome {
        self.k.invoke(inv)
    }
}

impl Env for KernelEnv {
    fn arch(&self) -> Arch {
        ARCH
    }

    fn read_mem(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), Error> {
        self.check(addr, buf.len())?;
        // SAFETY: [addr, addr + len) lies in a window of rtcr's own memory
        // that is mapped (the windows' contract) and that no Rust reference
        // covers (rtcr-core reaches it only through this Env).
        unsafe { core::ptr::copy_nonoverlapping(addr as *const u8, buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    fn write_mem(&mut self, addr: u64, data: &[u8]) -> Result<(), Error> {
        self.check(addr, data.len())?;
        // SAFETY: as in `read_mem`.
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), addr as *mut u8, data.len()) };
        Ok(())
    }

    fn zero_mem(&mut self, addr: u64, len: usize) -> Result<(), Error> {
        self.check(addr, len)?;
        // SAFETY: as in `read_mem`.
        unsafe { core::ptr::write_bytes(addr as *mut u8, 0, len) };
        Ok(())
    }

    fn clock_us(&mut self) -> u64 {
        // SAFETY: `kip` is where sigma0 mapped the KIP (read + execute) at
        // boot; it stays mapped for rtcr's lifetime.
        unsafe { l4_sys::kip::clock_us(self.kip as *const u8) }
    }

    fn stamp_now(&mut self) -> u64 {
        l4_sys::arch::stamp_now()
    }

    fn stamp_hz(&self) -> u64 {
        self.stamp_hz
    }

    fn fpu_save(&mut self) -> Vec<u8> {
        let mut area = FpuArea([0; FPU_BYTES]);
        let p = area.0.as_mut_ptr();
        // SAFETY: `p` points to FPU_BYTES writable bytes, 64-byte aligned
        // (FXSAVE needs 16); the instructions only store there.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            core::arch::asm!("fxsave64 [{p}]", p = in(reg) p, options(nostack));
        }
        // SAFETY: as above (32 q registers, then FPSR and FPCR).
        #[cfg(target_arch = "aarch64")]
        unsafe {
            core::arch::asm!(
                q_pairs!("stp"),
                "mrs {t}, fpsr", "str {t}, [{p}, #512]", "mrs {t}, fpcr", "str {t}, [{p}, #520]",
                p = in(reg) p, t = out(reg) _, options(nostack),
            );
        }
        area.0.to_vec()
    }

    fn fpu_load(&mut self, state: &[u8]) {
        if state.len() != FPU_BYTES {
            // not a state this architecture saved: leave the registers
            return;
        }
        let mut area = FpuArea([0; FPU_BYTES]);
        area.0.copy_from_slice(state);
        let p = area.0.as_ptr();
        // SAFETY: `p` points to FPU_BYTES readable bytes, 64-byte aligned,
        // holding a state `fpu_save` produced on this architecture (checked
        // by length; FXRSTOR faults on reserved MXCSR bits, which a saved
        // state does not have).
        #[cfg(target_arch = "x86_64")]
        unsafe {
            core::arch::asm!("fxrstor64 [{p}]", p = in(reg) p, options(nostack));
        }
        // SAFETY: as above.
        #[cfg(target_arch = "aarch64")]
        unsafe {
            core::arch::asm!(
                q_pairs!("ldp"),
                "ldr {t}, [{p}, #512]", "msr fpsr, {t}", "ldr {t}, [{p}, #520]", "msr fpcr, {t}",
                p = in(reg) p, t = out(reg) _, options(nostack),
            );
        }
    }
}
