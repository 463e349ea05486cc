//! Boot-module information bootstrap leaves for the root task (`KIP.user_ptr`).
//!
//! From l4re-core `l4util/include/l4mod.h` (`l4util_l4mod_info`,
//! `l4util_l4mod_mod`) and bootstrap's `server/src/init_kip.cc`,
//! `boot_modules.cc`. All addresses are physical; the root task sees them
//! 1:1 (sigma0 maps its Bootloader regions on touch). Reading goes through
//! [`PhysMem`], so the same parser runs on the host over a test image.

/// Reads physical memory.
pub trait PhysMem {
    /// `len` bytes at physical `addr`, or `None` if that is not readable.
    fn bytes(&self, addr: u64, len: usize) -> Option<&[u8]>;
}

/// Module kinds (`L4util_l4mod_mod_flags`, flags & 7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModKind {
    /// A plain module.
    Generic,
    /// The kernel.
    Kernel,
    /// sigma0.
    Sigma0,
    /// The root task.
    Roottask,
    /// Another value.
    Other(u8),
}

/// One module.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Module<'a> {
    /// What it is.
    pub kind: ModKind,
    /// First byte (physical).
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    /// Its command line: `"<name> <args…>"`.
    pub cmdline: &'a str,
}

impl<'a> Module<'a> {
    /// The module's name: the file name of the first word of the command
    /// line (a multiboot loader passes whole paths, modules.list basenames).
    pub fn name(&self) -> &'a str {
        let first = self.cmdline.split(' ').next().unwrap_or("");
        first.rsplit('/').next().unwrap_or(first)
    }
    /// The arguments after the name.
    pub fn args(&self) -> &'a str {
        self.cmdline.split_once(' ').map(|(_, a)| a.trim_start()).unwrap_or("")
    }
    /// Size in bytes.
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }
    /// Is it empty?
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Why the module info cannot be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootInfoError {
    /// `user_ptr` was 0: no bootstrap info.
    Missing,
    /// An address did not lie in readable memory.
    Unreadable(u64),
    /// A command line is not NUL-terminated within 4 KiB or not UTF-8.
    BadCmdline(u64),
    /// The module count is implausible (more than 1024).
    TooManyModules(u32),
}

/// Size of `l4util_l4mod_mod`.
pub const MOD_SIZE: usize = 32;
const MAX_CMDLINE: usize = 4096;

/// The module list.
pub struct BootInfo<'a, M: PhysMem> {
    mem: &'a M,
    mods_addr: u64,
    count: u32,
    /// bootstrap's own command line, if any.
    pub cmdline: Option<&'a str>,
}

fn rd64(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap_or([0; 8]))
}

fn cstr<M: PhysMem>(mem: &M, addr: u64) -> Result<&str, BootInfoError> {
    // read page by page up to the limit, without crossing into unreadable memory
    let mut len = 0usize;
    while len < MAX_CMDLINE {
        let page_left = (0x1000 - ((addr + len as u64) & 0xFFF)) as usize;
        let chunk = mem.bytes(addr + len as u64, page_left).ok_or(BootInfoError::Unreadable(addr))?;
        if let Some(n) = chunk.iter().position(|&c| c == 0) {
            let all = mem.bytes(addr, len + n).ok_or(BootInfoError::Unreadable(addr))?;
            return core::str::from_utf8(all).map_err(|_| BootInfoError::BadCmdline(addr));
        }
        len += page_left;
    }
    Err(BootInfoError::BadCmdline(addr))
}

impl<'a, M: PhysMem> BootInfo<'a, M> {
    /// Reads the header at `user_ptr`.
    pub fn parse(mem: &'a M, user_ptr: u64) -> Result<Self, BootInfoError> {
        if user_ptr == 0 {
            return Err(BootInfoError::Missing);
        }
        let h = mem.bytes(user_ptr, 0x30).ok_or(BootInfoError::Unreadable(user_ptr))?;
        let cmd = rd64(h, 0x08);
        let mods_addr = rd64(h, 0x10);
        let count = u32::from_le_bytes(h[0x18..0x1C].try_into().unwrap_or([0; 4]));
        if count > 1024 {
            return Err(BootInfoError::TooManyModules(count));
        }
        let cmdline = if cmd == 0 { None } else { Some(cstr(mem, cmd)?) };
        Ok(BootInfo { mem, mods_addr, count, cmdline })
    }

