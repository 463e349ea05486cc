//! The restorer: a child from a checkpoint record alone, into an empty task.
//!
//! Every object is created again — threads first, so that gates and IRQs
//! can be bound to them, and then everything else in any order (nothing
//! depends on the order the child once created things in) — and mapped into
//! the slot the record names, with the recorded rights. Gates and IRQs are
//! bound to the restored threads with the recorded labels; memory is copied
//! into fresh frames and mapped write-protected (so dirty tracking goes on);
//! each thread gets its UTCB back through the trampoline
//! ([`crate::checkpoint::trampoline::OP_LOAD`]) and, once every thread is
//! ready, its registers, and runs. A thread that was inside a kernel call
//! re-issues it.

use alloc::vec::Vec;

use l4_sys::cap::CapIdx;
use l4_sys::fpage::{Fpage, MemRights};
use l4_sys::item::{Cache, SendItem};
use l4_sys::scheduler::CpuSet;
use l4_sys::task::unmap_mask::ALL_SPACES;
use l4_sys::thread::{self, ExRegsFlags, KEEP};
use l4_sys::{factory, icu, irq, Cap};
use rtcr_image::record::{Checkpoint, ObjectRecord, ThreadState};

use crate::checkpoint::{regs, trampoline};
use crate::labels;
use crate::state::{CapRec, ChildSpec, Obj, ObjKind, Page, Supervisor, FACTORY};
use crate::{Env, Error};

fn bad(what: &'static str) -> Error {
    Error::Image(alloc::string::String::from(what))
}

impl Supervisor {
    /// Restores `cp` as a new child of this rtcr. `spec` gives rtcr's side
    /// (where it keeps frames, the trampoline); the child's side comes from
    /// the record.
    pub fn restore<E: Env>(env: &mut E, spec: ChildSpec, cp: &Checkpoint, seq: u64) -> Result<Self, Error> {
        Self::restore_into(env, spec, cp, seq, None).map_err(|f| f.error)
    }

    /// [`Supervisor::restore`] into the frames a destroyed child left
    /// ([`Supervisor::destroy`]), so that restoring again and again takes no
    /// more memory from sigma0 than the child needs. A restore that fails
    /// half-way takes down what it built and gives the frames back with the
    /// error, for a try with another image.
    // the error carries the frames back (a few vectors), once per failed
    // restore: not worth a box
    #[allow(clippy::result_large_err)]
    pub fn restore_into<E: Env>(
        env: &mut E,
        spec: ChildSpec,
        cp: &Checkpoint,
        seq: u64,
        frames: Option<Frames>,
    ) -> Result<Self, RestoreFailed> {
        Self::restore_pages_from(env, spec, cp, None, seq, frames)
    }

    /// [`Supervisor::restore_into`] from records whose page bytes lie
    /// elsewhere ([`rtcr_image::decode_borrowed_for`]: in the image itself):
    /// `data` holds the bytes of each of `cp`'s pages, in order (none for a
    /// zero page), and is read once, into the frames.
    #[allow(clippy::result_large_err)]
    pub fn restore_into_borrowed<E: Env>(
        env: &mut E,
        spec: ChildSpec,
        cp: &Checkpoint,
        data: &[&[u8]],
        seq: u64,
        frames: Option<Frames>,
    ) -> Result<Self, RestoreFailed> {
        Self::restore_pages_from(env, spec, cp, Some(data), seq, frames)
    }

    #[allow(clippy::result_large_err)]
    fn restore_pages_from<E: Env>(
        env: &mut E,
        mut spec: ChildSpec,
        cp: &Checkpoint,
        data: Option<&[&[u8]]>,
        seq: u64,
        frames: Option<Frames>,
    ) -> Result<Self, RestoreFailed> {
        spec.utcb_area = cp.utcb_area;
        spec.name = cp.child.clone();
        let mut s = Supervisor::new_for_restore(spec, env.arch());
        let mut placed = Vec::new();
        let mut kept = None;
        if let Some(mut f) = frames {
            // a kept task serves only the image of its last checkpoint, and
            // only from the slot a new child's task takes (rtcr's first)
            let fits = f
                .kept
                .as_ref()
                .is_some_and(|k| k.seq == seq && k.utcb_area == cp.utcb_area && k.task.0 == s.spec.rtcr_slots);
            if fits {
                kept = f.kept.take();
            } else if let Err(error) = f.release_task(env) {
                return Err(RestoreFailed { error, frames: f });
            }
            placed = core::mem::take(&mut f.placed);
            s.take_frames(f);
        }
        s.seq = seq;
        // the restore's phases start here: setting frames aside is part of
        // the first (it was counted in none)
        let phase = Phases::start(env);
        // the frames the image's pages had, set aside for them (the
        // trampoline and the exchange pages take others)
        let keep = set_aside(&mut s, cp, &placed);
        match rebuild(&mut s, env, cp, data, &keep, kept, phase) {
            Ok(()) => Ok(s),
            Err(error) => {
                // take down what was built, keep the frames for another try:
                // those set aside too, and where the pages were
                let mut frames = s.destroy(env).unwrap_or_default();
                frames.free.extend(keep.iter().flatten());
                frames.free.sort_unstable_by(|a, b| b.cmp(a));
                frames.free.dedup();
                frames.placed = placed;
                Err(RestoreFailed { error, frames })
            }
        }
    }

