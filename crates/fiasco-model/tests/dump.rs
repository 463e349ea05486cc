//! The capability dump has the shape of JDB's object-space listing, and
//! holds the same slots and types as the real kernel's root task
//! (dumped on Fiasco x86_64 with `scripts/qemu-boot.sh --keys "... s DOWN DOWN o"`):
//!
//! ```text
//! 000000:       --        00009DSW Task    00000DSW Factory 0000bDSW Thread
//! 000004:0000aDSW Gate    00005DSW Vlog    00002DSW Icu/Pfc 00003DSW Sched
//! 000008:       --               --        00004DSW Jdb            --
//! ```

mod common;
use common::*;

use l4_sys::cap::CapIdx;
use l4_sys::factory;

/// The slot/type/rights part of a JDB line (object ids differ per boot).
fn shape(line: &str) -> Vec<String> {
    let (_, rest) = line.split_once(':').unwrap();
    rest.as_bytes()
        .chunks(17)
        .map(|c| {
            let s = std::str::from_utf8(c).unwrap();
            if s.trim() == "--" {
                "--".to_string()
            } else {
                s.get(5..).unwrap_or("").trim().to_string()
            }
        })
        .collect()
}

#[test]
fn root_task_dump_matches_the_kernels() {
    let mut m = model();
    let root = m.boot_objects().root_task;
    let dump = m.jdb_objspace(root);
    let lines: Vec<&str> = dump.lines().collect();
    let kernel = [
        "000000:       --        00009DSW Task    00000DSW Factory 0000bDSW Thread",
        "000004:0000aDSW Gate    00005DSW Vlog    00002DSW Icu/Pfc 00003DSW Sched",
        "000008:       --               --        00004DSW Jdb            --",
    ];
    assert_eq!(lines.len(), 3, "{dump}");
    for (ours, theirs) in lines.iter().zip(kernel) {
        assert_eq!(&ours[..7], &theirs[..7]);
        let mut t = shape(theirs);
        let mut o = shape(ours);
        t.retain(|x| !x.is_empty());
        o.retain(|x| !x.is_empty());
        assert_eq!(o, t, "model:\n{dump}");
    }
    // and the rows carry what JDB shows per object
    let mut r = m.root();
    factory::create_gate(&mut r, F, CapIdx(0x20), Some((ROOT_THREAD, 0x40))).unwrap();
    let m = r.model();
    let listing = m.cap_listing(root);
    assert!(listing.contains("0x0020 Gate    DSW srv label=0x40 thread="), "{listing}");
}
