//! The driver: serve the child, checkpoint it every interval into the A/B
//! store, restore it from the newest good image when it crashes — with a
//! backoff, so a child that crashes right after every restore cannot keep
//! rtcr busy restoring.
//!
//! Crash loops escalate. A child that crashes again before a checkpoint has
//! been taken since it was (re)started is in a loop: the backoff grows, and
//! the image it was restored from counts one failure. An image that has
//! failed [`Policy::max_image_failures`] times is not restored again (the
//! older store slot is tried, then a fresh start from the ELF), so a
//! poisoned image — one from which the child crashes before it can be
//! checkpointed — cannot keep the child down for ever. A fresh start that
//! crashes before its first checkpoint gets the same backoff.

use alloc::format;
use alloc::vec::Vec;

use l4_sys::Timeout;
use rtcr_image::{ImageMeta, Region, Store};

use crate::checkpoint::Stats;
use crate::restore::{Frames, RestoreFailed};
use crate::state::{ChildSpec, ServeOutcome, Supervisor};
use crate::{Env, Error};

/// What the driver did, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A checkpoint went into a store slot (0 = A, 1 = B).
    Checkpoint {
        /// What it cost.
        stats: Stats,
        /// Which slot.
        slot: u8,
        /// Image size in bytes.
        bytes: usize,
    },
    /// A child thread crashed.
    Crash {
        /// Thread index.
        thread: u32,
        /// x86 trap number / arm exception class.
        code: u64,
    },
    /// The child was restored from the image with this sequence number.
    Restored {
        /// Sequence of the image used.
        seq: u64,
        /// How long rtcr waited before restoring (the backoff), µs.
        backoff_us: u64,
        /// How long the restore took, µs (kernel clock): reading and
        /// checking the image, removing the old child, building the new one.
        took_us: u64,
    },
    /// A checkpoint failed; the previous image is still the one to restore.
    CheckpointFailed(alloc::string::String),
    /// An image in the store could not be used (corrupt, or made for another
    /// architecture or page size); the next one is tried, then a fresh start.
    ImageRefused(alloc::string::String),
    /// Restoring the image with this sequence failed half-way (what was
    /// built is taken down again); the older image is tried next.
    RestoreFailed {
        /// Sequence of the image.
        seq: u64,
        /// Why.
        why: alloc::string::String,
    },
    /// No image could be restored: the child started afresh from its ELF.
    StartedAfresh,
    /// The child crashed before a checkpoint since it was started from the
    /// image with this sequence (or, `None`, afresh): a crash loop.
    LoopCrash {
        /// The image it was restored from (`None`: a fresh start).
        seq: Option<u64>,
        /// How many times that image has failed so far.
        failures: u32,
    },
    /// Where the crash just reported happened: the thread's IP and the
    /// fault address its exception state names.
    CrashSite {
        /// Instruction pointer.
        ip: u64,
        /// Fault address (page faults).
        addr: u64,
    },
    /// The child sent a request rtcr does not serve (answered
    /// `-L4_ENOSYS`): what a program needs that rtcr lacks.
    Unserved(crate::l4re::Unserved),
    /// A restored thread runs on another CPU than the image names: this
    /// ECU does not have that one online.
    CpuMoved(crate::supervisor::CpuMove),
    /// The L4Re child exited (`parent->signal`) with this code.
    Exited {
        /// The exit code.
        code: u64,
        /// It was started afresh ([`crate::OnExit::Restart`]); otherwise it
        /// stays stopped and no more checkpoints are taken.
        restarted: bool,
    },
    /// The image with this sequence failed [`Policy::max_image_failures`]
    /// times: it is not restored again.
    ImageAbandoned {
        /// Sequence of the image.
        seq: u64,
        /// How many times it failed.
        failures: u32,
    },
}