    /// Uses the frames a destroyed child left (before anything is built).
    pub(crate) fn take_frames(&mut self, f: Frames) {
        self.free_frames = f.free;
        self.frames_next = f.next;
        self.kip = f.kip;
    }

    /// Removes the child and every object rtcr held for it (before a restore
    /// in the same rtcr). Returns the frames it used, for
    /// [`Supervisor::restore_into`]: they stay mapped in rtcr.
    pub fn destroy<E: Env>(self, env: &mut E) -> Result<Frames, Error> {
        self.take_down(env, false)
    }

    /// [`Supervisor::destroy`], but the child's task stays, with the
    /// mappings of the pages that still hold what the last checkpoint saw
    /// (neither the child nor rtcr wrote them since: no W was granted and
    /// no write was recorded), for a restore of that checkpoint's image in
    /// place ([`Kept`]): such a restore rewrites and maps again only the
    /// pages written since, where a restore into a new task writes and maps
    /// every page and the old task's deletion unmaps every page, each one
    /// by one in the kernel. Every capability in the child's space goes,
    /// and every object rtcr made for it (the task's own capability too:
    /// the restore gives back what the image shows).
    pub fn destroy_keeping_task<E: Env>(self, env: &mut E) -> Result<Frames, Error> {
        self.take_down(env, true)
    }

    fn take_down<E: Env>(self, env: &mut E, keep_task: bool) -> Result<Frames, Error> {
        let me = crate::state::ME;
        let mut free: Vec<u64> = self.pages.values().map(|p| p.backing).collect();
        // dataspace pages no region showed (a boot module's pages are not rtcr's frames)
        free.extend(self.dataspaces.iter().filter(|d| d.rom.is_none()).flat_map(|d| d.frames.values().copied()));
        free.sort_unstable();
        free.dedup();
        free.extend(self.exchange.iter().copied());
        // and those it had been given but not used yet (a restore that failed half-way)
        free.extend(self.free_frames.iter().copied());
        if self.tramp != 0 {
            free.push(self.tramp);
        }
        // the lowest addresses are handed out first
        free.sort_unstable_by(|a, b| b.cmp(a));
        let placed = self.pages.iter().map(|(&vpn, p)| (vpn, p.backing)).collect();
        let mut frames = Frames { free, next: self.frames_next, kip: self.kip, phases: Vec::new(), placed, kept: None };
        if self.child_task.0 == 0 {
            return Ok(frames);
        }
        let mut phase = Phases::start(env);
        // in as few kernel calls as there can be: each waits for an RCU
        // grace period (about a timer tick) once it deleted anything
        let mut caps: Vec<CapIdx> = Vec::new();
        for o in &self.objects {
            caps.push(o.cap);
            if o.child_view != o.cap {
                caps.push(o.child_view);
            }
        }
        caps.extend(self.threads.iter().map(|t| t.exc_gate));
        if !keep_task {
            caps.push(self.child_task);
        }
        l4_sys::task::delete_objs(env, me, &caps)?;
        if keep_task {
            // what is left in the child's capability space (its own task,
            // copies it made of it): every slot, in one call
            l4_sys::task::unmap(
                env,
                self.child_task(),
                Fpage::obj(CapIdx(0), CAP_SPACE_ORDER, l4_sys::fpage::CapRights::RWSD),
                l4_sys::task::unmap_mask::ALL_SPACES,
            )?;
            frames.kept = Some(Kept {
                task: self.child_task,
                utcb_area: self.spec.utcb_area,
                seq: self.seq,
                pages: self.kept_pages(),
            });
        }
        phase.end(env, "delete the child and its objects");
        frames.phases = phase.done;
        Ok(frames)
    }

    /// The child's pages as they are mapped: (page number, frame, rights,
    /// whether the frame may hold anything but what the last cut saw: a
    /// page on it has W or was written since, by the child or rtcr; a
    /// frame two pages show counts as written if either was).
    fn kept_pages(&self) -> Vec<KeptPage> {
        let mut written: Vec<u64> = self.pages.values().filter(|p| p.writable || p.dirty).map(|p| p.backing).collect();
        written.sort_unstable();
        self.pages
            .iter()
            .map(|(&vpn, p)| KeptPage {
                vpn,
                backing: p.backing,
                rights: p.rights,
                // its own W or write puts its frame in `written`
                written: self.dirty.contains(vpn) || written.binary_search(&p.backing).is_ok(),
                writable: p.writable,
            })
            .collect()
    }
}

