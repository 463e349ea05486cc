//! The L4Re environment rtcr serves an L4Re child (the L4Re contract):
//! the region map, the memory allocator and its dataspaces, the namespace
//! with `rom/`, and the parent. Each object the child gets is recorded like
//! a kernel object and is part of every checkpoint.
//!
//! The wire formats are L4Re's (`l4re/include/{rm,mem_alloc,dataspace,
//! namespace,parent}`), decoded by `l4_sys::l4re`. A request rtcr does not
//! serve is answered `-L4_ENOSYS` and reported ([`Supervisor::unserved`]),
//! so a program that needs more says so in rtcr's log.

use alloc::vec::Vec;

use l4_sys::error::Errno;
use l4_sys::MsgTag;

use crate::labels::Service;
use crate::regions::{RegionMap, RegionRec};
use crate::services::Reply;
use crate::state::{l4re_slots, Obj, ObjKind, Supervisor};
use crate::{Env, Error};

/// A request rtcr did not serve: the service, the tag's label and the words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unserved {
    /// The service it was sent to.
    pub service: Service,
    /// The protocol (the tag's label).
    pub protocol: i64,
    /// The first message words (the opcode first).
    pub words: Vec<u64>,
}

pub(crate) fn err(e: Errno) -> Reply {
    Reply::Words(-e.value(), Vec::new())
}

impl Supervisor {
    /// The services of the L4Re environment in moe's slots (after the
    /// root-task slots 1–7), and the region map with the program's own
    /// segments and stack in it.
    pub(crate) fn create_l4re_services<E: Env>(&mut self, env: &mut E) -> Result<(), Error> {
        let Some(l4re) = self.spec.l4re.clone() else { return Ok(()) };
        for (slot, svc) in [
            (l4re_slots::RM, Service::Rm),
            (l4re_slots::MEM_ALLOC, Service::MemAlloc),
            (l4re_slots::ROM, Service::Namespace),
            (l4re_slots::PARENT, Service::Parent),
        ] {
            self.give_service(env, slot, svc)?;
        }
        self.rm = self.empty_region_map(&l4re);
        self.kip_at.insert(l4re.kip >> 12);
        Ok(())
    }

    /// The region map of an L4Re child before anything is attached: rtcr's
    /// own ranges (trampoline, exchange pages, UTCB area, KIP) kept out.
    pub(crate) fn empty_region_map(&self, l4re: &crate::state::L4reSpec) -> RegionMap {
        let (ua, uo) = self.spec.utcb_area;
        let shared_end = self.spec.shared + 4096 * self.spec.max_threads as u64;
        let reserved = alloc::vec![
            (self.spec.shared, shared_end.max(self.spec.trampoline + 4096)),
            (self.spec.trampoline, self.spec.trampoline + 4096),
            (ua, ua + (1u64 << uo)),
            (l4re.kip & !0xfff, (l4re.kip & !0xfff) + 4096),
        ];
        RegionMap::new(l4re.rm_limit, reserved)
    }

    /// The program's segments and stack as regions of its region map
    /// (anonymous memory: their pages live at their addresses only).
    pub(crate) fn attach_initial_regions(&mut self) -> Result<(), Error> {
        let mut runs: Vec<(u64, u64, u8)> = Vec::new();
        let in_region = |va: u64| self.spec.regions.iter().any(|r| va >= r.start && va < r.start + r.len);
        for (va, bytes, rights) in self.spec.load.iter().filter(|(va, _, _)| !in_region(*va)) {
            let len = (bytes.len() as u64).div_ceil(4096).max(1) * 4096;
            match runs.last_mut() {
                Some(r) if r.0 + r.1 == *va && r.2 == *rights => r.1 += len,
                _ => runs.push((*va, len, *rights)),
            }
        }
        runs.extend(self.spec.regions.iter().map(|r| (r.start, r.len, r.rights)));
        for (start, size, rights) in runs {
            let flags = l4_sys::l4re::rm::rights_to_region_flags(rights);
            let r = RegionRec { start, size, flags, ds: None, offset: 0, client_cap: l4_sys::l4re::INVALID_CAP };
            // a page the stack shares with a segment is covered already
            if self.rm.insert_region(r).is_err() {
                return Err(Error::Protocol("the program's segments and stack overlap"));
            }
        }
        Ok(())
    }