    /// Number of modules.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// No modules?
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Module `i`.
    pub fn module(&self, i: usize) -> Result<Module<'a>, BootInfoError> {
        let at = self.mods_addr + (i * MOD_SIZE) as u64;
        let m = self.mem.bytes(at, MOD_SIZE).ok_or(BootInfoError::Unreadable(at))?;
        let kind = match rd64(m, 0) & 7 {
            0 => ModKind::Generic,
            1 => ModKind::Kernel,
            2 => ModKind::Sigma0,
            3 => ModKind::Roottask,
            v => ModKind::Other(v as u8),
        };
        let cmd = rd64(m, 0x18);
        Ok(Module {
            kind,
            start: rd64(m, 0x08),
            end: rd64(m, 0x10),
            cmdline: if cmd == 0 { "" } else { cstr(self.mem, cmd)? },
        })
    }

    /// All modules, in order (kernel, sigma0, root task, then the `module` lines).
    pub fn modules(&self) -> impl Iterator<Item = Result<Module<'a>, BootInfoError>> + '_ {
        (0..self.len()).map(move |i| self.module(i))
    }

    /// The root task's own entry (its command line holds rtcr's configuration).
    pub fn roottask(&self) -> Option<Module<'a>> {
        self.modules().flatten().find(|m| m.kind == ModKind::Roottask)
    }

    /// The first generic module whose name is `name`.
    pub fn find(&self, name: &str) -> Option<Module<'a>> {
        self.modules().flatten().find(|m| m.kind == ModKind::Generic && m.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Img {
        base: u64,
        data: Vec<u8>,
    }
    impl PhysMem for Img {
        fn bytes(&self, addr: u64, len: usize) -> Option<&[u8]> {
            let o = addr.checked_sub(self.base)? as usize;
            self.data.get(o..o.checked_add(len)?)
        }
    }

    fn image() -> Img {
        let base = 0x10_0000u64;
        let mut d = vec![0u8; 0x2000];
        let put = |d: &mut Vec<u8>, o: usize, v: u64| d[o..o + 8].copy_from_slice(&v.to_le_bytes());
        // header at +0: cmdline at +0x800, mods at +0x100, count 4
        put(&mut d, 0x08, base + 0x800);
        put(&mut d, 0x10, base + 0x100);
        d[0x18..0x1C].copy_from_slice(&4u32.to_le_bytes());
        let mods = [(1u64, "fiasco -serial_esc"), (2, "sigma0"), (3, "rtcr child=hello"), (0, "/boot/x/hello")];
        for (i, (f, s)) in mods.iter().enumerate() {
            let m = 0x100 + 32 * i;
            put(&mut d, m, *f);
            put(&mut d, m + 8, 0x20_0000 * (i as u64 + 1));
            put(&mut d, m + 16, 0x20_0000 * (i as u64 + 1) + 0x1234);
            let c = 0x900 + 0x40 * i;
            put(&mut d, m + 24, base + c as u64);
            d[c..c + s.len()].copy_from_slice(s.as_bytes());
        }
        d[0x800..0x80A].copy_from_slice(b"bootstrap\0");
        Img { base, data: d }
    }

    #[test]
    fn reads_modules_and_command_lines() {
        let img = image();
        let bi = BootInfo::parse(&img, 0x10_0000).unwrap();
        assert_eq!(bi.cmdline, Some("bootstrap"));
        assert_eq!(bi.len(), 4);
        let root = bi.roottask().unwrap();
        assert_eq!(root.name(), "rtcr");
        assert_eq!(root.args(), "child=hello");
        let child = bi.find("hello").unwrap();
        assert_eq!(child.len(), 0x1234);
        assert_eq!(bi.module(0).unwrap().kind, ModKind::Kernel);
        assert_eq!(bi.module(1).unwrap().kind, ModKind::Sigma0);
        assert!(bi.find("nope").is_none());
    }

    #[test]
    fn broken_info_is_an_error_not_a_panic() {
        let img = image();
        assert_eq!(BootInfo::parse(&img, 0).err(), Some(BootInfoError::Missing));
        assert!(matches!(BootInfo::parse(&img, 0x9000_0000), Err(BootInfoError::Unreadable(_))));
        let mut bad = image();
        bad.data[0x18..0x1C].copy_from_slice(&5000u32.to_le_bytes());
        assert_eq!(BootInfo::parse(&bad, 0x10_0000).err(), Some(BootInfoError::TooManyModules(5000)));
        // a module array that runs off the image
        let mut bad = image();
        bad.data[0x18..0x1C].copy_from_slice(&400u32.to_le_bytes());
        let bi = BootInfo::parse(&bad, 0x10_0000).unwrap();
        assert!(matches!(bi.module(399), Err(BootInfoError::Unreadable(_))));
        // an unterminated command line
        let mut bad = image();
        for b in &mut bad.data[0x800..] {
            *b = b'a';
        }
        assert!(BootInfo::parse(&bad, 0x10_0000).is_err());
    }
}
