//! rtcr-core reads one way: the state every part shares, then the services
//! and the checkpointer, the restorer, the server loop, the driver. A
//! module may name only modules before it (imports and `crate::` paths in
//! code; doc links do not count).

const ORDER: [(&str, &str); 10] = [
    ("labels", include_str!("../src/labels.rs")),
    ("calls", include_str!("../src/calls.rs")),
    ("pageset", include_str!("../src/pageset.rs")),
    ("state", include_str!("../src/state.rs")),
    ("services", include_str!("../src/services.rs")),
    ("checkpoint", include_str!("../src/checkpoint.rs")),
    ("restore", include_str!("../src/restore.rs")),
    ("supervisor", include_str!("../src/supervisor.rs")),
    ("driver", include_str!("../src/driver.rs")),
    ("lib", include_str!("../src/lib.rs")),
];

/// The modules `src` names through `crate::<module>` outside comments.
fn named(src: &str) -> Vec<&'static str> {
    let code: String = src
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .map(|l| l.split(" //").next().unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    ORDER.iter().map(|(m, _)| *m).filter(|m| code.contains(&format!("crate::{m}::"))).collect()
}

#[test]
fn each_module_names_only_those_before_it() {
    for (i, (m, src)) in ORDER.iter().enumerate() {
        if *m == "lib" {
            continue;
        }
        for n in named(src) {
            let j = ORDER.iter().position(|(x, _)| *x == n).unwrap();
            // services and checkpoint stand side by side: neither names the other
            assert!(j < i && !(*m == "checkpoint" && n == "services"), "{m} names {n}, which comes after it");
        }
    }
}

#[test]
fn the_check_sees_an_import() {
    assert_eq!(named("use crate::state::{Supervisor};\n// crate::driver:: in a comment"), vec!["state"]);
}
