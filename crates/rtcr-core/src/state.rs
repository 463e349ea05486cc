//! What rtcr knows of one child — the online state: the objects it holds
//! for it, its capability table, threads and pages — and the records and
//! constants every part of the supervisor shares.
//!
//! Why a module of its own: the server loop (`supervisor`), the services,
//! the checkpointer and the restorer all work on this state; keeping it
//! here lets each of them depend on it and not on one another, so the flow
//! reads one way (state ← services, checkpoint ← restore ← supervisor ←
//! driver).

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use l4_sys::cap::{base, kind, Cap, CapIdx};
use l4_sys::exc::Arch;

use crate::labels::Service;

/// rtcr's own capabilities.
pub(crate) const FACTORY: Cap<kind::Factory> = Cap::new(base::FACTORY);
pub(crate) const ME: Cap<kind::Task> = Cap::new(base::TASK);
pub(crate) const SCHED: Cap<kind::Scheduler> = Cap::new(base::SCHEDULER);
pub(crate) const SIGMA0: Cap<kind::Sigma0> = Cap::new(base::PAGER);
/// Where rtcr receives capabilities a child sends (a LOCAL_ID buffer; with
/// LOCAL_ID nothing lands there for rtcr's own gates).
pub(crate) const SCRATCH: CapIdx = CapIdx(0xff);
/// A second scratch slot of rtcr's (the slot check compares two mappings).
pub(crate) const SCRATCH_2: CapIdx = CapIdx(0xfe);
/// Child slots where rtcr keeps each thread's exception gate.
pub const PRIV_BASE: u64 = 0x2000;
/// Priority rtcr runs at: above any child, so a checkpoint is never starved.
pub const RTCR_PRIO: u64 = 250;
/// The CPU rtcr's own thread runs on (the boot CPU, where the kernel
/// starts the root task); rtcr pins itself there.
pub const RTCR_CPU: u32 = 0;

/// The tag flag of every message rtcr sends to the child (replies, resumes):
/// `L4_MSGTAG_SCHEDULE`, no direct switch. Without it the kernel switches
/// straight to the receiver whenever rtcr runs on a time slice a child's
/// call donated, and the child runs before rtcr is back in its receive: a
/// zero-timeout send of the child to rtcr (`l4_irq_trigger` on an IRQ rtcr
/// proxies) then fails. Seen on the kernel as lost IRQ triggers right after
/// each checkpoint (`thread-ipc.cpp`, `do_direct_switch`).
pub(crate) const NO_DONATION: l4_sys::msgtag::TagFlags = l4_sys::msgtag::TagFlags::SCHEDULE;

/// A demand-zero region of the child's memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// First byte (page aligned).
    pub start: u64,
    /// Length in bytes (page multiple).
    pub len: u64,
    /// X 1, W 2, R 4.
    pub rights: u8,
}

/// What rtcr needs to know to start a child.
#[derive(Clone, Debug)]
pub struct ChildSpec {
    /// Name (log prefix, image).
    pub name: String,
    /// Entry point.
    pub entry: u64,
    /// Initial stack pointer.
    pub stack_top: u64,
    /// Priority of the first thread.
    pub prio: u8,
    /// UTCB area: address and log2 size (room for `size / 1024` threads).
    pub utcb_area: (u64, u8),
    /// Pre-loaded pages (the ELF segments): address, contents, rights.
    pub load: Vec<(u64, Vec<u8>, u8)>,
    /// Demand-zero regions (data, heap, stack).
    pub regions: Vec<Region>,
    /// Where rtcr maps its trampoline into the child.
    pub trampoline: u64,
    /// The trampoline's machine code (see [`crate::checkpoint::trampoline`]),
    /// copied into the trampoline's frame. Empty where the kernel model
    /// runs the trampoline as a program at that address.
    pub trampoline_code: Vec<u8>,
    /// Where rtcr maps one exchange page per thread (UTCB save/load).
    pub shared: u64,
    /// rtcr's own virtual range for the frames it gives the child.
    pub rtcr_mem: u64,
    /// First of rtcr's own capability slots it may use.
    pub rtcr_slots: u64,
    /// How many slots of the child's space rtcr searches for a new capability.
    pub child_slots: u64,
    /// Most threads the child may have.
    pub max_threads: u32,
    /// Most objects the child may create.
    pub max_objects: u32,
    /// Most pages of memory the child may have.
    pub max_pages: u32,
    /// The rtcr thread that serves this child (its slot in rtcr's space):
    /// every gate of the child is bound to it. One thread per child keeps
    /// children apart: a message of one never reaches another's server.
    pub server_thread: u64,
    /// rtcr's IRQ fast path thread ([`crate::fast_path`]), and the gate to
    /// `server_thread` it forwards through (its label
    /// [`crate::labels::FORWARD`]): the child's IRQ proxies are bound to
    /// it. `None`: to `server_thread`, as every other gate (one CPU, or the
    /// model).
    pub fast_path: Option<(u64, CapIdx)>,
    /// How long a cut waits for a thread in a kernel call to come back
    /// before it cancels the call (µs; [`crate::checkpoint::SETTLE_US`] by
    /// default). A call cancelled after its send phase is made again (its
    /// server sees it twice), so this is the time a child's servers have to
    /// answer for calls to stay exactly-once across a checkpoint.
    pub settle_us: u64,
    /// Where memory a child asks sigma0 for lands in it (start, length):
    /// rtcr answers "any RAM" requests with pages from this range.
    pub sigma0_range: (u64, u64),
    /// The L4Re environment, for a child that is an L4Re program (`None`:
    /// the root-task contract).
    pub l4re: Option<L4reSpec>,
}