/// Restores from the newest image in `store` that decodes and restores,
/// trying the older slot when the newest fails; says in `events` what was
/// passed over and why. Returns the supervisor (or none) and, when none,
/// the frames the attempts used.
fn restore_from_store<E: Env, R: Region>(
    env: &mut E,
    spec: &ChildSpec,
    store: &Store<R>,
    mut frames: Option<Frames>,
    abandoned: &[u64],
    events: &mut Vec<Event>,
) -> (Option<Supervisor>, Option<Frames>) {
    // the slots by their headers, newest first; each image's body is
    // checked once, as it is decoded (the store's `latest` would check
    // both slots' bodies, then the newest again, and decoding once more)
    let order = store.newest_first();
    if order.is_empty() {
        // no header verifies: say why (unless the store was never written)
        match store.latest() {
            Err(rtcr_image::StoreError::Empty) | Ok(_) => {}
            Err(e) => events.push(Event::ImageRefused(format!("{e}"))),
        }
        return (None, frames);
    }
    for slot in order {
        // an image from outside (another ECU) is verified before any of it is used
        let mut phase = crate::restore::Phases::start(env);
        // where it lies when the store is memory rtcr reads directly (no
        // copy), its page bytes left there for the restore to read once
        let image = match store.slot_image(slot) {
            Ok(image) => image,
            Err(e) => {
                phase.end(env, "read and verify the image");
                events.push(Event::ImageRefused(format!("{e}")));
                continue;
            }
        };
        let decoded = rtcr_image::decode_borrowed_for(&image, image_arch(env.arch()), 12).map_err(|e| format!("{e}"));
        phase.end(env, "read and verify the image");
        let (meta, cp, data) = match decoded {
            Ok(x) => x,
            Err(e) => {
                events.push(Event::ImageRefused(e));
                continue;
            }
        };
        if abandoned.contains(&meta.sequence) {
            continue;
        }
        match Supervisor::restore_into_borrowed(env, spec.clone(), &cp, &data, meta.sequence, frames.take()) {
            Ok(mut sup) => {
                events.extend(sup.moved.drain(..).map(Event::CpuMoved));
                phase.done.append(&mut sup.restore_phases);
                sup.restore_phases = phase.done;
                return (Some(sup), None);
            }
            Err(RestoreFailed { error, frames: left }) => {
                events.push(Event::RestoreFailed { seq: meta.sequence, why: format!("{error}") });
                frames = Some(left);
            }
        }
    }
    (None, frames)
}

/// The newest sequence number the store holds (0 when none): a child
/// started afresh numbers its checkpoints on from it, since the store
/// takes only an image newer than the newest it has.
fn newest_stored<R: Region>(store: &Store<R>) -> u64 {
    store
        .status()
        .iter()
        .filter_map(|s| match s {
            rtcr_image::SlotStatus::Valid { sequence } => Some(*sequence),
            _ => None,
        })
        .max()
        .unwrap_or(0)
}

/// Driver settings.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    /// Time between checkpoints, µs.
    pub interval_us: u64,
    /// First backoff after a crash that follows a restore closely, µs.
    pub backoff_min_us: u64,
    /// Largest backoff, µs.
    pub backoff_max_us: u64,
    /// A crash within this time after a restore counts as a crash loop.
    pub loop_window_us: u64,
    /// Most of its time rtcr may spend restoring, in per mille: above it,
    /// the backoff grows even when the crashes are not close together.
    pub max_restore_permille: u64,
    /// How often an image may crash the child before a checkpoint could be
    /// taken before it is no longer restored (the older image, then a
    /// fresh start, come next). At least 1.
    pub max_image_failures: u32,
    /// Recover in place: the crashed child's task is kept with the pages
    /// not written since the newest image, and only the others are put
    /// back from it ([`Supervisor::destroy_keeping_task`]). Not for a
    /// crash loop (a crash before any checkpoint since the last restore):
    /// that restore rewrites every page from the image, repairing what
    /// in memory the image checksum covers and the dirty tracking cannot
    /// see (a flipped bit in a page nobody wrote). `false`: always so.
    pub in_place: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            interval_us: 10_000,
            backoff_min_us: 1_000,
            backoff_max_us: 100_000,
            loop_window_us: 20_000,
            max_restore_permille: 50,
            max_image_failures: 3,
            in_place: true,
        }
    }
}

/// rtcr for one child: its supervisor, its store, its policy.
pub struct Driver<R: Region> {
    /// The child's supervisor.
    pub sup: Supervisor,
    /// The checkpoint store.
    pub store: Store<R>,
    spec: ChildSpec,
    policy: Policy,
    next_checkpoint: u64,
    last_restore: Option<u64>,
    backoff: u64,
    /// Checkpoints taken since the child was last (re)started.
    checkpoints_since_start: u64,
    /// The image the running child was restored from (`None`: started afresh).
    started_from: Option<u64>,
    /// Failures per image sequence (crashes before a checkpoint after a
    /// restore from it).
    failures: Vec<(u64, u32)>,
    /// Images not to restore again.
    abandoned: Vec<u64>,
    /// Time spent restoring (without the backoff), µs.
    pub restoring_us: u64,
    /// When the driver started (kernel clock, µs).
    pub started_us: u64,
    /// Everything that happened.
    pub events: Vec<Event>,
    /// The child exited and stays stopped (the L4Re contract's
    /// [`crate::OnExit::Stop`]).
    pub stopped: bool,
}

