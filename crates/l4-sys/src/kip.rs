//! The kernel info page (KIP): magic, version, the boot hand-off fields, the
//! memory descriptors and the clock.
//!
//! From `l4sys/include/kip.h` (`l4_kernel_info_t`, `l4_kip_clock`), the C++
//! `L4::Kip::Mem_desc`, and the kernel's `src/abi/kip.cpp`,
//! `src/kern/ia32/kip_offsets.h`, `src/kern/arm/kip_offsets.h`. Parsing works
//! on a byte slice, so it runs on the host as well as on the mapped page.

/// `L4_KERNEL_INFO_MAGIC` ("L4µK").
pub const MAGIC: u32 = 0x4BE6_344C;
/// Fiasco's version word under [`VERSION_MASK`].
pub const VERSION_FIASCO: u32 = 0x8700_4444;
/// Mask for [`VERSION_FIASCO`].
pub const VERSION_MASK: u32 = 0xFF00_FFFF;

/// Byte offsets of the 64-bit KIP.
pub mod offset {
    /// u32 magic.
    pub const MAGIC: usize = 0x00;
    /// u32 version.
    pub const VERSION: usize = 0x04;
    /// u8: offset of the version string in 16-byte units.
    pub const OFFSET_VERSION_STRINGS: usize = 0x08;
    /// u64 sigma0 entry.
    pub const SIGMA0_IP: usize = 0x10;
    /// u64 root task entry.
    pub const ROOT_IP: usize = 0x18;
    /// u64 clock (µs), may be stale.
    pub const CLOCK: usize = 0x20;
    /// u64 CPU frequency (kHz).
    pub const FREQUENCY_CPU: usize = 0x28;
    /// u64 device-tree address (arm).
    pub const DT_ADDR: usize = 0x38;
    /// u64 boot-module info address.
    pub const USER_PTR: usize = 0x40;
    /// u32 scheduler granularity.
    pub const SCHED_GRANULARITY: usize = 0x50;
    /// u32 byte offset of the memory descriptors.
    pub const MEM_DESCS: usize = 0x54;
    /// u32 number of memory descriptors.
    pub const MEM_DESCS_NUM: usize = 0x58;
    /// Platform name (16 bytes).
    pub const PLATFORM_NAME: usize = 0x70;
    /// `u64 read_us(void)` code.
    pub const CLOCK_US_FN: usize = 0x900;
    /// `u64 read_ns(void)` code.
    pub const CLOCK_NS_FN: usize = 0x980;
}

/// Memory-descriptor types (`L4::Kip::Mem_desc::Mem_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemType {
    /// Unused slot.
    Undefined,
    /// RAM, free for allocation through sigma0.
    Conventional,
    /// Kernel, heap, reserved MMIO.
    Reserved,
    /// sigma0's image.
    Dedicated,
    /// Shared kernel/user.
    Shared,
    /// Kernel-internal.
    KernelTmp,
    /// Info regions (sub type 0: ACPI RSDP).
    Info,
    /// Owned by the root task: its ELF, boot modules, module info.
    Bootloader,
    /// Architecture-specific (ACPI tables, firmware).
    Arch,
    /// Any other value.
    Other(u8),
}

impl MemType {
    fn from_bits(v: u8) -> Self {
        match v {
            0 => MemType::Undefined,
            1 => MemType::Conventional,
            2 => MemType::Reserved,
            3 => MemType::Dedicated,
            4 => MemType::Shared,
            7 => MemType::KernelTmp,
            0xD => MemType::Info,
            0xE => MemType::Bootloader,
            0xF => MemType::Arch,
            v => MemType::Other(v),
        }
    }
}

/// One memory descriptor (two words).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemDesc {
    /// First byte.
    pub start: u64,
    /// Last byte (inclusive).
    pub end: u64,
    /// Type.
    pub ty: MemType,
    /// Sub type (for Bootloader regions: the rights R 4, W 2, X 1).
    pub sub_type: u8,
    /// Describes a virtual range.
    pub is_virtual: bool,
}