    /// A new dataspace of `size` bytes (zero pages, allocated when first
    /// touched), or one showing boot module `rom`: its object, with a gate
    /// rtcr serves the dataspace protocol on as the child's capability.
    pub(crate) fn new_dataspace<E: Env>(
        &mut self,
        env: &mut E,
        size: u64,
        flags: u64,
        rom: Option<u32>,
    ) -> Result<u32, Error> {
        let d = self.dataspaces.len() as u32;
        let g = self.service_gate(env, Service::Dataspace, d)?;
        let obj = self.add_obj(Obj { kind: ObjKind::Dataspace(d), cap: g, child_view: g, rights: 7, server: false })?;
        self.dataspaces.push(crate::state::Ds { obj, size, flags, rom, frames: alloc::collections::BTreeMap::new() });
        Ok(obj)
    }

    /// Serves one request on an L4Re service.
    pub(crate) fn l4re_op<E: Env>(&mut self, env: &mut E, svc: Service, idx: u32, mr: &[u64], tag: MsgTag) -> Reply {
        let r = match svc {
            Service::Rm if tag.label() == l4_sys::Protocol::PageFault.label() => return self.rm_fault(env, mr, tag),
            Service::Rm => self.rm_op(env, mr, tag),
            Service::MemAlloc => self.mem_alloc_op(env, mr, tag),
            Service::Dataspace => self.ds_op(env, idx, mr, tag),
            Service::Namespace => self.ns_op(env, mr, tag),
            Service::Parent => self.parent_op(mr, tag),
            _ => None,
        };
        r.unwrap_or_else(|| {
            self.unserved.push(Unserved {
                service: svc,
                protocol: tag.label(),
                words: mr[..tag.words().min(mr.len()).min(12)].to_vec(),
            });
            err(Errno::NoSys)
        })
    }

    /// The page for a fault at `addr` in region `r`: the dataspace's page
    /// (allocated zeroed when first touched; a boot module's own page,
    /// read-only), or for a region without one, a fresh page of its own.
    pub(crate) fn region_fault<E: Env>(
        &mut self,
        env: &mut E,
        r: &RegionRec,
        addr: u64,
        write: bool,
    ) -> Option<l4_sys::item::SendItem> {
        let mut rights = l4_sys::l4re::rm::region_rights(r.flags);
        if rights == 0 || (write && rights & 2 == 0) {
            return None;
        }
        let vpn = addr >> 12;
        let backing = match r.ds {
            None => {
                if self.pages.len() >= self.spec.max_pages as usize {
                    return None;
                }
                self.frame(env).ok()?
            }
            Some(d) => {
                let pg = (r.offset + ((addr & !0xfff) - r.start)) >> 12;
                let ds = self.dataspaces.get(d as usize)?;
                if pg * 4096 >= ds.size {
                    return None;
                }
                let rom = ds.rom.is_some();
                if !rom && !ds.frames.contains_key(&pg) && self.pages.len() >= self.spec.max_pages as usize {
                    return None;
                }
                let b = self.ds_frame(env, d, pg)?;
                if rom {
                    // a boot module: its own page, never written, never in an image
                    if write {
                        return None;
                    }
                    rights &= !2;
                    return Some(l4_sys::item::SendItem::map_mem(
                        vpn << 12,
                        l4_sys::fpage::Fpage::mem(b, 12, l4_sys::fpage::MemRights::from_bits_truncate(rights as u64)),
                        l4_sys::item::Cache::Keep,
                        false,
                    ));
                }
                b
            }
        };
        self.pages.insert(vpn, crate::state::Page { backing, rights, writable: true, dirty: true });
        self.dirty.insert(vpn);
        Some(l4_sys::item::SendItem::map_mem(
            vpn << 12,
            l4_sys::fpage::Fpage::mem(backing, 12, l4_sys::fpage::MemRights::from_bits_truncate(rights as u64)),
            l4_sys::item::Cache::Keep,
            false,
        ))
    }

    fn rm_fault<E: Env>(&mut self, env: &mut E, mr: &[u64], tag: MsgTag) -> Reply {
        if tag.words() < 2 {
            return err(Errno::Inval);
        }
        let addr = mr[0] & !7;
        let write = mr[0] & 2 != 0;
        match self.resolve_fault(env, addr, write) {
            Some(item) => Reply::Item(0, item, None),
            None => err(Errno::Fault),
        }
    }

