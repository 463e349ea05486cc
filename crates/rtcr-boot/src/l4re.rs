//! The start of an L4Re program: what the L4Re loader (moe's, ned's) leaves
//! on a new program's stack, and what the program's PT_L4_AUX descriptors
//! ask for. rtcr builds the same, so an unmodified L4Re program built by the
//! L4Re make starts under rtcr as it would under moe.
//!
//! Facts (l4re-core: `libloader/include/loader`, `libloader/include/elf`,
//! `l4re/include/env.h`, `l4re/include/l4aux.h`, `l4re/include/elf_aux.h`,
//! musl's `__init_libc`):
//!
//! - the stack pointer points at `argc`, then `argv[]` and a 0, `envp[]` and
//!   a 0, then auxv pairs ending in `AT_NULL`; `AT_L4_ENV` (0xf1) points at
//!   the `l4re_env_t`, `AT_L4_KIP` (0xf2) names the KIP's address,
//!   `AT_L4_AUX` (0xf0) points at an `l4re_aux_t`;
//! - `l4re_env_t` is 14 words: parent, rm, mem_alloc, log, main_thread,
//!   factory, scheduler, itas, dbg_events, first_free_cap,
//!   first_free_reply_cap, utcb_area (an fpage), first_free_utcb, and a
//!   pointer to the named capabilities: entries of {cap, flags, name[16]},
//!   ended by one whose flags are `~0`;
//! - the PT_L4_AUX segment holds {type, length, value…} descriptors: 2 stack
//!   size, 3 stack address, 4 KIP address, 5 ex_regs flags (1 is a VMA to
//!   keep free); without them the stack is 2 MiB at 0x8000_0000.

use alloc::string::String;
use alloc::vec::Vec;

/// `L4_INVALID_CAP`.
pub const INVALID_CAP: u64 = !0u64 << 11;
/// Auxv type of the `l4re_aux_t` pointer.
pub const AT_L4_AUX: u64 = 0xf0;
/// Auxv type of the `l4re_env_t` pointer.
pub const AT_L4_ENV: u64 = 0xf1;
/// Auxv type of the KIP address.
pub const AT_L4_KIP: u64 = 0xf2;
const AT_NULL: u64 = 0;
const AT_PHDR: u64 = 3;
const AT_PHENT: u64 = 4;
const AT_PHNUM: u64 = 5;
const AT_PAGESZ: u64 = 6;
const AT_UID: u64 = 11;
const AT_EUID: u64 = 12;
const AT_GID: u64 = 13;
const AT_EGID: u64 = 14;

/// What a program's PT_L4_AUX descriptors ask for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Aux {
    /// Lowest address of the first thread's stack.
    pub stack_addr: u64,
    /// Its size in bytes.
    pub stack_size: u64,
    /// Where the program expects the KIP (`None`: the loader's default).
    pub kip_addr: Option<u64>,
    /// ex_regs flags to start the first thread with (`None`: the default).
    pub ex_regs_flags: Option<u64>,
    /// Address ranges the program wants kept free (start, end).
    pub vmas: Vec<(u64, u64)>,
}

/// What is wrong with a PT_L4_AUX segment or a start-up request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L4reError {
    /// A descriptor's length is shorter than its header or runs past the
    /// segment (offset of the descriptor).
    BadDescriptor(usize),
    /// The stack is not page aligned, empty, or wraps around.
    BadStack {
        /// Its address.
        addr: u64,
        /// Its size.
        size: u64,
    },
    /// The arguments, environment and `l4re_env_t` do not fit the stack.
    StackTooSmall,
}

impl core::fmt::Display for L4reError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            L4reError::BadDescriptor(at) => write!(f, "L4Re aux descriptor at offset {at} is malformed"),
            L4reError::BadStack { addr, size } => {
                write!(f, "L4Re stack {addr:#x}+{size:#x} is not page aligned or wraps")
            }
            L4reError::StackTooSmall => write!(f, "the start-up data do not fit the L4Re program's stack"),
        }
    }
}

