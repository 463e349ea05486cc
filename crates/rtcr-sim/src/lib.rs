//! rtcr on the kernel model: the environment adapter ([`ModelEnv`]), the
//! trampoline as a model program at the address rtcr maps it to
//! ([`Trampoline`]), the scenario child ([`child`]) and its layout
//! ([`spec`]). The end-to-end tests (`tests/` of the rtcr package) and
//! `rtcrctl simulate` are built on it.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use fiasco_model::{Config, Cpu, HostThread, Model, Program, Trap};
use l4_sys::exc::Arch;
use l4_sys::utcb::Utcb;
use l4_sys::{Invocation, Kernel, Outcome};
use rtcr_core::checkpoint::trampoline;
use rtcr_core::{ChildSpec, Env, Error, Region};
use std::sync::Arc;

pub mod child;
pub mod foreign;
pub mod fuzz;
pub mod simulate;
pub mod smp;

/// The child's code (programs are registered here).
pub const CODE: u64 = 0x40_0000;
/// The child's data.
pub const DATA: u64 = 0x50_0000;
/// Top of the main thread's stack.
pub const STACK_TOP: u64 = 0x60_0000;
/// Where rtcr maps its trampoline in the child.
pub const TRAMP: u64 = 0x7f00_0000;
/// Where rtcr maps the exchange pages in the child.
pub const SHARED: u64 = 0x7e00_0000;

/// rtcr-core's environment on a model host thread.
pub struct ModelEnv<'a, 'm>(pub &'a mut HostThread<'m>);

impl Kernel for ModelEnv<'_, '_> {
    fn utcb(&mut self) -> &mut Utcb {
        self.0.utcb()
    }
    fn invoke(&mut self, inv: Invocation) -> Outcome {
        self.0.invoke(inv)
    }
}

impl Env for ModelEnv<'_, '_> {
    fn arch(&self) -> Arch {
        // the host thread borrows the model mutably; the arch is fixed per model
        ARCH.with(|a| *a.borrow())
    }
    fn read_mem(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), Error> {
        self.0.read(addr, buf).map_err(|f| Error::Memory(f.addr))
    }
    fn write_mem(&mut self, addr: u64, data: &[u8]) -> Result<(), Error> {
        self.0.write(addr, data).map_err(|f| Error::Memory(f.addr))
    }
    fn clock_us(&mut self) -> u64 {
        self.0.model().clock_us()
    }
    fn stamp_now(&mut self) -> u64 {
        self.0.model().counter()
    }
    fn stamp_hz(&self) -> u64 {
        fiasco_model::COUNTER_HZ
    }
    fn fpu_save(&mut self) -> Vec<u8> {
        self.0.fpu().iter().flat_map(|w| w.to_le_bytes()).collect()
    }
    fn fpu_load(&mut self, state: &[u8]) {
        let words: Vec<u64> = state.chunks(8).map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect();
        self.0.set_fpu(&words);
    }
}

thread_local! {
    static ARCH: std::cell::RefCell<Arch> = const { std::cell::RefCell::new(Arch::Amd64) };
}

/// The trampoline, as the model runs it: copies the UTCB out to / in from
/// the exchange page named in rsi/x1 (operation in rdi/x0), then traps.
pub struct Trampoline;
impl Program for Trampoline {
    fn step(&self, cpu: &mut Cpu<'_>) -> Result<(), Trap> {
        let (op_r, page_r, bp) = match cpu.arch() {
            Arch::Amd64 => (l4_sys::exc::amd64::mr::RDI, l4_sys::exc::amd64::mr::RSI, trampoline::TRAP_BP),
            Arch::Arm64 => (l4_sys::exc::arm64::mr::X0, l4_sys::exc::arm64::mr::X0 + 1, trampoline::EC_BRK),
        };
        let (op, page) = (cpu.reg(op_r), cpu.reg(page_r));
        if op == trampoline::OP_SAVE {
            let words = cpu.utcb().to_words();
            for (i, w) in words.iter().enumerate() {
                cpu.store_u64(page + 8 * i as u64, *w)?;
            }
        } else if op == trampoline::OP_LOAD {
            let mut words = [0u64; 128];
            for (i, w) in words.iter_mut().enumerate() {
                *w = cpu.load_u64(page + 8 * i as u64)?;
            }
            *cpu.utcb() = Utcb::from_words(&words);
        }
        Err(Trap::Exception(bp))
    }
    fn name(&self) -> &str {
        "trampoline"
    }
}

