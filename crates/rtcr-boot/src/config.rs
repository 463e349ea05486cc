//! rtcr's configuration: the words after `roottask rtcr` in `modules.list`.
//!
//! ```text
//! roottask rtcr child=hello interval_ms=100 store_kib=1024 max_objects=64 max_threads=8 max_pages=4096 restore=img
//! ```
//!
//! `child=` names the boot module to run (required; `none` runs no child).
//! Everything else has a default. Numbers are decimal or `0x` hex. Unknown
//! words, repeated keys, numbers out of range and a missing child are errors
//! that say which word is wrong.
//!
//! The diagnostics are off unless a flag asks for them, so that a default
//! boot goes straight to the child and prints a few lines: `report` (what
//! rtcr finds about the kernel: initial capabilities, KIP, memory
//! descriptors, boot modules, heap), `selfcheck` (the image format and
//! rtcr-core's environment checked on this kernel, with a 200 ms sleep that
//! measures the stamp counter against the kernel clock), `probe` and
//! `probe-dump` (the kernel verify-list probes). `bench` adds the lines the
//! kernel benchmark reads (scripts/bench-kernel.sh); `heap_kib=` sizes
//! rtcr's heap for a large child. `full-restore` makes every recovery
//! rewrite every page from the image, not only those written since it.

use core::fmt;

/// The configuration, borrowed from the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config<'a> {
    /// The boot module of the child; `None` for `child=none`.
    pub child: Option<&'a str>,
    /// Checkpoint interval in milliseconds.
    pub interval_ms: u64,
    /// Size of the checkpoint store (both A/B slots together) in KiB.
    pub store_kib: u64,
    /// Quota: capability objects the child may create.
    pub max_objects: u32,
    /// Quota: threads the child may create.
    pub max_threads: u32,
    /// Quota: 4 KiB pages the child may have.
    pub max_pages: u32,
    /// A boot module holding a checkpoint image to restore at boot (from
    /// another ECU), instead of starting the child afresh.
    pub restore: Option<&'a str>,
    /// Test hook: this many ms after the child started, rtcr makes the
    /// child's first thread jump to address 0 (as a wild jump would), once,
    /// to show a crash and the restore on a real board.
    pub crash_ms: Option<u64>,
    /// Test hook, with `crash_ms=`: the crash is injected again every this
    /// many ms after the first (a soak of crashes and restores).
    pub crash_every_ms: Option<u64>,
    /// How often an image may crash the restored child before a checkpoint
    /// could be taken before rtcr restores the older image, then starts
    /// the child afresh.
    pub max_image_failures: u32,
    /// This many ms after the child started, rtcr writes the newest
    /// checkpoint image to the log as `rtcr-image` lines (once), for
    /// `rtcrctl reassemble` to turn back into an image file for another ECU.
    pub dump_ms: Option<u64>,
    /// `jdb`: with `crash_ms=`, enter the kernel debugger right before the
    /// checkpoint taken at that moment and right after the restore, so a
    /// person (or a script on the serial line) can compare the child's
    /// object space in JDB; `g` continues.
    pub jdb: bool,
    /// `report`: report what rtcr finds about the kernel at boot (initial
    /// capabilities, KIP version, features and memory descriptors, clock,
    /// boot modules, heap).
    pub report: bool,
    /// `selfcheck`: check the image format and rtcr-core's environment on
    /// this kernel before the child starts (includes a 200 ms sleep).
    pub selfcheck: bool,
    /// Run the kernel verify-list probes (`probe`, `probe-dump`).
    pub probe: bool,
    /// Include the debugger object-dump probe.
    pub probe_dump: bool,
    /// rtcr's heap in KiB (RAM from sigma0): the shadow copy of the child's
    /// memory (4 KiB per page) lives there, and while a checkpoint is
    /// written also its records (a copy of the non-zero pages) and its
    /// image: a child of N pages all written needs about 3 × 4 KiB × N
    /// (the kernel benchmark measured 12.5 KB per page at the peak).
    pub heap_kib: u64,
    /// How long a checkpoint waits for a thread in a kernel call to come
    /// back before it cancels the call (ms): a call cancelled after its
    /// send phase is made again, so the child's servers have this long to
    /// answer for calls to stay exactly-once.
    pub settle_ms: u64,
    /// `bench`: log what the kernel benchmark (scripts/bench-kernel.sh)
    /// reads besides the usual lines: per checkpoint the copy after the
    /// resume, the fpages write-protected, rtcr's heap in use and a memcpy
    /// of the same bytes timed by rtcr; per restore a memcpy of the image.
    pub bench: bool,
    /// `full-restore`: every recovery rewrites every page of the child from
    /// the image, in a new task; by default a recovery keeps the crashed
    /// child's task and the pages not written since the newest image, and
    /// only a crash loop rewrites everything.
    pub full_restore: bool,
}

impl Default for Config<'_> {
    fn default() -> Self {
        Config {
            child: None,
            interval_ms: 100,
            store_kib: 1024,
            max_objects: 64,
            max_threads: 16,
            max_pages: 4096,
            restore: None,
            crash_ms: None,
            crash_every_ms: None,
            max_image_failures: 3,
            dump_ms: None,
            jdb: false,
            report: false,
            selfcheck: false,
            probe: false,
            probe_dump: false,
            heap_kib: 16 * 1024,
            settle_ms: 10,
            bench: false,
            full_restore: false,
        }
    }
}

