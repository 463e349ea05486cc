//! The roottask line: defaults, every key, and an error naming the word for
//! every kind of mistake.

use rtcr_boot::config::{parse, Config, ConfigError};

#[test]
fn defaults_and_the_child() {
    let c = parse("rtcr child=hello").unwrap();
    assert_eq!(c, Config { child: Some("hello"), ..Config::default() });
    assert_eq!(parse("child=none").unwrap().child, None);
    // bootstrap may pass rtcr's path first
    assert_eq!(parse("/boot/rtcr child=a").unwrap().child, Some("a"));
}

#[test]
fn every_key() {
    let c = parse(
        "rtcr child=demo interval_ms=250 store_kib=0x800 max_objects=32 max_threads=4 max_pages=100 restore=img \
         crash_ms=1500 dump_ms=0x7d0 crash_every_ms=10000 max_image_failures=5 heap_kib=65536 settle_ms=50 jdb report \
         selfcheck probe bench full-restore",
    )
    .unwrap();
    assert_eq!(
        c,
        Config {
            child: Some("demo"),
            interval_ms: 250,
            store_kib: 2048,
            max_objects: 32,
            max_threads: 4,
            max_pages: 100,
            restore: Some("img"),
            crash_ms: Some(1500),
            crash_every_ms: Some(10_000),
            max_image_failures: 5,
            dump_ms: Some(2000),
            jdb: true,
            report: true,
            selfcheck: true,
            probe: true,
            probe_dump: false,
            heap_kib: 65536,
            settle_ms: 50,
            bench: true,
            full_restore: true,
        }
    );
    let d = parse("child=none probe-dump").unwrap();
    assert!(d.probe && d.probe_dump);
}

#[test]
fn diagnostics_are_off_unless_asked_for() {
    // the default boot goes straight to the child
    let c = parse("child=demo").unwrap();
    assert!(!c.report && !c.selfcheck && !c.probe && !c.probe_dump && !c.jdb && !c.bench);
    // a recovery keeps the crashed child's task unless told not to
    assert!(!c.full_restore);
    // each flag turns on its own part only
    let r = parse("child=demo report").unwrap();
    assert!(r.report && !r.selfcheck && !r.probe);
    let s = parse("child=demo selfcheck").unwrap();
    assert!(s.selfcheck && !s.report && !s.probe);
    let p = parse("child=none probe").unwrap();
    assert!(p.probe && !p.probe_dump && !p.report && !p.selfcheck);
    // a flag given twice is the same flag
    assert_eq!(parse("child=a report report"), parse("child=a report"));
    // flags take no value, and are spelt as listed
    assert_eq!(parse("child=a report=1"), Err(ConfigError::Unknown("report=1")));
    assert_eq!(parse("child=a self-check"), Err(ConfigError::Unknown("self-check")));
    assert_eq!(parse("child=a Report"), Err(ConfigError::Unknown("Report")));
}

#[test]
fn mistakes_are_named() {
    assert_eq!(parse("rtcr"), Err(ConfigError::MissingChild));
    assert_eq!(parse("child=a intervall_ms=5"), Err(ConfigError::Unknown("intervall_ms=5")));
    assert_eq!(parse("child=a verbose"), Err(ConfigError::Unknown("verbose")));
    assert_eq!(parse("child=a child=b"), Err(ConfigError::Repeated("child")));
    assert_eq!(parse("child="), Err(ConfigError::Empty("child")));
    let e = parse("child=a interval_ms=0").unwrap_err();
    assert_eq!(e, ConfigError::BadNumber { key: "interval_ms", value: "0", min: 1, max: 3_600_000 });
    assert!(matches!(parse("child=a store_kib=4"), Err(ConfigError::BadNumber { key: "store_kib", .. })));
    assert!(matches!(parse("child=a heap_kib=512"), Err(ConfigError::BadNumber { key: "heap_kib", .. })));
    assert_eq!(parse("child=a").unwrap().heap_kib, 16384, "the default: 16 MiB");
    assert_eq!(parse("child=a").unwrap().settle_ms, 10, "the default: 10 ms");
    assert!(matches!(parse("child=a settle_ms=0"), Err(ConfigError::BadNumber { key: "settle_ms", .. })));
    assert!(matches!(parse("child=a crash_ms=0"), Err(ConfigError::BadNumber { key: "crash_ms", .. })));
    assert_eq!(parse("child=a dump_ms=1 dump_ms=2"), Err(ConfigError::Repeated("dump_ms")));
    assert!(matches!(parse("child=a max_pages=lots"), Err(ConfigError::BadNumber { key: "max_pages", .. })));
    assert!(matches!(parse("child=a max_threads=0x"), Err(ConfigError::BadNumber { .. })));
    assert!(matches!(parse("child=a max_objects=99999999999999999999999"), Err(ConfigError::BadNumber { .. })));
    // the messages say what to do
    let msg = format!("{}", parse("child=a interval_ms=0").unwrap_err());
    assert_eq!(msg, "interval_ms=0: want a number from 1 to 3600000 (decimal or 0x hex)");
    assert!(format!("{}", ConfigError::MissingChild).contains("child=none"));
    // an unknown word: the message lists every word there is
    assert_eq!(
        format!("{}", parse("child=a selfchek").unwrap_err()),
        "unknown word 'selfchek' (known: child= interval_ms= store_kib= max_objects= max_threads= max_pages= \
         restore= crash_ms= dump_ms= crash_every_ms= max_image_failures= heap_kib= settle_ms= jdb report selfcheck probe \
         probe-dump bench full-restore)"
    );
    // a repeated crash needs the first; failures are counted from 1
    let e = parse("child=a crash_every_ms=100").unwrap_err();
    assert_eq!(e, ConfigError::Needs { key: "crash_every_ms", needs: "crash_ms" });
    assert_eq!(format!("{e}"), "crash_every_ms= means something only with crash_ms=");
    assert!(matches!(parse("child=a max_image_failures=0"), Err(ConfigError::BadNumber { .. })));
    assert_eq!(parse("child=a").unwrap().max_image_failures, 3, "the default");
}

proptest::proptest! {
    #[test]
    fn any_line_parses_or_errs_without_panicking(line in "\\PC{0,120}") {
        let _ = parse(&line);
    }

    #[test]
    fn numbers_round_trip(n in 1u64..=3_600_000) {
        let dec = format!("child=x interval_ms={n}");
        proptest::prop_assert_eq!(parse(&dec).unwrap().interval_ms, n);
        let hex = format!("child=x interval_ms={n:#x}");
        proptest::prop_assert_eq!(parse(&hex).unwrap().interval_ms, n);
    }
}