/// rtcr's call stub (`rtcr_core::calls`) as a model program: the kernel
/// call from the ABI registers (a bare entry), then a breakpoint.
struct CallStub;
impl Program for CallStub {
    fn step(&self, cpu: &mut Cpu<'_>) -> Result<(), Trap> {
        use l4_sys::exc::{amd64, arm64};
        let (tag, label, dest, timeout, bp) = match cpu.arch() {
            Arch::Amd64 => (amd64::mr::RAX, amd64::mr::RSI, amd64::mr::RDX, amd64::mr::R8, amd64::TRAP_BP),
            Arch::Arm64 => (arm64::mr::X0, arm64::mr::X0 + 1, arm64::mr::X0 + 2, arm64::mr::X0 + 3, 0x3C),
        };
        let inv = l4_sys::Invocation {
            dest: cpu.reg(dest),
            tag: l4_sys::MsgTag(cpu.reg(tag)),
            label: cpu.reg(label),
            timeout: l4_sys::TimeoutPair::from_raw(cpu.reg(timeout)),
        };
        let _ = fiasco_model::sys!(cpu, cpu.call_on_behalf(inv));
        Err(Trap::Exception(bp))
    }
    fn name(&self) -> &str {
        "call stub"
    }
}

/// A model of `arch` with the trampoline registered (and the
/// architecture noted for [`ModelEnv::arch`]).
fn model_with_trampoline(arch: Arch) -> Model {
    model_with_trampoline_on(arch, 1, 0, 0)
}

/// As [`model_with_trampoline`], with `cpus` CPUs interleaved by `seed`,
/// the other CPUs taking up to `burst` steps before each of rtcr's kernel
/// calls ([`Config::smp_burst`]).
pub fn model_with_trampoline_on(arch: Arch, cpus: u32, seed: u64, burst: u32) -> Model {
    ARCH.with(|a| *a.borrow_mut() = arch);
    let cfg = match arch {
        Arch::Amd64 => Config::amd64(),
        Arch::Arm64 => Config::arm64(),
    };
    let mut m = Model::new(Config { trace: false, cpus, seed, smp_burst: burst, ..cfg });
    m.register_program(TRAMP, Arc::new(Trampoline));
    m.register_program(TRAMP + rtcr_core::calls::STUB_OFFSET, Arc::new(CallStub));
    m
}

/// A model with the trampoline and the scenario child registered.
pub fn scenario_model(arch: Arch) -> Model {
    let mut m = model_with_trampoline(arch);
    child::register(&mut m);
    m
}

/// A model of `cpus` CPUs (interleaved by `seed`; the others take up to
/// `burst` steps while rtcr's code runs between two of its kernel calls)
/// with the trampoline and the four-CPU child ([`smp`]) registered.
pub fn smp_model(arch: Arch, cpus: u32, seed: u64, burst: u32) -> Model {
    let mut m = model_with_trampoline_on(arch, cpus, seed, burst);
    smp::register(&mut m);
    m
}

/// A model with the trampoline and the foreign-entry child ([`foreign`])
/// registered.
pub fn foreign_model(arch: Arch) -> Model {
    let mut m = model_with_trampoline(arch);
    foreign::register(&mut m);
    m
}

/// The foreign-entry child's layout: the scenario's, with code whose
/// kernel entries are bare instructions.
pub fn foreign_spec(name: &str) -> ChildSpec {
    let mut s = spec(name);
    s.load = vec![(CODE, foreign::code_pages(ARCH.with(|a| *a.borrow()), 3), 5)];
    s
}

/// A model with the trampoline and `child` registered.
pub fn model(arch: Arch, child: Arc<dyn Program>) -> Model {
    let mut m = model_with_trampoline(arch);
    m.register_program(CODE, child);
    m
}

/// `pages` pages of model code for `arch`: the model places each state of
/// a program in 32 bytes with its kernel entry at offset 8 (fiasco-model's
/// `RESTART_POINT`), so each 32-byte block holds l4-sys's restartable
/// entry there, the bytes rtcr-core looks for before a stopped thread's IP.
pub fn code_pages(arch: Arch, pages: usize) -> Vec<u8> {
    let seq = arch.restart_sequence();
    let mut code = vec![0x90; pages * 4096];
    for block in code.chunks_mut(32) {
        block[8..8 + seq.len()].copy_from_slice(seq);
    }
    code
}

