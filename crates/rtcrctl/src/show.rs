//! How records read to a person, shared by `inspect` and `diff` so that the
//! same object or slot is written the same way in both.
//!
//! Rights are written as the kernel debugger writes them (`DSW`, `-` for a
//! missing right) so a cap table from an image can be laid beside a JDB
//! object-space dump; page rights as `rwx`.

use std::fmt::Write;

use rtcr_image::{Arch, CapRecord, Checkpoint, ObjRef, ObjectRecord, PageRecord, Service, ThreadState};

/// Capability rights as JDB shows them: D, S, W or `-` (R is implied: no
/// capability is mapped without it).
pub fn cap_rights(rights: u8) -> String {
    [(8, 'D'), (2, 'S'), (1, 'W')].iter().map(|&(bit, c)| if rights & bit != 0 { c } else { '-' }).collect()
}

/// Page rights: r, w, x or `-` (R 4, W 2, X 1).
pub fn page_rights(rights: u8) -> String {
    [(4, 'r'), (2, 'w'), (1, 'x')].iter().map(|&(bit, c)| if rights & bit != 0 { c } else { '-' }).collect()
}

/// A service's name.
pub fn service_name(s: Service) -> &'static str {
    match s {
        Service::Task => "task",
        Service::Factory => "factory",
        Service::Thread => "thread",
        Service::Pager => "pager",
        Service::Log => "log",
        Service::Icu => "icu",
        Service::Scheduler => "scheduler",
        Service::Exception => "exception",
        Service::Irq => "irq",
        Service::Rm => "rm",
        Service::MemAlloc => "mem_alloc",
        Service::Dataspace => "dataspace",
        Service::Namespace => "namespace",
        Service::Parent => "parent",
    }
}

/// An object's type, short: `gate`, `irq`, `svc:factory` (a gate rtcr
/// serves in the service's place).
pub fn kind(obj: &ObjectRecord) -> String {
    match obj {
        ObjectRecord::Task => "task".into(),
        ObjectRecord::Thread { .. } => "thread".into(),
        ObjectRecord::Gate { .. } => "gate".into(),
        ObjectRecord::Irq { .. } => "irq".into(),
        ObjectRecord::Semaphore { .. } => "semaphore".into(),
        ObjectRecord::Service { service, .. } => format!("svc:{}", service_name(*service)),
        ObjectRecord::Kip { .. } => "kip".into(),
        ObjectRecord::Dataspace { .. } => "dataspace".into(),
        ObjectRecord::Region { .. } => "region".into(),
        ObjectRecord::Area { .. } => "area".into(),
    }
}

/// The label a gate, IRQ or service carries, if any.
pub fn label(obj: &ObjectRecord) -> Option<u64> {
    match *obj {
        ObjectRecord::Gate { label, .. } | ObjectRecord::Irq { label, .. } | ObjectRecord::Service { label, .. } => {
            Some(label)
        }
        _ => None,
    }
}

/// The object a gate or IRQ is bound to, if any.
pub fn bound(obj: &ObjectRecord) -> Option<ObjRef> {
    match *obj {
        ObjectRecord::Gate { bound, .. } | ObjectRecord::Irq { bound, .. } => bound,
        _ => None,
    }
}

/// A binding target: `thread 0 (#5)`; `#5` if the object is not a thread.
pub fn bound_to(cp: &Checkpoint, obj: ObjRef) -> String {
    match cp.objects.get(obj as usize) {
        Some(ObjectRecord::Thread { thread }) => format!("thread {thread} (#{obj})"),
        _ => format!("#{obj}"),
    }
}

/// One object, in a line.
pub fn object(cp: &Checkpoint, obj: &ObjectRecord) -> String {
    let mut s = kind(obj);
    match *obj {
        ObjectRecord::Task => s.push_str(", the child's own task"),
        ObjectRecord::Kip { vaddr } => {
            let _ = write!(s, ", mapped at {vaddr:#x} in the child");
        }
        ObjectRecord::Thread { thread } => {
            let _ = write!(s, ", thread record {thread}");
        }
        ObjectRecord::Dataspace { size, flags, ref rom, ref loose } => {
            let _ = write!(s, ", {size:#x} bytes, flags {flags:#x}");
            if let Some(r) = rom {
                let _ = write!(s, ", rom/{r}");
            }
            if !loose.is_empty() {
                let _ = write!(s, ", {} pages no region shows", loose.len());
            }
        }
        ObjectRecord::Region { start, size, flags, ds, offset, .. } => {
            let _ = write!(s, " {start:#x}..{:#x}, flags {flags:#x}, ", start + size);
            s.push_str(&ds.map_or("no dataspace".into(), |d| format!("dataspace #{d} at offset {offset:#x}")));
        }
        ObjectRecord::Area { start, size, flags } => {
            let _ = write!(s, " {start:#x}..{:#x}, flags {flags:#x}", start + size);
        }
        ObjectRecord::Gate { label, bound } => {
            let _ = write!(s, ", label {label:#x}, ");
            s.push_str(&bound.map_or("unbound".into(), |b| format!("bound to {}", bound_to(cp, b))));
        }
        ObjectRecord::Irq { label, bound, hw_line, pending } => {
            let _ = write!(s, ", label {label:#x}, ");
            s.push_str(&bound.map_or("unbound".into(), |b| format!("bound to {}", bound_to(cp, b))));
            match hw_line {
                Some(line) => {
                    let _ = write!(s, ", hw line {line}");
                }
                None => s.push_str(", no hw line"),
            }
            if pending {
                s.push_str(", pending");
            }
        }
        ObjectRecord::Semaphore { count } => {
            let _ = write!(s, ", count {count}");
        }
        ObjectRecord::Service { label, .. } => {
            let _ = write!(s, ", label {label:#x}");
        }
    }
    s
}

