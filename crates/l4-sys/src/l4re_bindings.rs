//! bindgen output over real l4sys headers (only with `L4RE_OBJ_*` set; see
//! build.rs). Types and constants only; used by the cross-check test.
#![allow(non_camel_case_types, non_upper_case_globals, non_snake_case, dead_code, missing_docs)]
#![allow(clippy::all)]

#[cfg(l4re_headers_amd64)]
pub mod amd64 {
    #![allow(non_camel_case_types, non_upper_case_globals, non_snake_case, dead_code, missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/l4re_amd64.rs"));
}

#[cfg(l4re_headers_arm64)]
pub mod arm64 {
    #![allow(non_camel_case_types, non_upper_case_globals, non_snake_case, dead_code, missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/l4re_arm64.rs"));
}
