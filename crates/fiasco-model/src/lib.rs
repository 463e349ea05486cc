//! An executable, deterministic model of the Fiasco.OC kernel, behind the
//! same seam as the real kernel ([`l4_sys::Kernel`]).
//!
//! Why: rtcr's checkpoint/restore logic must be tested on every commit, on
//! machines without a kernel, and every test must be repeatable step for
//! step. The model decodes the very same UTCB words the kernel decodes, so
//! code above the seam — rtcr-core, and the child programs of the tests —
//! runs unchanged on it.
//!
//! # How it runs
//!
//! One model thread runs at a time, chosen by fixed priority (round robin
//! within a priority), as the kernel's scheduler would. With several CPUs
//! ([`Config::cpus`]), each CPU has its own highest-priority ready thread
//! and the CPUs take turns step by step in an order drawn from
//! [`Config::seed`], so threads on different CPUs interleave; each seed
//! is another interleaving, each repeatable. Two kinds of threads:
//!
//! * **Program threads** run a [`Program`]: a step function over the
//!   thread's register file and its task's memory (see [`cpu`]). All state
//!   a program keeps lives where it lives on a real CPU — registers, memory,
//!   the UTCB — never in host variables, so a restored thread continues
//!   exactly from the registers and memory it is given.
//! * **Host threads** are driven by host code through [`HostThread`] (which
//!   implements [`l4_sys::Kernel`]): the root task (rtcr) in a test. When a
//!   host thread's kernel call blocks, the model runs the other threads until
//!   the call completes. A host thread is on a CPU too (CPU 0 until it
//!   moves itself): before each of its kernel calls the other CPUs take a
//!   few steps, as they run on beside it on a real machine.
//!
//! The clock advances by a fixed cost per program step and jumps to the next
//! timeout when every thread is blocked, so time is deterministic too.
//! [`Model::set_step_limit`] stops the whole system after any step: fault
//! injection ("the child dies here", "power is lost here").
//!
//! # Fidelity
//!
//! See [`fidelity`] for the list of kernel behaviours the model implements,
//! each with the kernel source file that defines it, what was checked on a
//! real kernel, and what the model deliberately leaves out.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cpu;
pub mod dump;
pub mod fidelity;
pub mod host;
mod ipc;
mod kobj;
mod mapdb;
mod mem;
mod objects;
mod pagetable;
mod physmem;
mod sched;
mod sigma0;

pub use cpu::{Cpu, Fault, Program, Trap};
pub use dump::{CapRow, TraceEntry};
pub use host::HostThread;
pub use l4_sys::exc::Arch;
pub use objects::{ObjId, ObjKindName};

use std::collections::BTreeMap;
use std::sync::Arc;

use mapdb::MapDb;

/// Model configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Which architecture's ABI (register layouts, UTCB address, fault bits).
    pub arch: Arch,
    /// Physical RAM: base and size in bytes (page aligned).
    pub ram: (u64, u64),
    /// Clock cost of one program step, in µs.
    pub step_cost_us: u64,
    /// Default time slice, in steps.
    pub quantum_steps: u32,
    /// Number of hardware IRQ lines the ICU offers.
    pub icu_lines: u32,
    /// Echo log output to stderr as it is written.
    pub echo_log: bool,
    /// Record a trace of every kernel entry.
    pub trace: bool,
    /// Number of CPUs (1..=64; CPU 0 is the boot CPU). Each runs its own
    /// highest-priority ready thread; see [`sched`](crate#several-cpus).
    pub cpus: u32,
    /// Seed of the interleaving of the CPUs (unused with one CPU).
    pub seed: u64,
    /// At most this many program steps the other CPUs take before each
    /// kernel call of a host thread (the number is drawn from the seed):
    /// they run on while host code runs on its CPU.
    pub smp_burst: u32,
}

impl Config {
    /// A QEMU-like x86_64 machine: 512 MiB RAM from 0.
    pub fn amd64() -> Self {
        Config {
            arch: Arch::Amd64,
            ram: (0, 512 << 20),
            step_cost_us: 1,
            quantum_steps: 100,
            icu_lines: 24,
            echo_log: false,
            trace: true,
            cpus: 1,
            seed: 0,
            smp_burst: 4,
        }
    }
    /// A QEMU-virt-like arm64 machine: 1 GiB RAM from 0x4000_0000.
    pub fn arm64() -> Self {
        Config { arch: Arch::Arm64, ram: (0x4000_0000, 1 << 30), ..Self::amd64() }
    }
}

/// Where a program thread starts and with what: used by tests that set up
/// children directly on the model (rtcr sets them up through the ABI).
pub type ProgramRef = Arc<dyn Program>;

