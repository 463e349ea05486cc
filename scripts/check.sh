#!/usr/bin/env bash
# The project's one test command (README "Test"; .ci/run calls it):
# formatting, clippy on the host and both bare-metal targets, release builds
# of the rtcr root task and the children (crates/rtcr-child) for x86_64 and
# aarch64, then every host test.
# Fails on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all --check

step "clippy (host, all targets)"
cargo clippy --workspace --all-targets -- -D warnings

for target in x86_64-unknown-none aarch64-unknown-none; do
  step "clippy ($target)"
  cargo clippy -p rtcr -p l4-sys -p rtcr-boot -p rtcr-core -p rtcr-image -p rtcr-child --target "$target" -- -D warnings
  step "build rtcr and the children ($target, release)"
  cargo build --release -p rtcr -p rtcr-child --target "$target"
done

step "host tests"
RTCR_ELF_X86_64="$PWD/target/x86_64-unknown-none/release/rtcr" \
RTCR_ELF_AARCH64="$PWD/target/aarch64-unknown-none/release/rtcr" \
  cargo test --workspace