impl Aux {
    /// The defaults of the L4Re loader (`libloader/include/elf`).
    pub const DEFAULT_STACK_ADDR: u64 = 0x8000_0000;
    /// 0x40000 words.
    pub const DEFAULT_STACK_SIZE: u64 = 0x40000 * 8;

    /// Reads the descriptors of a PT_L4_AUX segment.
    pub fn parse(bytes: &[u8]) -> Result<Self, L4reError> {
        let mut aux = Aux {
            stack_addr: Self::DEFAULT_STACK_ADDR,
            stack_size: Self::DEFAULT_STACK_SIZE,
            kip_addr: None,
            ex_regs_flags: None,
            vmas: Vec::new(),
        };
        let word = |at: usize| -> Option<u64> { Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?)) };
        let mut at = 0;
        while at + 16 <= bytes.len() {
            let (ty, len) = (word(at).unwrap_or(0), word(at + 8).unwrap_or(0));
            if ty == 0 {
                break;
            }
            let len = usize::try_from(len).map_err(|_| L4reError::BadDescriptor(at))?;
            if len < 16 || at.checked_add(len).is_none_or(|e| e > bytes.len()) {
                return Err(L4reError::BadDescriptor(at));
            }
            let v = word(at + 16);
            match (ty, v) {
                (1, Some(start)) => {
                    let end = word(at + 24).ok_or(L4reError::BadDescriptor(at))?;
                    aux.vmas.push((start, end));
                }
                (2, Some(v)) => aux.stack_size = v,
                (3, Some(v)) => aux.stack_addr = v,
                (4, Some(v)) => aux.kip_addr = Some(v),
                (5, Some(v)) => aux.ex_regs_flags = Some(v),
                (1..=5, None) => return Err(L4reError::BadDescriptor(at)),
                _ => {} // a newer descriptor: its length lets it be skipped
            }
            at += len;
        }
        let end = aux.stack_addr.checked_add(aux.stack_size);
        if !aux.stack_addr.is_multiple_of(4096)
            || !aux.stack_size.is_multiple_of(4096)
            || aux.stack_size == 0
            || end.is_none()
        {
            return Err(L4reError::BadStack { addr: aux.stack_addr, size: aux.stack_size });
        }
        Ok(aux)
    }

    /// The stack's top (its first address past it).
    pub fn stack_top(&self) -> u64 {
        self.stack_addr + self.stack_size
    }
}

/// The capability slots and values of an `l4re_env_t` (slot numbers, not
/// capability indices: the builder shifts them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvCaps {
    /// Parent.
    pub parent: u64,
    /// Region map.
    pub rm: u64,
    /// Memory allocator.
    pub mem_alloc: u64,
    /// Log (a Vcon).
    pub log: u64,
    /// The first thread.
    pub main_thread: u64,
    /// Factory.
    pub factory: u64,
    /// Scheduler.
    pub scheduler: u64,
    /// Debug events (`None`: the invalid capability).
    pub dbg_events: Option<u64>,
    /// First slot the program may use for itself (written as a slot
    /// number: `l4re_env_t::first_free_cap` is one, unlike the others).
    pub first_free_cap: u64,
    /// The UTCB area as an `l4_fpage_t` word (address, log2 size in bits
    /// 6–11, the memory type in bits 4–5).
    pub utcb_area: u64,
    /// First UTCB address the program may use.
    pub first_free_utcb: u64,
    /// The named capabilities (name of at most 16 bytes, slot).
    pub named: Vec<(String, u64)>,
}

/// Size of `l4re_env_t` in bytes (14 words).
pub const ENV_SIZE: usize = 14 * 8;
/// Size of one `l4re_env_cap_entry_t`.
pub const CAP_ENTRY_SIZE: usize = 32;

/// The start-up stack: `bytes` go to `[top - bytes.len(), top)`, and the
/// first thread starts with its stack pointer at `sp`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartStack {
    /// The contents of the top of the stack.
    pub bytes: Vec<u8>,
    /// The initial stack pointer (points at `argc`, 16-byte aligned).
    pub sp: u64,
    /// Where the `l4re_env_t` is.
    pub env: u64,
}