/// Frequency of the model's user-readable counter ([`Model::counter`]): not
/// 1 MHz on purpose, so a tick/µs mix-up shows in tests (arm64 QEMU `virt`
/// runs its counter at 62.5 MHz).
pub const COUNTER_HZ: u64 = 25_000_000;

/// The kernel.
pub struct Model {
    pub(crate) cfg: Config,
    pub(crate) objs: objects::ObjTable,
    pub(crate) next_obj: u32,
    pub(crate) next_debug_id: u64,
    pub(crate) ram: physmem::PhysMem,
    pub(crate) mapdb: MapDb,
    pub(crate) clock_us: u64,
    pub(crate) steps: u64,
    pub(crate) step_limit: Option<u64>,
    pub(crate) halted: bool,
    pub(crate) seq: u64,
    /// Per CPU: the thread whose time slice runs, and what is left of it.
    pub(crate) slices: Vec<(Option<ObjId>, u32)>,
    /// Per CPU: time it had no ready thread, µs.
    pub(crate) idle_us: Vec<u64>,
    /// The interleaving's generator state (splitmix64).
    pub(crate) rng: u64,
    pub(crate) trace: Vec<TraceEntry>,
    pub(crate) icu_lines: Vec<Option<ObjId>>,
    pub(crate) boot: Boot,
    pub(crate) programs: BTreeMap<u64, ProgramRef>,
    pub(crate) kip_frame: u64,
    /// sigma0's bookkeeping: which RAM frames it gave away, to whom (label).
    pub(crate) s0_owned: pagetable::Radix<u64>,
    /// Per block order: the last block "any RAM" handed out. sigma0 never
    /// takes RAM back, so no block of that order above it is free: the next
    /// search starts below it (the same block as a search from the top,
    /// without walking every frame given away so far).
    pub(crate) s0_any_last: [Option<u64>; 31],
    /// Fault injection: a thread of this task dies at its task's n-th next
    /// kernel entry.
    pub(crate) crash_at_entry: Option<(ObjId, u64)>,
    /// Kernel entries so far (all threads, host threads included).
    pub(crate) entries: u64,
    /// Fault injection: the system stops at this kernel entry.
    pub(crate) halt_at_entry: Option<u64>,
}

/// The objects the model creates at boot, like the kernel's initial workload.
#[derive(Clone, Copy, Debug, Default)]
pub struct Boot {
    /// sigma0's task.
    pub sigma0_task: ObjId,
    /// sigma0's thread (served natively by the model).
    pub sigma0_thread: ObjId,
    /// The root task.
    pub root_task: ObjId,
    /// The root task's first thread (a host thread).
    pub root_thread: ObjId,
    /// The root factory.
    pub factory: ObjId,
    /// The scheduler.
    pub scheduler: ObjId,
    /// The ICU.
    pub icu: ObjId,
    /// The kernel log.
    pub log: ObjId,
    /// The debugger.
    pub debugger: ObjId,
    /// The gate from the root task to sigma0 (root's pager, slot 4).
    pub sigma0_gate: ObjId,
}

impl Model {
    /// Boots a model kernel: creates sigma0 and the root task with the
    /// initial capabilities a real root task gets (slots 1–7 and 10), its
    /// first thread bound to its UTCB and ready to be driven as a host thread.
    pub fn new(cfg: Config) -> Self {
        let cfg = Config { cpus: cfg.cpus.clamp(1, 64), ..cfg };
        let (n, seed) = (cfg.cpus as usize, cfg.seed);
        let mut m = Model {
            icu_lines: vec![None; cfg.icu_lines as usize],
            ram: physmem::PhysMem::new(cfg.ram),
            cfg,
            objs: objects::ObjTable::new(),
            next_obj: 1,
            next_debug_id: 1,
            mapdb: MapDb::default(),
            clock_us: 0,
            steps: 0,
            step_limit: None,
            halted: false,
            seq: 0,
            slices: vec![(None, 0); n],
            idle_us: vec![0; n],
            rng: seed,
            trace: Vec::new(),
            boot: Boot::default(),
            programs: BTreeMap::new(),
            kip_frame: 0,
            s0_owned: pagetable::Radix::new(),
            s0_any_last: [None; 31],
            crash_at_entry: None,
            entries: 0,
            halt_at_entry: None,
        };
        m.boot_workload();
        m
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The boot objects.
    pub fn boot_objects(&self) -> Boot {
        self.boot
    }

    /// A handle to drive the root task's first thread from host code.
    pub fn root(&mut self) -> HostThread<'_> {
        let t = self.boot.root_thread;
        HostThread::new(self, t)
    }