/// The image format's name for an architecture.
pub fn image_arch(a: l4_sys::exc::Arch) -> rtcr_image::image::Arch {
    match a {
        l4_sys::exc::Arch::Amd64 => rtcr_image::image::Arch::Amd64,
        l4_sys::exc::Arch::Arm64 => rtcr_image::image::Arch::Arm64,
    }
}

/// The image of checkpoint `cp` with sequence number `seq`, made on `arch`
/// with 4 KiB pages (what the driver stores, and what a restore elsewhere
/// reads).
pub fn encode_image(
    arch: l4_sys::exc::Arch,
    seq: u64,
    cp: &rtcr_image::Checkpoint,
) -> Result<alloc::vec::Vec<u8>, rtcr_image::ImageError> {
    let meta = ImageMeta { arch: image_arch(arch), page_shift: 12, sequence: seq, clock_us: cp.clock_us };
    rtcr_image::encode(&meta, cp)
}

impl<R: Region> Driver<R> {
    /// Starts the child: from the newest good image in `store` if there is
    /// one (an image handed over from another ECU goes there first),
    /// otherwise fresh from `spec`.
    pub fn start<E: Env>(env: &mut E, spec: ChildSpec, store: Store<R>, policy: Policy) -> Result<Self, Error> {
        let mut events = Vec::new();
        let (sup, started_from) = match restore_from_store(env, &spec, &store, None, &[], &mut events) {
            (Some(sup), _) => {
                let seq = sup.seq;
                (sup, Some(seq))
            }
            (None, frames) => {
                let mut sup = Supervisor::spawn_into(env, spec.clone(), frames)?;
                sup.seq = newest_stored(&store);
                (sup, None)
            }
        };
        let now = env.clock_us();
        Ok(Driver {
            sup,
            store,
            spec,
            policy,
            next_checkpoint: now + policy.interval_us,
            last_restore: None,
            backoff: 0,
            checkpoints_since_start: 0,
            started_from,
            failures: Vec::new(),
            abandoned: Vec::new(),
            restoring_us: 0,
            started_us: now,
            events,
            stopped: false,
        })
    }

    /// Runs until the kernel clock passes `until_us`.
    pub fn run_until<E: Env>(&mut self, env: &mut E, until_us: u64) -> Result<(), Error> {
        while env.clock_us() < until_us {
            let now = env.clock_us();
            // wait for the child no longer than the next checkpoint or the
            // end of this run, whichever is first
            let idle = self.next_checkpoint.min(until_us).saturating_sub(now).max(1);
            if self.stopped {
                let _ = l4_sys::ipc::sleep(env, Timeout::from_us(until_us.saturating_sub(now).max(1)));
                continue;
            }
            let outcome = self.sup.serve(env, 16, Timeout::from_us(idle))?;
            self.events.extend(self.sup.unserved.drain(..).map(Event::Unserved));
            if let Some(code) = self.sup.exited.take() {
                self.exit(env, code)?;
                continue;
            }
            match outcome {
                ServeOutcome::Crash { thread, code } => {
                    self.events.push(Event::Crash { thread, code });
                    if let Some((ip, addr)) = self.sup.crash_site.take() {
                        self.events.push(Event::CrashSite { ip, addr });
                    }
                    self.recover(env)?;
                }
                _ => {
                    if env.clock_us() >= self.next_checkpoint {
                        self.checkpoint(env);
                        self.next_checkpoint = env.clock_us() + self.policy.interval_us;
                    }
                }
            }
        }
        Ok(())
    }

    /// The child exited: it is taken down, then started afresh or left
    /// stopped as its contract says. Its images stay in the store.
    fn exit<E: Env>(&mut self, env: &mut E, code: u64) -> Result<(), Error> {
        let restart = self.spec.l4re.as_ref().is_some_and(|l| l.on_exit == crate::OnExit::Restart);
        let old = core::mem::replace(&mut self.sup, Supervisor::placeholder(self.spec.clone(), env.arch()));
        let frames = old.destroy(env)?;
        self.events.push(Event::Exited { code, restarted: restart });
        if restart {
            self.sup = Supervisor::spawn_into(env, self.spec.clone(), Some(frames))?;
            self.sup.seq = newest_stored(&self.store);
            self.checkpoints_since_start = 0;
            self.started_from = None;
            self.next_checkpoint = env.clock_us() + self.policy.interval_us;
        } else {
            self.stopped = true;
        }
        Ok(())
    }

    /// Takes a checkpoint out of turn (rtcr's `jdb` hook, before it makes
    /// the child crash) and starts the interval afresh from it, so that the
    /// next periodic checkpoint comes an interval later, not at once because
    /// its time passed while rtcr was busy elsewhere (e.g. in JDB).
    pub fn checkpoint_now<E: Env>(&mut self, env: &mut E) {
        self.checkpoint(env);
        self.next_checkpoint = env.clock_us() + self.policy.interval_us;
    }