/// What an L4Re child gets besides the root-task layout (README "Writing
/// a child", the L4Re contract): the environment's services in the slots
/// moe uses, the KIP where the program asks for it, the boot modules
/// under `rom/`.
#[derive(Clone, Debug)]
pub struct L4reSpec {
    /// The child's address of the KIP (its PT_L4_AUX descriptor).
    pub kip: u64,
    /// Where the region map may place regions (start, end).
    pub rm_limit: (u64, u64),
    /// The boot modules the namespace shows under `rom/`.
    pub roms: Vec<Rom>,
    /// What an exit (`parent->signal`) leads to.
    pub on_exit: OnExit,
}

/// A boot module shown read-only under `rom/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rom {
    /// Its name (without `rom/`).
    pub name: String,
    /// rtcr's address of its first byte (page aligned).
    pub addr: u64,
    /// Its length in bytes.
    pub len: u64,
}

/// What rtcr does when an L4Re child exits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnExit {
    /// The child stays stopped; rtcr says so and keeps its last image.
    Stop,
    /// The child is started afresh.
    Restart,
}

/// The slots of an L4Re child's environment (moe's layout:
/// `libloader/include/remote_app_model`, `moe/server/src/main.cc`).
pub mod l4re_slots {
    /// The region map (and every thread's pager).
    pub const RM: u64 = 0x10;
    /// The memory allocator.
    pub const MEM_ALLOC: u64 = 0x11;
    /// The namespace holding `rom/`.
    pub const ROM: u64 = 0x12;
    /// The parent.
    pub const PARENT: u64 = 0x13;
    /// First slot the program allocates from.
    pub const FIRST_FREE: u64 = 0x20;
}

/// What an object of the child is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ObjKind {
    Service(Service, u64),
    Thread(u32),
    Gate {
        label: u64,
        bound: Option<u32>,
    },
    Irq {
        label: u64,
        bound: Option<u32>,
        hw: Option<u32>,
    },
    Semaphore,
    /// An L4Re dataspace (index into `Supervisor::dataspaces`).
    Dataspace(u32),
}

/// A dataspace rtcr gave an L4Re child: its pages are rtcr's frames,
/// allocated when first touched.
#[derive(Clone, Debug)]
pub(crate) struct Ds {
    /// Its object (the gate the child holds is the object's `child_view`).
    pub obj: u32,
    /// Size in bytes (page multiple).
    pub size: u64,
    /// Allocation flags.
    pub flags: u64,
    /// The boot module it shows (index into the spec's roms), read-only.
    pub rom: Option<u32>,
    /// Page index → rtcr's frame.
    pub frames: BTreeMap<u64, u64>,
}