/// What is wrong with a configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError<'a> {
    /// No `child=` word.
    MissingChild,
    /// A word that is neither a known key nor a known flag.
    Unknown(&'a str),
    /// A key given twice.
    Repeated(&'a str),
    /// A key that means something only with another one.
    Needs {
        /// The key given.
        key: &'static str,
        /// The key it needs.
        needs: &'static str,
    },
    /// A key without a value (`child=`).
    Empty(&'a str),
    /// A value that is not a number, or out of the key's range.
    BadNumber {
        /// The key.
        key: &'a str,
        /// The value as written.
        value: &'a str,
        /// The range it must lie in.
        min: u64,
        /// Upper bound (inclusive).
        max: u64,
    },
}

impl fmt::Display for ConfigError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::MissingChild => {
                write!(f, "no child= in the roottask line (name the child's boot module, or child=none)")
            }
            ConfigError::Unknown(w) => {
                write!(f, "unknown word '{w}' (known:")?;
                for k in KEYS {
                    write!(f, " {k}=")?;
                }
                for flag in FLAGS {
                    write!(f, " {flag}")?;
                }
                write!(f, ")")
            }
            ConfigError::Repeated(k) => write!(f, "{k}= given twice"),
            ConfigError::Needs { key, needs } => write!(f, "{key}= means something only with {needs}="),
            ConfigError::Empty(k) => write!(f, "{k}= has no value"),
            ConfigError::BadNumber { key, value, min, max } => {
                write!(f, "{key}={value}: want a number from {min} to {max} (decimal or 0x hex)")
            }
        }
    }
}

/// The words that take a value (`key=value`).
const KEYS: [&str; 13] = [
    "child",
    "interval_ms",
    "store_kib",
    "max_objects",
    "max_threads",
    "max_pages",
    "restore",
    "crash_ms",
    "dump_ms",
    "crash_every_ms",
    "max_image_failures",
    "heap_kib",
    "settle_ms",
];

/// The words that stand alone.
const FLAGS: [&str; 7] = ["jdb", "report", "selfcheck", "probe", "probe-dump", "bench", "full-restore"];

fn number<'a>(key: &'a str, value: &'a str, min: u64, max: u64) -> Result<u64, ConfigError<'a>> {
    let bad = ConfigError::BadNumber { key, value, min, max };
    let n = match value.strip_prefix("0x").or_else(|| value.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => value.parse::<u64>(),
    }
    .map_err(|_| bad)?;
    if n < min || n > max {
        return Err(bad);
    }
    Ok(n)
}

/// Parses the words of rtcr's command line. The first word may be rtcr's
/// own name or path (bootstrap passes the whole line): a word without `=`
/// that ends in `rtcr` is skipped.
pub fn parse(line: &str) -> Result<Config<'_>, ConfigError<'_>> {
    let mut c = Config::default();
    let mut seen: u32 = 0;
    let mut child_given = false;
    for (i, word) in line.split_ascii_whitespace().enumerate() {
        if i == 0 && !word.contains('=') && (word == "rtcr" || word.ends_with("/rtcr")) {
            continue;
        }
        let (key, value) = match word.split_once('=') {
            Some(kv) => kv,
            None => {
                match word {
                    "jdb" => c.jdb = true,
                    "report" => c.report = true,
                    "selfcheck" => c.selfcheck = true,
                    "probe" => c.probe = true,
                    "probe-dump" => {
                        c.probe = true;
                        c.probe_dump = true
                    }
                    "bench" => c.bench = true,
                    "full-restore" => c.full_restore = true,
                    _ => return Err(ConfigError::Unknown(word)),
                }
                continue;
            }
        };
        let Some(k) = KEYS.iter().position(|&k| k == key) else { return Err(ConfigError::Unknown(word)) };
        if seen & (1 << k) != 0 {
            return Err(ConfigError::Repeated(key));
        }
        seen |= 1 << k;
        if value.is_empty() {
            return Err(ConfigError::Empty(key));
        }
        match k {
            0 => {
                child_given = true;
                c.child = (value != "none").then_some(value);
            }
            1 => c.interval_ms = number(key, value, 1, 3_600_000)?,
            // at least two slots of one 4 KiB page; at most 16 GiB
            2 => c.store_kib = number(key, value, 8, 16 << 20)?,
            3 => c.max_objects = number(key, value, 1, 1 << 20)? as u32,
            4 => c.max_threads = number(key, value, 1, 4096)? as u32,
            5 => c.max_pages = number(key, value, 1, 1 << 24)? as u32,
            6 => c.restore = Some(value),
            7 => c.crash_ms = Some(number(key, value, 1, 86_400_000)?),
            8 => c.dump_ms = Some(number(key, value, 1, 86_400_000)?),
            9 => c.crash_every_ms = Some(number(key, value, 1, 86_400_000)?),
            10 => c.max_image_failures = number(key, value, 1, 1000)? as u32,
            // at least 1 MiB; at most 4 GiB
            11 => c.heap_kib = number(key, value, 1024, 4 << 20)?,
            _ => c.settle_ms = number(key, value, 1, 10_000)?,
        }
    }
    if !child_given {
        return Err(ConfigError::MissingChild);
    }
    if c.crash_every_ms.is_some() && c.crash_ms.is_none() {
        return Err(ConfigError::Needs { key: "crash_every_ms", needs: "crash_ms" });
    }
    Ok(c)
}