    /// Makes `thread` (e.g. one the root created through the factory) a
    /// host thread: driven by host code through [`Model::host`], never run
    /// as a program. Use it for a second server thread of the root task.
    pub fn make_host(&mut self, thread: ObjId) {
        if let Some(t) = self.thread_mut(thread) {
            t.runner = objects::Runner::Host;
            if t.state == objects::TState::Dead {
                t.state = objects::TState::Ready;
            }
        }
    }

    /// A handle to drive any host thread (a thread without a program).
    pub fn host(&mut self, thread: ObjId) -> HostThread<'_> {
        HostThread::new(self, thread)
    }

    /// Registers a program under a code address: a thread whose IP is set
    /// (ex_regs or an exception reply) to an address in
    /// `[entry, entry + 0x1000_0000)` runs it. This stands for "the code is
    /// mapped at this address": rtcr starts a child by setting its IP to the
    /// ELF entry, exactly as on the kernel.
    pub fn register_program(&mut self, entry: u64, p: ProgramRef) {
        self.programs.insert(entry, p);
    }

    /// The CPUs there are, bit n = CPU n (all of them are online).
    pub fn online(&self) -> u64 {
        if self.cfg.cpus >= 64 {
            u64::MAX
        } else {
            (1 << self.cfg.cpus) - 1
        }
    }

    /// The CPU `thread` runs on (its home CPU), if it was given one.
    pub fn thread_cpu(&self, thread: ObjId) -> Option<u32> {
        self.thread(thread).and_then(|t| {
            if t.has_cpu || !matches!(t.runner, objects::Runner::Program) {
                t.cpu
            } else {
                None
            }
        })
    }

    /// How long CPU `cpu` had no ready thread, µs (what the scheduler's
    /// idle_time answers).
    pub fn idle_us(&self, cpu: u32) -> u64 {
        self.idle_us.get(cpu as usize).copied().unwrap_or(0)
    }

    /// Current kernel clock in µs.
    pub fn clock_us(&self) -> u64 {
        self.clock_us
    }

    /// The free-running counter user code can read (TSC / CNTVCT_EL0),
    /// running at [`COUNTER_HZ`] off the kernel clock: l4-sys's kernel entry
    /// stamps it into a register (`Arch::restart_regs().stamp`).
    pub fn counter(&self) -> u64 {
        self.clock_us * (COUNTER_HZ / 1_000_000)
    }

    /// Program steps executed so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Stops the whole system once `n` program steps have run in total
    /// (fault injection). `None` removes the limit.
    pub fn set_step_limit(&mut self, n: Option<u64>) {
        self.step_limit = n;
        self.halted = n.is_some_and(|n| self.steps >= n);
    }

    /// Fault injection ("the child dies here"): the thread of `task` that
    /// makes the task's `n`-th next kernel entry (0 = the very next) raises
    /// an invalid-instruction exception instead of entering the kernel.
    pub fn crash_at_entry(&mut self, task: ObjId, n: u64) {
        self.crash_at_entry = Some((task, n));
    }

    /// Kernel entries made so far by all threads (host threads included).
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Fault injection ("the ECU loses power here"): the whole system stops
    /// at the `n`-th kernel entry from now (that entry does not happen).
    pub fn halt_after_entries(&mut self, n: u64) {
        self.halt_at_entry = Some(self.entries + n);
    }

    /// Is a planned crash still to come?
    pub fn crash_pending(&self) -> bool {
        self.crash_at_entry.is_some()
    }

    /// Has the step limit stopped the system?
    pub fn halted(&self) -> bool {
        self.halted
    }

    /// The trace of kernel entries so far.
    pub fn trace(&self) -> &[TraceEntry] {
        &self.trace
    }

    /// Text written to the kernel log by threads of `task`.
    pub fn log_of(&self, task: ObjId) -> String {
        match self.objs.get(&task).map(|o| &o.kind) {
            Some(objects::Kind::Task(t)) => t.log.clone(),
            _ => String::new(),
        }
    }

    /// Fires hardware IRQ line `line` of the ICU (as a device would).
    /// Returns whether an IRQ object was bound to it.
    pub fn fire_hw_irq(&mut self, line: u32) -> bool {
        let Some(Some(irq)) = self.icu_lines.get(line as usize).copied() else { return false };
        self.irq_hw_fire(irq);
        true
    }

    /// Runs program threads until no thread can run and no timeout is
    /// pending, or until `max_steps` more steps have run, or the step limit
    /// halts the system. Returns the number of steps run.
    pub fn run(&mut self, max_steps: u64) -> u64 {
        let start = self.steps;
        while self.steps - start < max_steps && !self.halted {
            if !self.schedule_once(None) {
                break;
            }
        }
        self.steps - start
    }
}