/// An object rtcr holds for the child: `cap` is the real object in rtcr's
/// space; `child_view` the capability the child is given for it (a proxy
/// gate for threads and IRQs, the object itself otherwise).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Obj {
    pub kind: ObjKind,
    pub cap: CapIdx,
    pub child_view: CapIdx,
    pub rights: u8,
    pub server: bool,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct CapRec {
    pub obj: u32,
    pub rights: u8,
    pub server: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct ThreadRec {
    pub obj: u32,
    pub utcb: u64,
    pub prio: u8,
    pub quantum: u64,
    pub started: bool,
    pub bound: bool,
    /// The child's slot its page faults go to.
    pub pager: u64,
    pub exc_slot: u64,
    /// rtcr's slot of the exception gate.
    pub exc_gate: CapIdx,
    /// rtcr asked the kernel to stop the thread (ex_regs TRIGGER_EXCEPTION
    /// without CANCEL) and it has not stopped yet: it is in a kernel call
    /// and stops when the call returns.
    pub armed: bool,
    /// The kernel call rtcr issued again for it from the call stub
    /// ([`crate::calls`]), still in progress.
    pub held: Option<Held>,
    /// The CPU the kernel runs it on (`None`: not given one yet). rtcr
    /// forwards every run_thread with just this CPU, so it always knows.
    pub cpu: Option<u32>,
    /// The CPU set the child asked for it, for a restore on fewer CPUs.
    pub affinity: l4_sys::scheduler::CpuSet,
}

/// A thread a restore put on another CPU than the image names (this ECU
/// does not have that CPU online).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuMove {
    /// Thread index.
    pub thread: u32,
    /// The CPU in the image.
    pub from: u32,
    /// The CPU it runs on now.
    pub to: u32,
    /// The CPUs online here (bit n = CPU n).
    pub online: u64,
}

/// A thread's kernel call that rtcr issued again from its call stub after a
/// cut: while it is in progress the thread's state is known without
/// stopping it; when it returns (the stub's breakpoint) the thread goes on
/// with `cont` and the call's results.
#[derive(Clone, Debug)]
pub(crate) struct Held {
    /// The thread's registers to go on with: its IP after its own kernel
    /// entry, its own inputs.
    pub cont: Vec<u64>,
    /// The call as issued: dest|flags and timeout pair.
    pub dest: u64,
    /// The timeout pair it was issued with at `since`.
    pub timeout: u64,
    /// The kernel clock (KIP, µs) when it was issued.
    pub since: u64,
    /// The UTCB as it was (a receive in progress does not change it).
    pub utcb: Vec<u64>,
    /// The FPU state.
    pub fpu: Vec<u8>,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Page {
    /// rtcr's address of the frame.
    pub backing: u64,
    /// The rights the child may have (X 1, W 2, R 4).
    pub rights: u8,
    /// W is currently granted (not write-protected).
    pub writable: bool,
    /// Written since the last checkpoint.
    pub dirty: bool,
}

/// What a sigma0-protocol reply gives the child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Grant {
    /// Fresh RAM: the frames of the item.
    Ram,
    /// The KIP.
    Kip,
}

/// A receive error a child can cause (and only hurts its own message).
pub(crate) fn child_fault(e: l4_sys::Error) -> bool {
    use l4_sys::IpcErrorCode as C;
    matches!(
        e,
        l4_sys::Error::Ipc(l4_sys::IpcError {
            code: C::MsgCut | C::Aborted | C::MapFailed | C::Canceled | C::RcvPfTimeout | C::SndPfTimeout,
            ..
        })
    )
}

/// Why `serve` returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServeOutcome {
    /// No message arrived within the timeout: time for a checkpoint.
    Idle,
    /// The message budget was used up.
    Budget,
    /// A child thread crashed: an exception rtcr did not ask for.
    Crash {
        /// The thread's index.
        thread: u32,
        /// x86 trap number or arm exception class.
        code: u64,
    },
}