/// What goes onto the start-up stack besides the capabilities.
#[derive(Clone, Debug)]
pub struct StartArgs<'a> {
    /// argv (argv[0] is the program's name).
    pub argv: &'a [&'a str],
    /// The environment strings (`NAME=value`).
    pub envp: &'a [&'a str],
    /// The KIP's address in the program.
    pub kip: u64,
    /// The slot of the KIP's dataspace for the `l4re_aux_t`, if any.
    pub kip_ds: Option<u64>,
    /// The program headers in the program's memory: address, count (the
    /// libc finds its PT_TLS through them: `AT_PHDR`, `AT_PHNUM`).
    pub phdrs: Option<(u64, u64)>,
}

/// Builds an L4Re program's start-up stack below `top`, at most `room`
/// bytes of it.
pub fn start_stack(top: u64, room: u64, args: &StartArgs<'_>, caps: &EnvCaps) -> Result<StartStack, L4reError> {
    // built top-down into `down` (the byte at index i lies at top - 1 - i
    // … reversed at the end), as the loader pushes
    let mut data: Vec<u8> = Vec::new(); // bytes from `base` upwards, built below
                                        // the area, from the top: strings, aux, env, cap entries, then the
                                        // vectors. Sizes first, then one pass that writes.
    let strings: Vec<&str> = args.argv.iter().chain(args.envp.iter()).copied().collect();
    let str_bytes: usize = strings.iter().map(|s| s.len() + 1).sum::<usize>().div_ceil(8) * 8;
    let entries = caps.named.len() + 1;
    let fixed = str_bytes + 40 + ENV_SIZE + entries * CAP_ENTRY_SIZE;
    let auxv_words = 2 * 12;
    let vec_words = 1 + args.argv.len() + 1 + args.envp.len() + 1 + auxv_words;
    let total = (fixed + vec_words * 8).div_ceil(16) * 16 + 16;
    if total as u64 > room || !top.is_multiple_of(16) {
        return Err(L4reError::StackTooSmall);
    }
    let base = top - total as u64;
    data.resize(total, 0);
    let put = |data: &mut Vec<u8>, at: u64, w: u64| {
        let i = (at - base) as usize;
        data[i..i + 8].copy_from_slice(&w.to_le_bytes());
    };
    // strings at the very top
    let mut at = top - str_bytes as u64;
    let mut ptrs = Vec::with_capacity(strings.len());
    for s in &strings {
        let i = (at - base) as usize;
        data[i..i + s.len()].copy_from_slice(s.as_bytes());
        ptrs.push(at);
        at += s.len() as u64 + 1;
    }
    // l4re_aux_t (5 words) below the strings
    let aux_at = top - str_bytes as u64 - 40;
    put(&mut data, aux_at, ptrs.first().copied().unwrap_or(0));
    put(&mut data, aux_at + 8, args.kip_ds.map(|s| s << 12).unwrap_or(INVALID_CAP));
    // dbg_lvl, ldr_flags, ldr_base stay 0
    // the named capabilities, then the env below them
    let caps_at = aux_at - (entries * CAP_ENTRY_SIZE) as u64;
    for (k, (name, slot)) in caps.named.iter().enumerate() {
        let e = caps_at + (k * CAP_ENTRY_SIZE) as u64;
        put(&mut data, e, slot << 12);
        let i = (e + 16 - base) as usize;
        let n = name.as_bytes();
        let n = &n[..n.len().min(16)];
        data[i..i + n.len()].copy_from_slice(n);
    }
    let end = caps_at + (caps.named.len() * CAP_ENTRY_SIZE) as u64;
    put(&mut data, end, INVALID_CAP);
    put(&mut data, end + 8, !0);
    let env_at = caps_at - ENV_SIZE as u64;
    let cap = |s: u64| s << 12;
    let words = [
        cap(caps.parent),
        cap(caps.rm),
        cap(caps.mem_alloc),
        cap(caps.log),
        cap(caps.main_thread),
        cap(caps.factory),
        cap(caps.scheduler),
        INVALID_CAP,
        caps.dbg_events.map(cap).unwrap_or(INVALID_CAP),
        // a slot number, not a capability index (env.h, libpthread)
        caps.first_free_cap,
        0,
        caps.utcb_area,
        caps.first_free_utcb,
        caps_at,
    ];
    for (k, w) in words.iter().enumerate() {
        put(&mut data, env_at + 8 * k as u64, *w);
    }
    // the vectors, from sp upwards
    let sp = (env_at - (vec_words * 8) as u64) & !15;
    if sp < base {
        return Err(L4reError::StackTooSmall);
    }
    let mut w = sp;
    let mut push = |data: &mut Vec<u8>, v: u64| {
        put(data, w, v);
        w += 8;
    };
    push(&mut data, args.argv.len() as u64);
    for p in &ptrs[..args.argv.len()] {
        push(&mut data, *p);
    }
    push(&mut data, 0);
    for p in &ptrs[args.argv.len()..] {
        push(&mut data, *p);
    }
    push(&mut data, 0);
    let (phdr, phnum) = args.phdrs.unwrap_or((0, 0));
    let phdrs = [(AT_PHDR, phdr), (AT_PHNUM, phnum), (AT_PHENT, 56)];
    for (k, v) in phdrs.into_iter().filter(|_| args.phdrs.is_some()).chain([
        (AT_L4_AUX, aux_at),
        (AT_L4_ENV, env_at),
        (AT_L4_KIP, args.kip),
        (AT_PAGESZ, 4096),
        (AT_UID, 0),
        (AT_EUID, 0),
        (AT_GID, 0),
        (AT_EGID, 0),
        (AT_NULL, 0),
    ]) {
        push(&mut data, k);
        push(&mut data, v);
    }
    // from sp to the top only
    let bytes = data[(sp - base) as usize..].to_vec();
    Ok(StartStack { bytes, sp, env: env_at })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn le(b: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
    }

    fn desc(ty: u64, vals: &[u64]) -> Vec<u8> {
        let mut v = Vec::new();
        for w in [ty, 16 + 8 * vals.len() as u64].iter().chain(vals) {
            v.extend_from_slice(&w.to_le_bytes());
        }
        v
    }

    #[test]
    fn the_descriptors_of_a_program_built_by_the_l4re_make() {
        // hello on amd64: one KIP_ADDR descriptor
        let a = Aux::parse(&desc(4, &[0x6fff_f000])).unwrap();
        assert_eq!(a.kip_addr, Some(0x6fff_f000));
        assert_eq!((a.stack_addr, a.stack_size), (0x8000_0000, 0x20_0000));
        let mut b = desc(3, &[0x1000_0000]);
        b.extend(desc(2, &[0x4000]));
        b.extend(desc(1, &[0x2000, 0x4000]));
        b.extend(desc(99, &[1, 2, 3]));
        b.extend(desc(5, &[7]));
        let a = Aux::parse(&b).unwrap();
        assert_eq!((a.stack_addr, a.stack_size, a.stack_top()), (0x1000_0000, 0x4000, 0x1000_4000));
        assert_eq!(a.vmas, [(0x2000, 0x4000)]);
        assert_eq!(a.ex_regs_flags, Some(7));
    }

    #[test]
    fn malformed_descriptors_are_refused() {
        let mut b = desc(4, &[1]);
        b[8] = 8; // shorter than its header
        assert_eq!(Aux::parse(&b), Err(L4reError::BadDescriptor(0)));
        let mut b = desc(4, &[1]);
        b[8] = 200; // past the end
        assert_eq!(Aux::parse(&b), Err(L4reError::BadDescriptor(0)));
        assert_eq!(Aux::parse(&desc(4, &[])), Err(L4reError::BadDescriptor(0)));
        assert!(matches!(Aux::parse(&desc(3, &[0x1234])), Err(L4reError::BadStack { .. })));
        assert!(matches!(Aux::parse(&desc(2, &[!0xfff])), Err(L4reError::BadStack { .. })));
    }

    fn caps() -> EnvCaps {
        EnvCaps {
            parent: 0x13,
            rm: 0x10,
            mem_alloc: 0x11,
            log: 5,
            main_thread: 3,
            factory: 2,
            scheduler: 7,
            dbg_events: None,
            first_free_cap: 0x20,
            utcb_area: 0xb300_0000 | (14 << 6) | (1 << 4),
            first_free_utcb: 0xb300_0400,
            named: alloc::vec![(String::from("rom"), 0x12), (String::from("a-name-of-16-chr"), 0x16)],
        }
    }

    #[test]
    fn the_stack_reads_as_musl_and_the_l4re_env_read_it() {
        let top = 0x8020_0000u64;
        let args = StartArgs {
            argv: &["rom/hello", "-v"],
            envp: &["A=1"],
            kip: 0x6fff_f000,
            kip_ds: Some(0x14),
            phdrs: Some((0x40_0040, 5)),
        };
        let s = start_stack(top, 0x1000, &args, &caps()).unwrap();
        assert_eq!(s.sp % 16, 0);
        assert_eq!(s.sp + s.bytes.len() as u64, top);
        let m = |va: u64| le(&s.bytes, (va - s.sp) as usize);
        let cstr = |va: u64| {
            let i = (va - s.sp) as usize;
            let n = s.bytes[i..].iter().position(|&c| c == 0).unwrap();
            String::from_utf8(s.bytes[i..i + n].to_vec()).unwrap()
        };
        // argc, argv, envp
        assert_eq!(m(s.sp), 2);
        assert_eq!(cstr(m(s.sp + 8)), "rom/hello");
        assert_eq!(cstr(m(s.sp + 16)), "-v");
        assert_eq!(m(s.sp + 24), 0);
        assert_eq!(cstr(m(s.sp + 32)), "A=1");
        assert_eq!(m(s.sp + 40), 0);
        // auxv, as __init_libc walks it
        let mut at = s.sp + 48;
        let mut aux = alloc::collections::BTreeMap::new();
        while m(at) != 0 {
            aux.insert(m(at), m(at + 8));
            at += 16;
        }
        assert_eq!(aux[&AT_L4_ENV], s.env);
        assert_eq!(aux[&AT_L4_KIP], 0x6fff_f000);
        assert_eq!(aux[&AT_PAGESZ], 4096);
        assert_eq!((aux[&AT_PHDR], aux[&AT_PHNUM], aux[&AT_PHENT]), (0x40_0040, 5, 56));
        assert_eq!(cstr(m(aux[&AT_L4_AUX])), "rom/hello");
        assert_eq!(m(aux[&AT_L4_AUX] + 8), 0x14 << 12);
        // l4re_env_t
        let e = s.env;
        assert_eq!(e % 8, 0);
        let fields: Vec<u64> = (0..14).map(|k| m(e + 8 * k)).collect();
        assert_eq!(&fields[..7], &[0x13000, 0x10000, 0x11000, 0x5000, 0x3000, 0x2000, 0x7000]);
        assert_eq!(fields[7], INVALID_CAP);
        assert_eq!(fields[8], INVALID_CAP);
        assert_eq!(fields[9], 0x20);
        assert_eq!(fields[11], 0xb300_0000 | (14 << 6) | (1 << 4));
        assert_eq!(fields[12], 0xb300_0400);
        // the named capabilities, ended by flags ~0
        let c = fields[13];
        assert_eq!((m(c), m(c + 8)), (0x12000, 0));
        assert_eq!(cstr(c + 16), "rom");
        assert_eq!(m(c + 32), 0x16000);
        assert_eq!(&s.bytes[(c + 48 - s.sp) as usize..(c + 64 - s.sp) as usize], b"a-name-of-16-chr");
        assert_eq!(m(c + 64 + 8), !0);
    }

    #[test]
    fn a_stack_too_small_is_refused() {
        let args = StartArgs { argv: &["x"], envp: &[], kip: 0, kip_ds: None, phdrs: None };
        assert_eq!(start_stack(0x8000, 64, &args, &caps()), Err(L4reError::StackTooSmall));
    }
}