    /// Takes a checkpoint and writes it to the store.
    pub fn checkpoint<E: Env>(&mut self, env: &mut E) {
        let r = self.sup.checkpoint(env).and_then(|(cp, stats)| {
            let bytes = encode_image(env.arch(), stats.seq, &cp).map_err(|e| Error::Image(format!("{e}")))?;
            let slot = self.store.write(&bytes).map_err(|e| Error::Image(format!("{e}")))?;
            Ok(Event::Checkpoint { stats, slot: slot.index() as u8, bytes: bytes.len() })
        });
        match r {
            Ok(e) => {
                self.checkpoints_since_start += 1;
                self.events.push(e)
            }
            Err(e) => self.events.push(Event::CheckpointFailed(format!("{e}"))),
        }
    }

    /// The backoff of the last recovery, µs (0 when the crash was not part
    /// of a crash loop).
    pub fn backoff_us(&self) -> u64 {
        self.backoff
    }

    /// rtcr's time spent restoring so far, per mille of the time since start.
    pub fn restore_permille(&self, now: u64) -> u64 {
        let elapsed = now.saturating_sub(self.started_us).max(1);
        self.restoring_us * 1000 / elapsed
    }

    /// A crash before any checkpoint since the last (re)start: one more
    /// failure for the image the child came from, which is abandoned when
    /// it reaches the policy's limit.
    fn count_loop_failure(&mut self) {
        let Some(seq) = self.started_from else {
            self.events.push(Event::LoopCrash { seq: None, failures: 1 });
            return;
        };
        let n = match self.failures.iter_mut().find(|f| f.0 == seq) {
            Some(f) => {
                f.1 += 1;
                f.1
            }
            None => {
                self.failures.push((seq, 1));
                1
            }
        };
        self.events.push(Event::LoopCrash { seq: Some(seq), failures: n });
        if n >= self.policy.max_image_failures.max(1) && !self.abandoned.contains(&seq) {
            self.abandoned.push(seq);
            self.events.push(Event::ImageAbandoned { seq, failures: n });
        }
    }

    /// Restores the child from the newest good image (after a backoff if it
    /// keeps crashing right after restores). A crash before any checkpoint
    /// since the last (re)start counts against the image the child came
    /// from; an image that reached [`Policy::max_image_failures`] is passed
    /// over for the older one, then for a fresh start.
    pub fn recover<E: Env>(&mut self, env: &mut E) -> Result<(), Error> {
        let t0 = env.clock_us();
        let no_checkpoint = self.checkpoints_since_start == 0;
        let close = self.last_restore.is_some_and(|r| t0.saturating_sub(r) < self.policy.loop_window_us);
        let looping = no_checkpoint || close;
        if no_checkpoint {
            self.count_loop_failure();
        }
        self.backoff =
            if looping { (self.backoff * 2).clamp(self.policy.backoff_min_us, self.policy.backoff_max_us) } else { 0 };
        if self.backoff > 0 {
            let _ = l4_sys::ipc::sleep(env, Timeout::from_us(self.backoff));
        }
        // the restore's time starts here: reading and checking the image is part of it
        let t1 = env.clock_us();
        let old = core::mem::replace(&mut self.sup, Supervisor::placeholder(self.spec.clone(), env.arch()));
        let mut frames =
            if self.policy.in_place && !looping { old.destroy_keeping_task(env)? } else { old.destroy(env)? };
        let mut phase = crate::restore::Phases::start(env);
        phase.done.append(&mut frames.phases);
        let restored =
            restore_from_store(env, &self.spec, &self.store, Some(frames), &self.abandoned, &mut self.events);
        let seq = match restored {
            (Some(sup), _) => {
                self.sup = sup;
                phase.done.append(&mut self.sup.restore_phases);
                self.sup.restore_phases = phase.done;
                Some(self.sup.seq)
            }
            // nothing to restore from: the child starts again from its ELF
            (None, mut frames) => {
                if let Some(f) = frames.as_mut() {
                    f.release_task(env)?;
                }
                self.sup = Supervisor::spawn_into(env, self.spec.clone(), frames)?;
                self.sup.seq = newest_stored(&self.store);
                self.events.push(Event::StartedAfresh);
                None
            }
        };
        let t2 = env.clock_us();
        self.restoring_us += t2 - t1;
        self.last_restore = Some(t2);
        self.next_checkpoint = t2 + self.policy.interval_us;
        self.checkpoints_since_start = 0;
        self.started_from = seq;
        if let Some(seq) = seq {
            self.events.push(Event::Restored { seq, backoff_us: t1 - t0, took_us: t2 - t1 });
        }
        Ok(())
    }
}