    /// The dataspace a request's `k`-th item names (one of rtcr's gates).
    fn item_ds(&self, mr: &[u64], tag: MsgTag) -> Option<u32> {
        (0..tag.items()).find_map(|k| match self.item_label(mr, tag, k)? {
            (Service::Dataspace, d) if (d as usize) < self.dataspaces.len() => Some(d),
            _ => None,
        })
    }

    fn rm_op<E: Env>(&mut self, env: &mut E, mr: &[u64], tag: MsgTag) -> Option<Reply> {
        use l4_sys::l4re::rm::{self as rm, op};
        if tag.label() != l4_sys::l4re::PROTO_RM {
            return None;
        }
        let words = &mr[..tag.words().min(mr.len())];
        let refused = |r: crate::regions::Refused| match r {
            crate::regions::Refused::NoRoom => err(Errno::AddrNotAvail),
            crate::regions::Refused::Invalid => err(Errno::Inval),
            crate::regions::Refused::NotFound => err(Errno::NoEnt),
        };
        match rm::opcode(words)? {
            op::ATTACH => {
                let Some(a) = rm::Attach::decode(words) else { return Some(err(Errno::Inval)) };
                let anonymous = a.flags & rm::ANONYMOUS != 0;
                let ds = if anonymous { None } else { self.item_ds(mr, tag) };
                if !anonymous && ds.is_none() {
                    // a dataspace rtcr did not hand out (or none at all)
                    return Some(err(Errno::Inval));
                }
                let size = (a.size + 0xfff) & !0xfff;
                if let Some(d) = ds {
                    let ds = &self.dataspaces[d as usize];
                    if a.offset % 4096 != 0 || a.offset.checked_add(size).is_none_or(|e| e > ds.size) {
                        return Some(err(Errno::Inval));
                    }
                    if ds.rom.is_some() && a.flags & rm::W != 0 {
                        return Some(err(Errno::Perm));
                    }
                }
                let r = RegionRec {
                    start: a.start & !0xfff,
                    size,
                    flags: a.flags & 0xffff,
                    ds,
                    offset: a.offset,
                    client_cap: a.client_cap,
                };
                let search = a.flags & rm::SEARCH_ADDR != 0;
                Some(match self.rm.attach(r, search, u32::from(a.align), a.flags & rm::IN_AREA != 0) {
                    Ok(at) => Reply::Words(0, alloc::vec![at + (a.start & 0xfff) * u64::from(!search)]),
                    Err(e) => refused(e),
                })
            }
            op::DETACH => {
                let Some(d) = rm::Detach::decode(words) else { return Some(err(Errno::Inval)) };
                let gone = self.rm.detach(d.addr, d.size.max(1));
                let Some(first) = gone.first().copied() else { return Some(err(Errno::NoEnt)) };
                for r in &gone {
                    self.drop_region_pages(env, r);
                }
                Some(Reply::Words(rm::DETACHED_DS, alloc::vec![first.start, first.size, first.client_cap]))
            }
            op::FIND => {
                if words.len() < 3 {
                    return Some(err(Errno::Inval));
                }
                Some(match self.rm.find(words[1], words[2]).copied() {
                    Some(r) => Reply::Words(0, alloc::vec![r.start, r.size, r.flags, r.offset, r.client_cap]),
                    None => err(Errno::NoEnt),
                })
            }
            op::RESERVE_AREA => {
                let Some(a) = rm::ReserveArea::decode(words) else { return Some(err(Errno::Inval)) };
                let area = crate::regions::AreaRec { start: a.start, size: a.size, flags: a.flags };
                Some(match self.rm.reserve_area(area, a.flags & rm::SEARCH_ADDR != 0, u32::from(a.align)) {
                    Ok(at) => Reply::Words(0, alloc::vec![at]),
                    Err(e) => refused(e),
                })
            }
            op::FREE_AREA if words.len() >= 2 => {
                let start = self.rm.areas().find(|a| words[1] >= a.start && words[1] < a.start + a.size)?.start;
                Some(match self.rm.free_area(start) {
                    Ok(()) => Reply::Words(0, Vec::new()),
                    Err(e) => refused(e),
                })
            }
            _ => None,
        }
    }