/// The scenario child's layout (its code for the architecture of the model
/// made last on this thread).
pub fn spec(name: &str) -> ChildSpec {
    ChildSpec {
        name: name.to_string(),
        entry: CODE,
        stack_top: STACK_TOP,
        prio: 10,
        utcb_area: (0xB300_0000, 14),
        load: vec![(CODE, code_pages(ARCH.with(|a| *a.borrow()), 4), 5)],
        regions: vec![
            Region { start: DATA, len: 0x8_0000, rights: 6 },
            Region { start: STACK_TOP - 0x1_0000, len: 0x1_0000, rights: 6 },
        ],
        trampoline: TRAMP,
        trampoline_code: Vec::new(),
        shared: SHARED,
        rtcr_mem: 0x1_0000_0000,
        rtcr_slots: 0x100,
        child_slots: 0x200,
        max_threads: 8,
        max_objects: 64,
        max_pages: 512,
        sigma0_range: (0x8000_0000, 0x100_0000),
        l4re: None,
        server_thread: 3,
        fast_path: None,
        settle_us: rtcr_core::checkpoint::SETTLE_US,
    }
}

/// The root's own kernel objects, which no child may ever hold: rtcr's
/// task and thread, the kernel factory, scheduler, ICU, log and debugger,
/// and the gate to sigma0.
pub fn root_objects(m: &Model) -> Vec<fiasco_model::ObjId> {
    let b = m.boot_objects();
    vec![b.root_task, b.root_thread, b.factory, b.scheduler, b.icu, b.log, b.debugger, b.sigma0_gate]
}

/// Walks the spaces of the child `sup` serves: every capability names an
/// object rtcr holds for it and none of `forbidden`, and every page is a
/// frame rtcr gave it (or the public KIP). Says what it found otherwise.
pub fn check_child_spaces(
    m: &Model,
    sup: &rtcr_core::Supervisor,
    forbidden: &[fiasco_model::ObjId],
) -> Result<(), String> {
    let root = m.boot_objects().root_task;
    let child = m.object_at(root, sup.child_task().idx().0).ok_or("the child task is gone")?;
    let held: Vec<_> = sup.held_slots().iter().filter_map(|s| m.object_at(root, s.0)).collect();
    for row in m.cap_table(child) {
        if forbidden.contains(&row.obj) {
            return Err(format!("the child holds rtcr's own {:?} in slot {:#x}", row.kind, row.idx));
        }
        if !held.contains(&row.obj) {
            return Err(format!("slot {:#x} holds an object rtcr does not hold for it", row.idx));
        }
    }
    let given: Vec<u64> = sup.frames_given().iter().filter_map(|va| m.phys_of(root, *va)).collect();
    for (va, pa) in m.page_frames(child) {
        if !given.contains(&pa) && pa != m.kip_phys() {
            return Err(format!("child page {va:#x} is frame {pa:#x}, not one rtcr gave"));
        }
    }
    Ok(())
}

/// A child that dirties a chosen number of pages on command: whenever the
/// round number at DATA + 8 changes, it writes it into pages 1..=k after
/// DATA (k at DATA), then sleeps in 100 µs steps. Used to measure and check
/// incremental checkpoints. One page per step: a write that faults re-runs
/// only its own step, not the writes before it (k faults cost k steps, not
/// k² stores).
pub struct PageWriter;

impl Program for PageWriter {
    fn step(&self, cpu: &mut Cpu<'_>) -> Result<(), Trap> {
        match cpu.state() {
            0 => {
                let round = cpu.load_u64(DATA + 8)?;
                if round != cpu.r(0) {
                    cpu.set_r(1, 1);
                    cpu.goto(2);
                } else {
                    cpu.goto(1);
                }
            }
            1 => {
                let _ = fiasco_model::sys!(cpu, l4_sys::ipc::sleep(cpu, l4_sys::Timeout::from_us(100)));
                cpu.goto(0);
            }
            _ => {
                // r(1): the next page to write
                let (round, k, i) = (cpu.load_u64(DATA + 8)?, cpu.load_u64(DATA)?, cpu.r(1));
                if i <= k {
                    cpu.store_u64(DATA + 0x1000 * i, round)?;
                    cpu.set_r(1, i + 1);
                } else {
                    cpu.set_r(0, round);
                    cpu.goto(0);
                }
            }
        }
        Ok(())
    }
}

/// The model object of the task of the child `sup` serves (through rtcr's
/// slot for it). Panics if the child is gone: a harness for tests.
pub fn child_obj(m: &Model, sup: &rtcr_core::Supervisor) -> fiasco_model::ObjId {
    m.object_at(m.boot_objects().root_task, sup.child_task().idx().0).expect("the child task exists")
}

/// The 64-bit word at `addr` in the memory of the child `sup` serves.
pub fn child_u64(m: &Model, sup: &rtcr_core::Supervisor, addr: u64) -> u64 {
    let bytes = m.peek(child_obj(m, sup), addr, 8).expect("the child's page is mapped");
    u64::from_le_bytes(bytes.try_into().expect("8 bytes"))
}