impl MemDesc {
    /// Decodes the two words.
    pub fn from_words(w0: u64, w1: u64) -> Self {
        MemDesc {
            start: w0 & !0x3FF,
            end: w1 | 0x3FF,
            ty: MemType::from_bits((w0 & 0xF) as u8),
            sub_type: ((w0 >> 4) & 0xF) as u8,
            is_virtual: w0 & 0x200 != 0,
        }
    }
}

/// Why a page is not a KIP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KipError {
    /// Shorter than the fields read.
    TooShort,
    /// The magic word is wrong.
    BadMagic(u32),
    /// The kernel is not Fiasco.
    NotFiasco(u32),
    /// The memory-descriptor array lies outside the page.
    BadMemDescs,
}

/// A view of a KIP in memory.
#[derive(Clone, Copy)]
pub struct Kip<'a> {
    page: &'a [u8],
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap_or([0; 4]))
}
fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap_or([0; 8]))
}

impl<'a> Kip<'a> {
    /// Checks magic, version and the descriptor array, then gives a view.
    pub fn parse(page: &'a [u8]) -> Result<Self, KipError> {
        if page.len() < 0x100 {
            return Err(KipError::TooShort);
        }
        let magic = u32_at(page, offset::MAGIC);
        if magic != MAGIC {
            return Err(KipError::BadMagic(magic));
        }
        let v = u32_at(page, offset::VERSION);
        if v & VERSION_MASK != VERSION_FIASCO {
            return Err(KipError::NotFiasco(v));
        }
        let kip = Kip { page };
        let (off, n) = kip.mem_desc_range();
        if off.checked_add(n * 16).is_none_or(|e| e > page.len()) {
            return Err(KipError::BadMemDescs);
        }
        Ok(kip)
    }

    fn mem_desc_range(&self) -> (usize, usize) {
        (u32_at(self.page, offset::MEM_DESCS) as usize, u32_at(self.page, offset::MEM_DESCS_NUM) as usize)
    }

    /// The version word.
    pub fn version(&self) -> u32 {
        u32_at(self.page, offset::VERSION)
    }
    /// Root task entry.
    pub fn root_ip(&self) -> u64 {
        u64_at(self.page, offset::ROOT_IP)
    }
    /// sigma0 entry.
    pub fn sigma0_ip(&self) -> u64 {
        u64_at(self.page, offset::SIGMA0_IP)
    }
    /// The clock word (µs); may be stale on some configurations, prefer the
    /// clock function.
    pub fn clock_field(&self) -> u64 {
        u64_at(self.page, offset::CLOCK)
    }
    /// CPU frequency in kHz.
    pub fn frequency_cpu(&self) -> u64 {
        u64_at(self.page, offset::FREQUENCY_CPU)
    }
    /// Physical address of the boot-module info.
    pub fn user_ptr(&self) -> u64 {
        u64_at(self.page, offset::USER_PTR)
    }
    /// Device-tree address (arm).
    pub fn dt_addr(&self) -> u64 {
        u64_at(self.page, offset::DT_ADDR)
    }
    /// Platform name.
    pub fn platform_name(&self) -> &'a str {
        let b = &self.page[offset::PLATFORM_NAME..offset::PLATFORM_NAME + 16];
        let n = b.iter().position(|&c| c == 0).unwrap_or(16);
        core::str::from_utf8(&b[..n]).unwrap_or("?")
    }
    /// The kernel's version string (first of the NUL-separated strings).
    pub fn version_string(&self) -> &'a str {
        let off = self.page[offset::OFFSET_VERSION_STRINGS] as usize * 16;
        if off == 0 || off >= self.page.len() {
            return "";
        }
        let b = &self.page[off..];
        let n = b.iter().position(|&c| c == 0).unwrap_or(b.len());
        core::str::from_utf8(&b[..n]).unwrap_or("?")
    }
    /// The feature strings after the version string.
    pub fn features(&self) -> impl Iterator<Item = &'a str> + 'a {
        let off = self.page[offset::OFFSET_VERSION_STRINGS] as usize * 16;
        let b: &'a [u8] = if off == 0 || off >= self.page.len() { &[] } else { &self.page[off..] };
        b.split(|&c| c == 0).skip(1).take_while(|s| !s.is_empty()).map(|s| core::str::from_utf8(s).unwrap_or("?"))
    }
    /// Is a feature string present (e.g. "explicit_reply_caps")?
    pub fn has_feature(&self, name: &str) -> bool {
        self.features().any(|f| f == name)
    }
    /// The memory descriptors.
    pub fn mem_descs(&self) -> impl Iterator<Item = MemDesc> + 'a {
        let (off, n) = self.mem_desc_range();
        let page = self.page;
        (0..n).map(move |i| MemDesc::from_words(u64_at(page, off + 16 * i), u64_at(page, off + 16 * i + 8)))
    }
}