    /// Takes a detached region's pages out of the child and out of the
    /// record; the pages of a region without a dataspace are free again.
    fn drop_region_pages<E: Env>(&mut self, env: &mut E, r: &RegionRec) {
        let mut va = r.start;
        while va < r.end() {
            // the largest naturally aligned block that fits
            let mut order = 12;
            while order < 30 && va.is_multiple_of(1u64 << (order + 1)) && va + (1u64 << (order + 1)) <= r.end() {
                order += 1;
            }
            let fp = l4_sys::fpage::Fpage::mem(va, order, l4_sys::fpage::MemRights::RWX);
            let _ = l4_sys::task::unmap(env, self.child_task(), fp, l4_sys::task::unmap_mask::ALL_SPACES);
            va += 1u64 << order;
        }
        let vpns: Vec<u64> = self.pages.range(r.start >> 12..r.end() >> 12).map(|(v, _)| *v).collect();
        for vpn in vpns {
            let p = self.pages.remove(&vpn);
            self.dirty.remove(vpn);
            self.pending.remove(&vpn);
            self.shadow.remove(&vpn);
            if let (Some(p), None) = (p, r.ds) {
                self.free_frames.push(p.backing);
            }
        }
    }

    /// `parent->signal(sig, val)`: sig 0 is the exit with code `val`; it
    /// is not answered (as moe does not: the exiting thread sleeps for
    /// ever), and the driver takes the child down.
    fn parent_op(&mut self, mr: &[u64], tag: MsgTag) -> Option<Reply> {
        let words = &mr[..tag.words().min(mr.len())];
        if tag.label() != l4_sys::l4re::PROTO_PARENT
            || words.len() < 3
            || l4_sys::l4re::opcode(words)? != l4_sys::l4re::PARENT_SIGNAL
        {
            return None;
        }
        if words[1] == 0 {
            self.exited = Some(words[2]);
            return Some(Reply::None);
        }
        Some(Reply::Words(0, Vec::new()))
    }

    /// `Mem_alloc::alloc`: a new dataspace (factory protocol, object
    /// protocol `Dataspace`), under the child's page quota.
    fn mem_alloc_op<E: Env>(&mut self, env: &mut E, mr: &[u64], tag: MsgTag) -> Option<Reply> {
        use l4_sys::l4re::dataspace::{Alloc, FIXED_PADDR, RWX};
        let words = &mr[..tag.words().min(mr.len())];
        if tag.label() != l4_sys::Protocol::Factory.label() {
            return None;
        }
        if *words.first()? as i64 != l4_sys::l4re::PROTO_DATASPACE {
            // namespaces, region maps, logs, schedulers: not from rtcr
            return Some(err(Errno::NoDev));
        }
        let Some(a) = Alloc::decode(words) else { return Some(err(Errno::Inval)) };
        if a.flags & FIXED_PADDR != 0 {
            return Some(err(Errno::Inval));
        }
        let size = a.size.checked_add(0xfff).map(|s| s & !0xfff)?;
        let pages = size / 4096;
        let promised: u64 = self.dataspaces.iter().filter(|d| d.rom.is_none()).map(|d| d.size / 4096).sum();
        if self.created >= self.spec.max_objects || promised + pages > u64::from(self.spec.max_pages) {
            return Some(err(Errno::NoMem));
        }
        Some(match self.new_dataspace(env, size, RWX, None) {
            Ok(obj) => {
                self.created += 1;
                Reply::Item(0, self.cap_item(obj), Some(obj))
            }
            Err(_) => err(Errno::NoMem),
        })
    }