/// The supervisor of one child.
pub struct Supervisor {
    /// What was asked for.
    pub spec: ChildSpec,
    pub(crate) arch: Arch,
    pub(crate) next_slot: u64,
    pub(crate) child_task: CapIdx,
    pub(crate) objects: Vec<Obj>,
    pub(crate) caps: BTreeMap<u64, CapRec>,
    pub(crate) threads: Vec<ThreadRec>,
    pub(crate) pages: BTreeMap<u64, Page>,
    pub(crate) frames_next: u64,
    /// Frames of rtcr's range a destroyed child no longer uses.
    pub(crate) free_frames: Vec<u64>,
    pub(crate) shadow: BTreeMap<u64, Vec<u8>>,
    /// Pages written since the last checkpoint.
    pub(crate) dirty: crate::pageset::PageSet,
    /// Pages of the last cut not copied into the shadow yet.
    pub(crate) pending: alloc::collections::BTreeSet<u64>,
    pub(crate) scan_hint: u64,
    /// The software IRQs that held an undelivered trigger at the last cut.
    pub(crate) irq_pending: alloc::collections::BTreeSet<u32>,
    pub(crate) kip: Option<(u64, u64)>,
    /// The child's pages where it received the KIP (sigma0 protocol, into
    /// a window of its choosing).
    pub(crate) kip_at: alloc::collections::BTreeSet<u64>,
    /// rtcr is finding out where a sigma0 reply landed (no second search
    /// starts inside it).
    pub(crate) placing: bool,
    pub(crate) exchange: Vec<u64>,
    /// rtcr's address of the trampoline's frame.
    pub(crate) tramp: u64,
    /// Objects the child created (against `max_objects`).
    pub(crate) created: u32,
    /// Next free address of the child's sigma0 range.
    pub(crate) sigma0_next: u64,
    /// A child thread that crashed while rtcr waited for others (during a
    /// cut): it stays stopped, and `serve` reports it first.
    pub(crate) crash_pending: Option<(u32, u64)>,
    /// A cut is being taken: stops rtcr did not wait for yet are kept
    /// in `early` instead of being resumed.
    pub(crate) cutting: bool,
    /// Stops that arrived while rtcr waited for another thread during a cut.
    #[allow(clippy::type_complexity)]
    pub(crate) early: Vec<(u32, Vec<u64>, Vec<u8>)>,
    /// During a cut, the threads it has saved and resumed (they run on
    /// while it waits for the others): the only ones a search for a sigma0
    /// caller may stop then.
    pub(crate) cut_resumed: Vec<u32>,
    /// Sigma0-protocol replies given during a cut whose caller could not
    /// be found then: placed from the threads the cut saved, once it ends.
    pub(crate) unplaced: Vec<(l4_sys::item::SendItem, Grant)>,
    /// Kernel calls of the child's threads a cut could not leave alone
    /// (a call waiting for its reply or a send, still blocked when rtcr
    /// had waited for it): the child saw them cancelled.
    pub visible_cancels: u64,
    /// Messages a child thread sent to another thread's capability that
    /// rtcr could not have the sender make again (its sender not found
    /// among the stopped threads): the sender got rtcr's echo instead.
    pub direct_lost: u64,
    /// Where the restore that built this child spent its time (µs per
    /// phase, in order); empty for a child started afresh.
    pub restore_phases: Vec<(&'static str, u64)>,
    /// Of the restore's `memory` phase, the part spent mapping the pages
    /// into the child (the kernel's map calls), µs; the rest is rtcr's
    /// frames and the writing of the pages into them.
    pub restore_map_us: u64,
    /// Of a restore in place's `objects and slots` phase, the part spent
    /// unmapping what the image does not show (the kernel's unmap calls), µs.
    pub restore_unmap_us: u64,
    /// Of the pages the restore that built this child put back, those it
    /// left as they were in the crashed child's task, mapped and not
    /// written (a restore in place, [`Supervisor::destroy_keeping_task`]);
    /// 0 for one into a new task.
    pub restore_kept_pages: u64,
    /// The restore that built this child kept the crashed child's task (a
    /// restore in place).
    pub restore_in_place: bool,
    /// An L4Re child's region map (empty for a root-task child).
    pub(crate) rm: crate::regions::RegionMap,
    /// An L4Re child's dataspaces.
    pub(crate) dataspaces: Vec<Ds>,
    /// The child's output since its last end of line.
    pub(crate) log_buf: Vec<u8>,
    /// The Vcon attributes an L4Re child set (`set_attr`): i, o, l flags.
    pub(crate) vcon_attr: [u64; 3],
    /// The exit code an L4Re child signalled to its parent, if it exited.
    pub exited: Option<u64>,
    /// Pages of dataspaces no region shows, as of the last cut (by
    /// dataspace index: offset, bytes or none for zeros).
    #[allow(clippy::type_complexity)]
    pub(crate) ds_loose: BTreeMap<u32, Vec<(u64, Vec<u8>)>>,
    /// Where the last crash happened: (IP, fault address), for the log.
    pub crash_site: Option<(u64, u64)>,
    /// Requests rtcr did not serve since the driver last looked (answered
    /// `-L4_ENOSYS`; the driver reports them).
    pub unserved: Vec<crate::l4re::Unserved>,
    /// The CPUs the kernel has (bit n = CPU n, `l4_scheduler_info`).
    pub online: u64,
    /// Threads the last restore moved to another CPU (the driver reports
    /// them).
    pub moved: Vec<CpuMove>,
    /// Sequence number of the last checkpoint.
    pub seq: u64,
    /// Messages served, by kind (for logs and tests).
    pub served: u64,
}