/// Reads the kernel clock in µs by calling the KIP's clock function
/// (`l4_kip_clock`).
///
/// # Safety
/// `kip` must be the address of the KIP page, mapped executable in the
/// calling task (sigma0 maps it RX), on the architecture the code runs on.
pub unsafe fn clock_us(kip: *const u8) -> u64 {
    // SAFETY: the caller guarantees that the KIP (which holds the kernel's
    // position-independent clock routine at offset 0x900, using the C ABI and
    // no arguments) is mapped executable at `kip`.
    unsafe {
        let f: extern "C" fn() -> u64 = core::mem::transmute(kip.add(offset::CLOCK_US_FN));
        f()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_kip() -> Vec<u8> {
        let mut p = vec![0u8; 4096];
        p[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        p[4..8].copy_from_slice(&0x8701_4444u32.to_le_bytes());
        p[8] = 0x30; // strings at 0x300
        p[0x18..0x20].copy_from_slice(&0x40_0000u64.to_le_bytes());
        p[0x40..0x48].copy_from_slice(&0x1234_5000u64.to_le_bytes());
        p[0x54..0x58].copy_from_slice(&0x200u32.to_le_bytes());
        p[0x58..0x5C].copy_from_slice(&2u32.to_le_bytes());
        // RAM 0..512 MiB conventional, and a bootloader region with rights RWX
        p[0x200..0x208].copy_from_slice(&1u64.to_le_bytes());
        p[0x208..0x210].copy_from_slice(&(0x2000_0000u64 - 1).to_le_bytes());
        p[0x210..0x218].copy_from_slice(&(0x40_0000u64 | 0x70 | 0xE).to_le_bytes());
        p[0x218..0x220].copy_from_slice(&0x40_FFFFu64.to_le_bytes());
        p[0x70..0x74].copy_from_slice(b"qemu");
        let s = b"Fiasco\0explicit_reply_caps\0jdb\0\0";
        p[0x300..0x300 + s.len()].copy_from_slice(s);
        p
    }

    #[test]
    fn parses_fields_and_descriptors() {
        let p = fake_kip();
        let k = Kip::parse(&p).unwrap();
        assert_eq!(k.root_ip(), 0x40_0000);
        assert_eq!(k.user_ptr(), 0x1234_5000);
        assert_eq!(k.platform_name(), "qemu");
        assert_eq!(k.version_string(), "Fiasco");
        assert!(k.has_feature("explicit_reply_caps"));
        assert!(!k.has_feature("Fiasco"));
        let d: Vec<_> = k.mem_descs().collect();
        assert_eq!(d[0].ty, MemType::Conventional);
        assert_eq!((d[0].start, d[0].end), (0, 0x1FFF_FFFF));
        assert_eq!(d[1].ty, MemType::Bootloader);
        assert_eq!(d[1].sub_type, 7);
        assert_eq!((d[1].start, d[1].end), (0x40_0000, 0x40_FFFF));
    }

    #[test]
    fn rejects_what_is_not_a_kip() {
        let mut p = fake_kip();
        assert_eq!(Kip::parse(&p[..16]).err(), Some(KipError::TooShort));
        p[0] ^= 1;
        assert!(matches!(Kip::parse(&p), Err(KipError::BadMagic(_))));
        let mut p = fake_kip();
        p[4] = 0x12;
        assert!(matches!(Kip::parse(&p), Err(KipError::NotFiasco(_))));
        let mut p = fake_kip();
        p[0x58..0x5C].copy_from_slice(&1000u32.to_le_bytes());
        assert_eq!(Kip::parse(&p).err(), Some(KipError::BadMemDescs));
    }
}