    /// The dataspace protocol on dataspace `d`'s gate.
    fn ds_op<E: Env>(&mut self, env: &mut E, d: u32, mr: &[u64], tag: MsgTag) -> Option<Reply> {
        use l4_sys::l4re::dataspace::{op, W};
        let words = &mr[..tag.words().min(mr.len())];
        if tag.label() != l4_sys::l4re::PROTO_DATASPACE {
            return None;
        }
        let ds = self.dataspaces.get(d as usize)?;
        let (size, rom) = (ds.size, ds.rom.is_some());
        let flags = if rom { ds.flags & !W } else { ds.flags };
        let in_range = |off: u64, len: u64| off.checked_add(len).is_some_and(|e| e <= size);
        Some(match l4_sys::l4re::opcode(words)? {
            op::INFO => Reply::Words(0, alloc::vec![size, flags]),
            op::MAP_INFO => Reply::Words(0, alloc::vec![0, 0]),
            op::ALLOCATE if words.len() >= 3 => {
                if in_range(words[1], words[2]) {
                    Reply::Words(0, Vec::new())
                } else {
                    err(Errno::Range)
                }
            }
            op::CLEAR if words.len() >= 3 => {
                if rom {
                    return Some(err(Errno::Access));
                }
                let (off, len) = (words[1], words[2].min(size.saturating_sub(words[1])));
                if off >= size {
                    return Some(err(Errno::Range));
                }
                match self.write_ds(env, d, off, len, None) {
                    Ok(()) => Reply::Words(0, Vec::new()),
                    Err(_) => err(Errno::NoMem),
                }
            }
            op::COPY_IN if words.len() >= 4 => {
                if rom {
                    return Some(err(Errno::Access));
                }
                let Some(src) = self.item_ds(mr, tag) else { return Some(err(Errno::Inval)) };
                let (dst_off, src_off, len) = (words[1], words[2], words[3]);
                let src_size = self.dataspaces[src as usize].size;
                if !in_range(dst_off, len) || src_off.checked_add(len).is_none_or(|e| e > src_size) {
                    return Some(err(Errno::Range));
                }
                match self.write_ds(env, d, dst_off, len, Some((src, src_off))) {
                    Ok(()) => Reply::Words(0, Vec::new()),
                    Err(_) => err(Errno::NoMem),
                }
            }
            op::MAP if words.len() >= 4 => {
                // read-only: rtcr cannot tell where the child's receive
                // window puts the page, so it must not be written there
                // behind the dirty tracking
                if words[3] & W != 0 {
                    return Some(err(Errno::Perm));
                }
                let off = words[1] & !0xfff;
                if off >= size {
                    return Some(err(Errno::Range));
                }
                match self.ds_frame(env, d, off >> 12) {
                    Some(b) => Reply::Item(
                        0,
                        l4_sys::item::SendItem::map_mem(
                            words[2] & !0xfff,
                            l4_sys::fpage::Fpage::mem(b, 12, l4_sys::fpage::MemRights::RX),
                            l4_sys::item::Cache::Keep,
                            false,
                        ),
                        None,
                    ),
                    None => err(Errno::NoMem),
                }
            }
            _ => return None,
        })
    }

    /// rtcr's frame (or a boot module's page) of page `pg` of dataspace `d`,
    /// allocated zeroed when first asked for.
    fn ds_frame<E: Env>(&mut self, env: &mut E, d: u32, pg: u64) -> Option<u64> {
        let ds = self.dataspaces.get(d as usize)?;
        if let Some(r) = ds.rom {
            let m = self.spec.l4re.as_ref()?.roms.get(r as usize)?;
            return Some(m.addr + pg * 4096);
        }
        if let Some(b) = ds.frames.get(&pg) {
            return Some(*b);
        }
        let b = self.frame(env).ok()?;
        self.dataspaces[d as usize].frames.insert(pg, b);
        Some(b)
    }

    /// Writes `[off, off + len)` of dataspace `d`: zeros, or the bytes of
    /// dataspace `src` from its offset. The child's pages that show the
    /// frames count as written (their last cut's copy is taken first).
    fn write_ds<E: Env>(
        &mut self,
        env: &mut E,
        d: u32,
        off: u64,
        len: u64,
        src: Option<(u32, u64)>,
    ) -> Result<(), Error> {
        let mut done = 0;
        let mut buf = alloc::vec![0u8; 4096];
        while done < len {
            let at = off + done;
            let (pg, in_pg) = (at >> 12, at & 0xfff);
            let n = (4096 - in_pg).min(len - done);
            let dst = self.ds_frame(env, d, pg).ok_or(Error::Quota("pages"))?;
            // the pages that show this frame: their last cut's copy first
            let showing: Vec<u64> = self.pages.iter().filter(|(_, p)| p.backing == dst).map(|(v, _)| *v).collect();
            for vpn in &showing {
                if self.pending.remove(vpn) {
                    self.copy_to_shadow(env, *vpn)?;
                }
                self.dirty.insert(*vpn);
                if let Some(p) = self.pages.get_mut(vpn) {
                    p.dirty = true;
                }
            }
            let chunk = &mut buf[..n as usize];
            match src {
                None => chunk.fill(0),
                Some((s, s_off)) => {
                    // byte by byte across the source's page boundary
                    let mut k = 0;
                    while k < n {
                        let sa = s_off + done + k;
                        let m = (4096 - (sa & 0xfff)).min(n - k);
                        let sf = self.ds_frame(env, s, sa >> 12).ok_or(Error::Quota("pages"))?;
                        env.read_mem(sf + (sa & 0xfff), &mut chunk[k as usize..(k + m) as usize])?;
                        k += m;
                    }
                }
            }
            env.write_mem(dst + in_pg, chunk)?;
            done += n;
        }
        Ok(())
    }