/// The cap-table columns after the slot: type, rights, server, label, bound.
pub fn cap_columns(cp: &Checkpoint, cap: &CapRecord) -> [String; 5] {
    let obj = cp.objects.get(cap.object as usize);
    [
        obj.map_or_else(|| format!("#{}?", cap.object), kind),
        cap_rights(cap.rights),
        if cap.server { "server".into() } else { "-".into() },
        obj.and_then(label).map_or("-".into(), |l| format!("{l:#x}")),
        obj.and_then(bound).map_or("-".into(), |b| bound_to(cp, b)),
    ]
}

/// One slot of the cap table, in a line (for `diff`):
/// `gate DSW server, label 0xbeef0000, bound to thread 0 (#3), object #5`.
pub fn cap(cp: &Checkpoint, cap: &CapRecord) -> String {
    let obj = cp.objects.get(cap.object as usize);
    let mut s = format!("{} {}", obj.map_or_else(|| "?".into(), kind), cap_rights(cap.rights));
    if cap.server {
        s.push_str(" server");
    }
    if let Some(l) = obj.and_then(label) {
        let _ = write!(s, ", label {l:#x}");
    }
    if let Some(b) = obj.and_then(bound) {
        let _ = write!(s, ", bound to {}", bound_to(cp, b));
    }
    let _ = write!(s, ", object #{}", cap.object);
    s
}

/// A thread state.
pub fn state(s: ThreadState) -> &'static str {
    match s {
        ThreadState::Running => "running",
        ThreadState::InKernel => "in-kernel",
        ThreadState::Dead => "dead",
        ThreadState::InCall { .. } => "in-call",
    }
}

/// Instruction and stack pointer from a register set of `arch`.
pub fn ip_sp(arch: Arch, regs: &[u64]) -> (Option<u64>, Option<u64>) {
    (regs.get(arch.ip_index()).copied(), regs.get(arch.sp_index()).copied())
}

/// A register value, or `?` if the set is too short.
pub fn reg(v: Option<u64>) -> String {
    v.map_or("?".into(), |v| format!("{v:#x}"))
}

/// A run of contiguous pages with the same rights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    /// First address.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    /// Pages in it.
    pub pages: usize,
    /// Their rights.
    pub rights: u8,
}

/// `(vaddr, rights)` pairs collapsed into runs, in address order.
pub fn runs(mut pages: Vec<(u64, u8)>, page_size: u64) -> Vec<Run> {
    pages.sort_unstable();
    let mut out: Vec<Run> = Vec::new();
    for (vaddr, rights) in pages {
        match out.last_mut() {
            Some(r) if r.end == vaddr && r.rights == rights => {
                r.end = vaddr.saturating_add(page_size);
                r.pages += 1;
            }
            _ => out.push(Run { start: vaddr, end: vaddr.saturating_add(page_size), pages: 1, rights }),
        }
    }
    out
}

/// Runs of `pages`.
pub fn page_runs(pages: &[PageRecord], page_size: u64) -> Vec<Run> {
    runs(pages.iter().map(|p| (p.vaddr, p.rights)).collect(), page_size)
}

/// A run, in a line: `0x400000-0x403000  3 pages  r-x`.
pub fn run(r: &Run) -> String {
    let n = if r.pages == 1 { "1 page".to_string() } else { format!("{} pages", r.pages) };
    format!("{:#x}-{:#x}  {n}  {}", r.start, r.end, page_rights(r.rights))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rights_like_jdb() {
        assert_eq!(cap_rights(0xF), "DSW");
        assert_eq!(cap_rights(0x6), "-S-");
        assert_eq!(cap_rights(0x4), "---");
        assert_eq!(page_rights(5), "r-x");
    }

    #[test]
    fn runs_collapse_contiguous_equal_rights() {
        let r = runs(vec![(0x3000, 4), (0x1000, 4), (0x2000, 4), (0x4000, 6), (0x9000, 6)], 0x1000);
        assert_eq!(
            r,
            vec![
                Run { start: 0x1000, end: 0x4000, pages: 3, rights: 4 },
                Run { start: 0x4000, end: 0x5000, pages: 1, rights: 6 },
                Run { start: 0x9000, end: 0xa000, pages: 1, rights: 6 },
            ]
        );
    }
}