/// The order of an object fpage that covers every capability slot a task
/// can have (the kernel takes the part of it its capability space has).
const CAP_SPACE_ORDER: u32 = 32;

/// A crashed child's task, kept for a restore in place
/// ([`Supervisor::destroy_keeping_task`]): nothing but memory is left in
/// it.
#[derive(Clone, Debug)]
pub(crate) struct Kept {
    /// rtcr's capability of the task.
    task: CapIdx,
    /// Its UTCB area (a task has it for life).
    utcb_area: (u64, u8),
    /// The last checkpoint the child took: only that image matches the
    /// pages left mapped.
    seq: u64,
    /// The pages still mapped, in page order.
    pages: Vec<KeptPage>,
}

/// A page of a kept task.
#[derive(Clone, Copy, Debug)]
struct KeptPage {
    vpn: u64,
    /// rtcr's frame.
    backing: u64,
    /// The rights the child may have (X 1, W 2, R 4).
    rights: u8,
    /// The frame may no longer hold what the last checkpoint saw.
    written: bool,
    /// The child has W on it.
    writable: bool,
}

/// rtcr's frames a destroyed child left behind (still mapped in rtcr).
#[derive(Clone, Debug, Default)]
pub struct Frames {
    free: Vec<u64>,
    next: u64,
    kip: Option<(u64, u64)>,
    /// Where taking the child down spent its time (µs per phase).
    pub phases: Vec<(&'static str, u64)>,
    /// Which frame held which of the child's pages (page number, frame):
    /// a restore into the same rtcr puts each page back into its frame, so
    /// runs of pages stay runs of frames, aligned as they were, and are
    /// mapped as large fpages again.
    placed: Vec<(u64, u64)>,
    /// The task of the destroyed child, if it was kept for a restore in
    /// place: rtcr still holds it ([`Frames::release_task`]).
    kept: Option<Kept>,
}

impl Frames {
    /// Deletes the kept task, if any (the frames are then those of a
    /// destroyed child, for a restore into a new task or a fresh start).
    pub fn release_task<E: Env>(&mut self, env: &mut E) -> Result<(), Error> {
        if let Some(k) = self.kept.take() {
            l4_sys::task::delete_objs(env, crate::state::ME, &[k.task])?;
        }
        Ok(())
    }
}

/// The CPU a restored thread runs on: the one it ran on if this ECU has
/// it online; else the first online CPU of the set it asked for; else the
/// online CPUs taken in turn (`cpu` modulo their number), so threads that
/// were apart stay apart where they can.
pub(crate) fn cpu_here(cpu: u32, asked: &CpuSet, online: u64) -> u32 {
    if cpu < 64 && online & (1 << cpu) != 0 {
        return cpu;
    }
    if let Some(c) = asked.first(online) {
        return c;
    }
    let up: Vec<u32> = (0..64).filter(|&c| online & (1 << c) != 0).collect();
    match up.len() {
        0 => crate::state::RTCR_CPU,
        n => up[cpu as usize % n],
    }
}

/// Builds the child of `cp` into the fresh supervisor `s`; `keep`: the
/// frame each page had before, set aside for it (see [`Frames`]), by the
/// page's index in `cp`; `phase`: the restore's phases so far; `data`: the
/// pages' bytes if not in `cp` (see [`Supervisor::restore_into_borrowed`]).
fn rebuild<E: Env>(
    s: &mut Supervisor,
    env: &mut E,
    cp: &Checkpoint,
    data: Option<&[&[u8]]>,
    keep: &[Option<u64>],
    kept: Option<Kept>,
    mut phase: Phases,
) -> Result<(), Error> {
    s.take_rtcr_cpu(env)?;
    // in place: the pages still mapped as the image has them (same page,
    // same rights) stay mapped, if they also have the same frame (below);
    // all else the task maps goes first, before anything is mapped again.
    // Those written since the image get its bytes again (the child is
    // gone: nothing writes them meanwhile); one the child has W on keeps
    // it and counts as written since the image, so the next checkpoint
    // write-protects it in its one call, as it would had the restored
    // child written it (the likelier case), instead of the restore
    // revoking W page by page in the kernel now
    let mut stay: Vec<KeptPage> = Vec::new();
    match kept {
        Some(k) => {
            s.child_task = s.slot();
            s.restore_in_place = true;
            debug_assert_eq!(s.child_task, k.task);
            let mut i = 0;
            for kp in k.pages {
                while i < cp.pages.len() && cp.pages[i].vaddr >> 12 < kp.vpn {
                    i += 1;
                }
                if cp.pages.get(i).is_some_and(|p| p.vaddr >> 12 == kp.vpn && p.rights == kp.rights) {
                    stay.push(kp);
                }
            }
            let from = env.stamp_now();
            unmap_all_but(s, env, &stay)?;
            s.restore_unmap_us = us_since(env, from);
        }
        None => s.create_task(env)?,
    }
    s.map_trampoline(env)?;
    if let Some(l4re) = s.spec.l4re.clone() {
        s.rm = s.empty_region_map(&l4re);
    }
    let n = cp.objects.len();
    let mut map: Vec<Option<u32>> = alloc::vec![None; n];
    // threads first
    let mut thread_objs: Vec<(usize, u32)> = cp
        .objects
        .iter()
        .enumerate()
        .filter_map(|(i, o)| match o {
            ObjectRecord::Thread { thread } => Some((i, *thread)),
            _ => None,
        })
        .collect();
    thread_objs.sort_by_key(|x| x.1);
    for (expect, (i, t)) in thread_objs.iter().enumerate() {
        if *t as usize != expect || cp.threads.len() <= *t as usize {
            return Err(bad("thread records are not numbered 0..n"));
        }
        let idx = s.new_thread(env, None)?;
        map[*i] = Some(s.threads[idx as usize].obj);
    }
    let thread_of = |map: &Vec<Option<u32>>, s: &Supervisor, r: u32| -> Result<u32, Error> {
        let o = map.get(r as usize).copied().flatten().ok_or_else(|| bad("binding names a non-thread"))?;
        match s.objects[o as usize].kind {
            ObjKind::Thread(t) => Ok(t),
            _ => Err(bad("binding names a non-thread")),
        }
    };
    for (i, o) in cp.objects.iter().enumerate() {
        let new = match o {
            ObjectRecord::Thread { .. } => continue,
            ObjectRecord::Task => continue,
            ObjectRecord::Kip { vaddr } => {
                // mapped again when the child first reads it
                s.kip_at.insert(vaddr >> 12);
                continue;
            }
            ObjectRecord::Service { service, label } => {
                let (svc, index) = labels::decode(*label).ok_or_else(|| bad("service label"))?;
                if svc != *service {
                    return Err(bad("service label does not name its service"));
                }
                let g = s.service_gate(env, svc, index)?;
                s.add_obj(Obj { kind: ObjKind::Service(svc, *label), cap: g, child_view: g, rights: 7, server: false })?
            }
            ObjectRecord::Gate { label, bound } => {
                let b = match bound {
                    Some(r) => Some((thread_of(&map, s, *r)?, *label)),
                    None => None,
                };
                s.create_gate_for_child(env, b)?
            }
            ObjectRecord::Irq { label, bound, hw_line, pending } => {
                let o = s.create_irq_for_child(env)?;
                let cap: Cap<l4_sys::cap::kind::Irq> = Cap::new(s.objects[o as usize].cap);
                let b = match bound {
                    Some(r) => {
                        let t = thread_of(&map, s, *r)?;
                        irq::bind_thread(env, cap, s.thread_cap(t), *label)?;
                        Some(t)
                    }
                    None => None,
                };
                if let Some(line) = hw_line {
                    icu::bind(env, Cap::new(l4_sys::cap::base::ICU), *line as u64, cap)?;
                }
                s.objects[o as usize].kind = ObjKind::Irq { label: *label, bound: b, hw: *hw_line };
                if *pending {
                    irq::trigger(env, cap)?;
                }
                o
            }
            ObjectRecord::Dataspace { size, flags, rom, loose } => {
                let rom = match rom {
                    Some(name) => {
                        let roms = s.spec.l4re.as_ref().map(|l| &l.roms[..]).unwrap_or(&[]);
                        let r = roms.iter().position(|m| m.name == *name).ok_or_else(|| {
                            Error::Image(alloc::format!("the image shows boot module rom/{name}, this ECU has none"))
                        })?;
                        Some(r as u32)
                    }
                    None => None,
                };
                let o = s.new_dataspace(env, *size, *flags, rom)?;
                let d = s.dataspaces.len() as u32 - 1;
                for (off, data) in loose {
                    let b = s.frame(env)?;
                    if !data.is_empty() {
                        env.write_mem(b, data)?;
                    }
                    s.dataspaces[d as usize].frames.insert(off >> 12, b);
                }
                o
            }
            ObjectRecord::Region { start, size, flags, ds, offset, client_cap } => {
                let ds = match ds {
                    Some(r) => match map.get(*r as usize).copied().flatten().map(|o| s.objects[o as usize].kind) {
                        Some(ObjKind::Dataspace(d)) => Some(d),
                        // dataspaces come before the regions that show them
                        _ => return Err(bad("a region names no dataspace restored before it")),
                    },
                    None => None,
                };
                let r = crate::regions::RegionRec {
                    start: *start,
                    size: *size,
                    flags: *flags,
                    ds,
                    offset: *offset,
                    client_cap: *client_cap,
                };
                s.rm.insert_region(r).map_err(|_| bad("a region overlaps another or rtcr's ranges"))?;
                continue;
            }
            ObjectRecord::Area { start, size, flags } => {
                let a = crate::regions::AreaRec { start: *start, size: *size, flags: *flags };
                s.rm.insert_area(a).map_err(|_| bad("an area overlaps another"))?;
                continue;
            }
            ObjectRecord::Semaphore { count } => {
                let slot = s.slot();
                let sem = factory::create_semaphore(env, FACTORY, slot)?;
                for _ in 0..*count {
                    l4_sys::semaphore::up(env, sem)?;
                }
                s.add_obj(Obj { kind: ObjKind::Semaphore, cap: slot, child_view: slot, rights: 7, server: false })?
            }
        };
        map[i] = Some(new);
    }
    s.created = cp
        .objects
        .iter()
        .filter(|o| {
            !matches!(
                o,
                ObjectRecord::Service { .. }
                    | ObjectRecord::Task
                    | ObjectRecord::Kip { .. }
                    | ObjectRecord::Region { .. }
                    | ObjectRecord::Area { .. }
            )
        })
        .count() as u32;
    // the capability table, slot by slot
    for c in &cp.caps {
        let o =
            map.get(c.object as usize).copied().flatten().ok_or_else(|| bad("capability names an unknown object"))?;
        let view = s.objects[o as usize].child_view;
        s.give_cap(env, view, c.slot, c.rights, c.server)?;
        s.caps.insert(c.slot, CapRec { obj: o, rights: c.rights, server: c.server });
    }
    phase.end(env, "objects and slots");
    // memory, write-protected: every page into a frame of rtcr's (those a
    // destroyed child left, then fresh ones from sigma0 in large blocks),
    // written once (its data, or zeros: neither kind of frame is zero) and
    // mapped. The shadow is not filled here: the frame holds the image's
    // contents until the child writes it, so the page waits for its copy
    // like a page of a cut (a write fault copies it first, the next
    // checkpoint copies the rest after its resume)
    if data.is_some_and(|d| d.len() != cp.pages.len()) {
        return Err(bad("the page bytes do not match the page records"));
    }
    let mut frames = frames_for(s, env, cp, keep)?;
    // the page table and the pages waiting for their copy, built at once
    // from the image's order (a bulk build, not one insertion per page)
    let mut pages = Vec::with_capacity(cp.pages.len());
    // in place: by page, whether it stays as it is mapped (written and
    // mapped again otherwise); stayed pages that turn out to need another
    // frame lose their mapping first
    let mut stays = alloc::vec![false; cp.pages.len()];
    let mut unstay: Vec<u64> = Vec::new();
    let mut untouched = 0u64;
    let mut keep_w: Vec<u64> = Vec::new();
    for (i, p) in cp.pages.iter().enumerate() {
        let vpn = p.vaddr >> 12;
        // a dataspace's page: one frame wherever a region shows it
        let in_ds = s.rm.lookup(p.vaddr).copied().and_then(|r| Some((r.ds?, (r.offset + (p.vaddr - r.start)) >> 12)));
        let known = in_ds.and_then(|(d, pg)| s.dataspaces.get(d as usize)?.frames.get(&pg).copied());
        if let Some(b) = known {
            s.free_frames.push(frames[i]);
            frames[i] = b;
        }
        let mut rewrite = true;
        let mut w = false;
        if let Ok(j) = stay.binary_search_by_key(&vpn, |x| x.vpn) {
            if stay[j].backing == frames[i] {
                stays[i] = true;
                // a frame that holds the image's page needs nothing written
                rewrite = stay[j].written;
                w = stay[j].writable;
                untouched += u64::from(!rewrite);
                if let (None, Some((d, pg))) = (known, in_ds) {
                    if let Some(ds) = s.dataspaces.get_mut(d as usize) {
                        ds.frames.insert(pg, frames[i]);
                    }
                }
            } else {
                unstay.push(vpn);
            }
        }
        match known {
            _ if !rewrite => {}
            Some(_) => {}
            None => {
                let bytes = match data {
                    Some(d) => d.get(i).copied().unwrap_or_default(),
                    None => &p.data[..],
                };
                if bytes.is_empty() {
                    env.zero_mem(frames[i], 4096)?;
                } else {
                    env.write_mem(frames[i], bytes)?;
                }
                if let Some((d, pg)) = in_ds {
                    if let Some(ds) = s.dataspaces.get_mut(d as usize) {
                        ds.frames.insert(pg, frames[i]);
                    }
                }
            }
        }
        if w {
            keep_w.push(vpn);
        }
        pages.push((vpn, Page { backing: frames[i], rights: p.rights, writable: w, dirty: w }));
        let end = p.vaddr + 4096;
        if p.vaddr >= s.spec.sigma0_range.0 && end <= s.spec.sigma0_range.0 + s.spec.sigma0_range.1 {
            s.sigma0_next = s.sigma0_next.max(end);
        }
    }
    // a page the child keeps W on is not waiting for its copy: it is
    // written since the image, its copy comes with the next checkpoint's
    let waiting = pages.iter().filter(|p| !p.1.writable).map(|p| p.0);
    if s.pages.is_empty() && s.pending.is_empty() {
        s.pending = waiting.collect();
        s.pages = pages.into_iter().collect();
    } else {
        s.pending.extend(waiting);
        s.pages.extend(pages);
    }
    for vpn in keep_w {
        s.dirty.insert(vpn);
    }
    s.restore_kept_pages = untouched;
    let unstay: Vec<Fpage> = unstay.into_iter().map(|vpn| Fpage::mem(vpn << 12, 12, MemRights::RWX)).collect();
    l4_sys::task::unmap_many(env, s.child_task(), &unstay, ALL_SPACES)?;
    let map_start = env.stamp_now();
    map_runs(
        s,
        env,
        cp.pages.iter().zip(&frames).zip(&stays).filter(|x| !*x.1).map(|((p, &b), _)| (p.vaddr, b, p.rights & !2)),
    )?;
    s.restore_map_us = us_since(env, map_start);
    phase.end(env, "memory");
    // threads: bind, schedule, UTCB; each stays stopped until all are
    // ready, so none runs (or crashes) while the others are restored
    let ri = regs(s.arch);
    let flags = s.start_flags();
    let mut ready: Vec<(u32, Vec<u64>, &[u8], ThreadState)> = Vec::new();
    for (t, tr) in cp.threads.iter().enumerate() {
        let t = t as u32;
        if tr.utcb != 0 {
            s.bind_thread(env, t, tr.utcb, tr.pager_slot)?;
        }
        if tr.prio > 0 {
            match cp.placement.iter().find(|p| p.thread == t) {
                Some(p) => {
                    let set = CpuSet { gran_offset: p.affinity.0, map: p.affinity.1 };
                    let cpu = cpu_here(p.cpu, &set, s.online);
                    if cpu != p.cpu {
                        s.moved.push(crate::state::CpuMove { thread: t, from: p.cpu, to: cpu, online: s.online });
                    }
                    s.place_thread(env, t, tr.prio as u64, tr.quantum_us, cpu)?;
                    s.threads[t as usize].affinity = set;
                }
                // an image from before placements: rtcr's CPU, as then
                None => s.run_thread(env, t, tr.prio as u64, tr.quantum_us, CpuSet::ALL)?,
            }
        }
        if tr.state == ThreadState::Dead || tr.utcb == 0 {
            continue;
        }
        let real = s.thread_cap(t);
        thread::ex_regs(env, real, KEEP, KEEP, ExRegsFlags::TRIGGER_EXCEPTION | flags)?;
        let first = s.wait_exception(env, t)?;
        let mut words = tr.utcb_words.clone();
        // deadlines on this ECU's clock
        let now = env.clock_us();
        for &(br, left) in &tr.timeouts {
            if let Some(w) = words.get_mut(65 + br as usize) {
                *w = now + left;
            }
        }
        let mut page = alloc::vec![0u8; 1024];
        for (i, w) in words.iter().enumerate().take(128) {
            page[8 * i..8 * i + 8].copy_from_slice(&w.to_le_bytes());
        }
        let b = s.exchange_backing(t);
        env.write_mem(b, &page)?;
        let mut start = first;
        start[ri.sp] = tr.regs[ri.sp];
        s.run_trampoline(env, t, &start, &tr.fpu, trampoline::OP_LOAD)?;
        ready.push((t, tr.regs.clone(), &tr.fpu, tr.state));
    }
    phase.end(env, "threads and UTCBs");
    // registers: all threads go at once, the lowest priority first (as at
    // the end of a cut, `checkpoint.rs`: a resume waits until the thread's
    // CPU runs it)
    let stamp = env.arch().restart_regs().stamp;
    ready.sort_by_key(|r| s.threads[r.0 as usize].prio);
    for (t, mut regs, fpu, state) in ready {
        if let ThreadState::InCall { dest, timeout } = state {
            // a call made by other entry code: issued again from the stub
            let utcb = cp.threads[t as usize].utcb_words.clone();
            s.hold(env, t, regs, dest, timeout, utcb, fpu.to_vec())?;
            s.threads[t as usize].started = true;
            continue;
        }
        if state == ThreadState::InKernel {
            // the image holds what was left of a re-issued call's
            // relative timeouts at the cut; it starts counting now, on
            // this ECU's counter
            if let Some(r) = regs.get_mut(stamp) {
                *r = env.stamp_now();
            }
        }
        s.resume_with(env, t, &regs, fpu)?;
        s.threads[t as usize].started = true;
    }
    phase.end(env, "registers and resume");
    s.restore_phases = phase.done;
    Ok(())
}

/// The largest block of frames asked of sigma0 at once (4 MiB, as for
/// rtcr's heap).
const FRAME_BLOCK_ORDER: u32 = 22;

/// The frames `placed` names for pages of `cp`, taken off the free list,
/// by the page's index in `cp`; a page whose frame is no longer free has
/// none. (Sorted vectors searched by halves: trees of a node per page
/// cost more than the search under emulation.)
fn set_aside(s: &mut Supervisor, cp: &Checkpoint, placed: &[(u64, u64)]) -> Vec<Option<u64>> {
    let mut keep = alloc::vec![None; cp.pages.len()];
    if placed.is_empty() {
        return keep;
    }
    let mut was = placed.to_vec();
    // a destroyed child's pages come in page order: sorting is a check
    if !was.is_sorted_by_key(|p| p.0) {
        was.sort_unstable_by_key(|p| p.0);
    }
    let mut free = s.free_frames.clone();
    free.sort_unstable();
    let mut taken = Vec::new();
    for (k, p) in keep.iter_mut().zip(&cp.pages) {
        if let Ok(j) = was.binary_search_by_key(&(p.vaddr >> 12), |x| x.0) {
            let b = was[j].1;
            if free.binary_search(&b).is_ok() {
                *k = Some(b);
                taken.push(b);
            }
        }
    }
    taken.sort_unstable();
    s.free_frames.retain(|b| taken.binary_search(b).is_err());
    keep
}

/// A frame for each page of `cp`, in order: the one it had (`keep`), else
/// one a destroyed child left, else a fresh one from sigma0 at the next
/// free address of rtcr's range. Fresh frames are asked for in naturally
/// aligned blocks of up to 4 MiB (one request each, not one per page; a
/// block sigma0 refuses is asked for again smaller, down to one page), a
/// run of neighbouring pages getting neighbouring frames aligned as the
/// pages are (so it is mapped as large fpages). Their contents are
/// whatever they held.
fn frames_for<E: Env>(
    s: &mut Supervisor,
    env: &mut E,
    cp: &Checkpoint,
    keep: &[Option<u64>],
) -> Result<Vec<u64>, Error> {
    // how many pages from each one on lie next to each other
    let mut run_left = alloc::vec![1u64; cp.pages.len()];
    for i in (0..cp.pages.len().saturating_sub(1)).rev() {
        if cp.pages[i + 1].vaddr == cp.pages[i].vaddr.wrapping_add(4096) {
            run_left[i] = run_left[i + 1] + 1;
        }
    }
    let mut out = Vec::with_capacity(cp.pages.len());
    // fresh frames: the next one of the block mapped last, and how many
    // bytes of it are left (blocks never reach past the run they are for)
    let mut block: (u64, u64) = (0, 0);
    for ((p, left), kept) in cp.pages.iter().zip(run_left).zip(keep) {
        let b = if let Some(b) = *kept {
            b
        } else if let Some(b) = s.free_frames.pop() {
            // the free list is kept highest first: the lowest go first
            b
        } else {
            if block.1 == 0 {
                // rtcr's address aligned as the child's is (a run starts
                // here, or goes on after an unaligned block)
                let align = 1u64 << p.vaddr.trailing_zeros().clamp(12, FRAME_BLOCK_ORDER);
                s.frames_next = (s.frames_next + align - 1) & !(align - 1);
                block = (s.frames_next, fresh_block(s, env, left * 4096)?);
            }
            let b = block.0;
            block = (block.0 + 4096, block.1 - 4096);
            b
        };
        out.push(b);
    }
    Ok(out)
}

/// Maps a naturally aligned block of RAM from sigma0 at rtcr's next free
/// address, as large as alignment and `want` bytes allow (at most 4 MiB;
/// smaller if sigma0 refuses); its length.
fn fresh_block<E: Env>(s: &mut Supervisor, env: &mut E, want: u64) -> Result<u64, Error> {
    let at = s.frames_next;
    let mut order = FRAME_BLOCK_ORDER;
    while order > 12 && (at & ((1 << order) - 1) != 0 || want < 1 << order) {
        order -= 1;
    }
    loop {
        match l4_sys::sigma0::map_any(env, crate::state::SIGMA0, order, Fpage::mem(at, order, MemRights::empty())) {
            Ok(_) => {
                s.frames_next += 1 << order;
                return Ok(1 << order);
            }
            Err(_) if order > 12 => order -= 1,
            Err(e) => return Err(e.into()),
        }
    }
}

/// The top of a child's address space for [`unmap_all_but`]: the kernel
/// ends an unmap at the end of the task's space (and skips what is not
/// mapped a page-table level at a time), so this only has to be above it.
const SPACE_TOP: u64 = 1 << 48;

/// Unmaps everything the child's task maps except the pages of `stay` (in
/// page order): the fewest naturally aligned fpages that cover the gaps
/// between its runs, up to [`SPACE_TOP`], a batch of them per kernel call.
/// The UTCB area is the kernel's, not mapped from anyone: an unmap leaves
/// it alone.
fn unmap_all_but<E: Env>(s: &mut Supervisor, env: &mut E, stay: &[KeptPage]) -> Result<(), Error> {
    let mut fpages: Vec<Fpage> = Vec::new();
    let mut at = 0u64;
    for kp in stay {
        let va = kp.vpn << 12;
        if va > at {
            crate::checkpoint::aligned_blocks(at, (va - at) >> 12, MemRights::RWX, &mut fpages);
        }
        at = at.max(va + 4096);
    }
    if at < SPACE_TOP {
        crate::checkpoint::aligned_blocks(at, (SPACE_TOP - at) >> 12, MemRights::RWX, &mut fpages);
    }
    l4_sys::task::unmap_many(env, s.child_task(), &fpages, ALL_SPACES)?;
    Ok(())
}

/// Maps pages (child address, rtcr's frame, rights; in the child's address
/// order) into the child: each run whose child addresses and frames both
/// lie next to each other, with the same rights, as the fewest fpages
/// naturally aligned on both sides (one kernel call each, not one per
/// page).
fn map_runs<E: Env>(s: &mut Supervisor, env: &mut E, pages: impl Iterator<Item = (u64, u64, u8)>) -> Result<(), Error> {
    let mut run: Option<(u64, u64, u8, u64)> = None;
    let flush = |s: &mut Supervisor, env: &mut E, run: Option<(u64, u64, u8, u64)>| -> Result<(), Error> {
        let Some((mut va, mut b, rights, mut n)) = run else { return Ok(()) };
        while n > 0 {
            let align = (va | b).trailing_zeros().min(63);
            let fits = 63 - n.leading_zeros() + 12;
            let order = align.min(fits).max(12);
            let it = SendItem::map_mem(
                va,
                Fpage::mem(b, order, MemRights::from_bits_truncate(rights as u64)),
                Cache::Keep,
                false,
            );
            l4_sys::task::map(env, s.child_task(), crate::state::ME, it)?;
            va += 1 << order;
            b += 1 << order;
            n -= 1 << (order - 12);
        }
        Ok(())
    };
    for (va, b, rights) in pages {
        match run {
            Some((v0, b0, r0, n)) if r0 == rights && va == v0 + 4096 * n && b == b0 + 4096 * n => {
                run = Some((v0, b0, r0, n + 1));
            }
            _ => {
                flush(s, env, run)?;
                run = Some((va, b, rights, 1));
            }
        }
    }
    flush(s, env, run)
}

/// µs on the stamp counter since `from` (the KIP clock may tick in whole
/// milliseconds).
fn us_since<E: Env>(env: &mut E, from: u64) -> u64 {
    let ticks = env.stamp_now().wrapping_sub(from);
    ticks_us(env, ticks)
}

/// `ticks` of the stamp counter in µs.
fn ticks_us<E: Env>(env: &mut E, ticks: u64) -> u64 {
    (u128::from(ticks) * 1_000_000 / u128::from(env.stamp_hz().max(1))) as u64
}

/// Where a restore's time goes, phase by phase (µs, from the stamp
/// counter: the KIP clock may tick in whole milliseconds).
pub(crate) struct Phases {
    at: u64,
    pub done: Vec<(&'static str, u64)>,
}

impl Phases {
    pub(crate) fn start<E: Env>(env: &mut E) -> Self {
        Phases { at: env.stamp_now(), done: Vec::new() }
    }