    /// The namespace with `rom/`: a query of a boot module's name gives a
    /// read-only dataspace of it (one per module, made on the first query).
    fn ns_op<E: Env>(&mut self, env: &mut E, mr: &[u64], tag: MsgTag) -> Option<Reply> {
        let words = &mr[..tag.words().min(mr.len())];
        if tag.label() != l4_sys::l4re::PROTO_NAMESPACE {
            return None;
        }
        if l4_sys::l4re::opcode(words)? != l4_sys::l4re::NS_QUERY {
            // register_obj, unlink: rom/ is read-only
            return Some(err(Errno::Access));
        }
        let mut buf = [0u8; 64];
        let Some(name) = l4_sys::l4re::name_at(words, 1, &mut buf) else { return Some(err(Errno::NoEnt)) };
        let name = name.strip_suffix(b"\0").unwrap_or(name);
        let roms = self.spec.l4re.as_ref().map(|l| l.roms.clone()).unwrap_or_default();
        let Some(r) = roms.iter().position(|m| m.name.as_bytes() == name) else { return Some(err(Errno::NoEnt)) };
        let existing = self.dataspaces.iter().find(|d| d.rom == Some(r as u32)).map(|d| d.obj);
        let obj = match existing {
            Some(o) => o,
            None => {
                match self.new_dataspace(env, (roms[r].len + 0xfff) & !0xfff, l4_sys::l4re::rm::R, Some(r as u32)) {
                    Ok(o) => o,
                    Err(_) => return Some(err(Errno::NoMem)),
                }
            }
        };
        Some(Reply::Item(0, self.cap_item(obj), Some(obj)))
    }

    /// A dataspace page shown at two addresses is one frame: when it was
    /// written through one of them, the copy of the cut holds for every
    /// address that shows it (the restore fills the frame once, from the
    /// lowest address). Only where some dataspace is attached twice.
    pub(crate) fn sync_alias_shadows(&mut self, copied: &[u64]) {
        let mut seen = alloc::collections::BTreeSet::new();
        if !self.rm.regions().filter_map(|r| r.ds).any(|d| !seen.insert(d)) {
            return;
        }
        let mut by_frame: alloc::collections::BTreeMap<u64, Vec<u64>> = alloc::collections::BTreeMap::new();
        for (vpn, p) in &self.pages {
            by_frame.entry(p.backing).or_default().push(*vpn);
        }
        for vpn in copied {
            let Some(p) = self.pages.get(vpn) else { continue };
            let Some(data) = self.shadow.get(vpn).cloned() else { continue };
            for alias in by_frame.get(&p.backing).into_iter().flatten().filter(|a| *a != vpn) {
                self.shadow.insert(*alias, data.clone());
            }
        }
    }

    /// The pages of dataspaces no region shows, read now (for the image:
    /// nothing else holds them).
    #[allow(clippy::type_complexity)]
    pub(crate) fn loose_pages<E: Env>(
        &mut self,
        env: &mut E,
    ) -> Result<alloc::collections::BTreeMap<u32, Vec<(u64, Vec<u8>)>>, Error> {
        let mut out = alloc::collections::BTreeMap::new();
        for (d, ds) in self.dataspaces.iter().enumerate() {
            if ds.rom.is_some() {
                continue;
            }
            for (&pg, &b) in &ds.frames {
                let shown = self.rm.regions().any(|r| {
                    r.ds == Some(d as u32)
                        && pg * 4096 >= r.offset
                        && pg * 4096 < r.offset + r.size
                        && self.pages.contains_key(&((r.start + pg * 4096 - r.offset) >> 12))
                });
                if shown {
                    continue;
                }
                let mut page = alloc::vec![0u8; 4096];
                env.read_mem(b, &mut page)?;
                if page.iter().all(|&x| x == 0) {
                    page.clear();
                }
                out.entry(d as u32).or_insert_with(Vec::new).push((pg * 4096, page));
            }
        }
        Ok(out)
    }
}
