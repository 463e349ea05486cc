//! Cross-checks our ABI definitions against real l4sys headers, when an L4Re
//! build tree is named.
//!
//! `L4RE_OBJ_X86_64` / `L4RE_OBJ_ARM64`: an L4Re build directory (`O=` of the
//! L4Re make). Its installed headers (`include/<arch>/l4/sys/*.h` and
//! `include/l4/sys/*.h`) are run through bindgen, for types and constants
//! only, into `$OUT_DIR/l4re_<arch>.rs`; `tests/bindgen_crosscheck.rs` then
//! compares values, sizes and offsets with ours. bindgen loads libclang at
//! run time (Debian: `libclang-dev`); without the variables nothing is run
//! and the cross-check test says it was skipped.

use std::env;
use std::path::{Path, PathBuf};

const HEADERS: &[&str] = &[
    "l4/sys/consts.h",
    "l4/sys/types.h",
    "l4/sys/utcb.h",
    "l4/sys/err.h",
    "l4/sys/ipc.h",
    "l4/sys/kip.h",
    "l4/sys/factory.h",
    "l4/sys/task.h",
    "l4/sys/thread.h",
    "l4/sys/ipc_gate.h",
    "l4/sys/irq.h",
    "l4/sys/icu.h",
    "l4/sys/scheduler.h",
    "l4/sys/vcon.h",
    "l4/sys/rcv_endpoint.h",
    "l4/sys/semaphore.h",
    "l4/sigma0/sigma0.h",
    "l4/util/l4mod.h",
];

fn main() {
    println!("cargo:rustc-check-cfg=cfg(l4re_headers)");
    println!("cargo:rerun-if-changed=build.rs");
    let mut any = false;
    for (var, arch, triple) in
        [("L4RE_OBJ_X86_64", "amd64", "x86_64-unknown-none"), ("L4RE_OBJ_ARM64", "arm64", "aarch64-unknown-none")]
    {
        println!("cargo:rerun-if-env-changed={var}");
        let Some(obj) = env::var_os(var) else { continue };
        match generate(Path::new(&obj), arch, triple) {
            Ok(()) => {
                println!("cargo:rustc-cfg=l4re_headers_{arch}");
                any = true;
            }
            Err(e) => {
                // a plain message instead of a panic's backtrace, naming
                // the missing piece when it is libclang
                eprintln!(
                    "l4-sys: {var} is set, so l4-sys checks its ABI against that tree's l4sys headers with bindgen"
                );
                if e.contains("libclang") {
                    eprintln!(
                        "l4-sys: bindgen needs libclang and found none: install it (Debian/Ubuntu: apt-get install \
                         libclang-dev) or point LIBCLANG_PATH at it"
                    );
                }
                eprintln!("l4-sys: bindgen over the headers failed: {e}");
                std::process::exit(1);
            }
        }
    }
    if any {
        println!("cargo:rustc-cfg=l4re_headers");
    }
    println!("cargo:rustc-check-cfg=cfg(l4re_headers_amd64)");
    println!("cargo:rustc-check-cfg=cfg(l4re_headers_arm64)");
}

fn generate(obj: &Path, arch: &str, triple: &str) -> Result<(), String> {
    let inc = obj.join("include");
    let arch_inc = inc.join(arch);
    if !arch_inc.join("l4/sys").is_dir() && !inc.join("l4/sys").is_dir() {
        return Err(format!("no l4/sys headers under {}", inc.display()));
    }
    let mut src = String::new();
    for h in HEADERS {
        if arch_inc.join(h).exists() || inc.join(h).exists() {
            src.push_str(&format!("#include <{h}>\n"));
        }
    }
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join(format!("l4re_{arch}.rs"));
    // bindgen panics when it cannot load libclang: catch that (quietly) and
    // return it as an error like any other
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let generated = std::panic::catch_unwind(|| bindings(&src, triple, &inc, &arch_inc));
    std::panic::set_hook(hook);
    let b = match generated {
        Ok(r) => r?,
        Err(p) => {
            let why = p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()));
            return Err(why.unwrap_or_else(|| "bindgen panicked".into()));
        }
    };
    b.write_to_file(&out).map_err(|e| e.to_string())?;
    for h in HEADERS {
        println!("cargo:rerun-if-changed={}", arch_inc.join(h).display());
        println!("cargo:rerun-if-changed={}", inc.join(h).display());
    }
    Ok(())
}

/// bindgen over `src` (the headers' includes), types and constants only.
fn bindings(src: &str, triple: &str, inc: &Path, arch_inc: &Path) -> Result<bindgen::Bindings, String> {
    bindgen::Builder::default()
        .header_contents("wrapper.h", src)
        .clang_arg(format!("--target={triple}"))
        .clang_arg(format!("-I{}", arch_inc.display()))
        .clang_arg(format!("-I{}", inc.display()))
        .clang_arg("-ffreestanding")
        .clang_arg("-D__L4_NO_INLINE_FUNCS")
        .use_core()
        .layout_tests(false)
        .generate_inline_functions(false)
        .ignore_functions()
        .ignore_methods()
        .derive_default(false)
        .prepend_enum_name(false)
        .allowlist_type("l4_.*|L4_.*|l4util_.*")
        .allowlist_var("L4_.*|SIGMA0_.*|L4UTIL_.*|L4_UTCB_.*")
        .generate()
        .map_err(|e| format!("{e:?}"))
}