    /// Ends the phase running since the last end (or the start).
    pub(crate) fn end<E: Env>(&mut self, env: &mut E, what: &'static str) {
        let now = env.stamp_now();
        let us = ticks_us(env, now.wrapping_sub(self.at));
        self.done.push((what, us));
        self.at = now;
    }
}

/// A restore that failed: why, and the frames it used (for another try).
#[derive(Debug)]
pub struct RestoreFailed {
    /// What went wrong.
    pub error: Error,
    /// rtcr's frames, free again.
    pub frames: Frames,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_keeps_its_cpu_where_there_is_one_and_moves_by_rule_where_not() {
        let four = 0b1111;
        let two = 0b0011;
        // the same CPU when it is online
        assert_eq!(cpu_here(3, &CpuSet::one(3), four), 3);
        // not online: the first online CPU of what it asked for
        assert_eq!(cpu_here(3, &CpuSet::new(0, 0, 0b1010), two), 1);
        assert_eq!(cpu_here(2, &CpuSet::ALL, two), 0);
        // nothing it asked for is online: the online CPUs in turn
        assert_eq!(cpu_here(2, &CpuSet::one(2), two), 0);
        assert_eq!(cpu_here(3, &CpuSet::one(3), two), 1);
        assert_eq!(cpu_here(3, &CpuSet::one(3), 0b0101), 2);
    }
}
