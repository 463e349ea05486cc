#!/usr/bin/env bash
# The project's one test command (README "Test"; .ci/run calls it):
# formatting, clippy on the host and both bare-metal targets, release builds
# of the rtcr root task and the children (crates/rtcr-child) for x86_64 and
# aarch64, then every host test.
# Fails on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# The toolchain pinned in rust-toolchain.toml, complete: rustup installs a
# missing toolchain on first use, but one already installed without the two
# bare-metal targets or without rustfmt/clippy is not completed (then the
# bare-metal builds fail with "can't find crate for `core`"). Add what lacks.
targets="x86_64-unknown-none aarch64-unknown-none"
channel=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)
if ! sysroot=$(rustc --print sysroot 2>/dev/null); then
  command -v rustup >/dev/null || { echo "check: no working rustc: install Rust $channel (rust-toolchain.toml)" >&2; exit 1; }
  step "rustup toolchain install $channel (missing)"
  rustup toolchain install "$channel" --profile minimal --component rustfmt --component clippy \
    --target x86_64-unknown-none --target aarch64-unknown-none
  sysroot=$(rustc --print sysroot)
fi
missing=""
for t in $targets; do
  [ -d "$sysroot/lib/rustlib/$t/lib" ] || missing="$missing $t"
done
components=""
cargo fmt --version >/dev/null 2>&1 || components="$components rustfmt"
cargo clippy --version >/dev/null 2>&1 || components="$components clippy"
if [ -n "$missing$components" ]; then
  if ! command -v rustup >/dev/null; then
    echo "check: the Rust toolchain ($sysroot) lacks${missing:+ the targets$missing}${components:+ the components$components}," \
      "and there is no rustup to add them: install Rust $channel with them (rust-toolchain.toml)" >&2
    exit 1
  fi
  if [ -n "$missing" ]; then
    step "rustup target add --toolchain $channel$missing (missing)"
    # shellcheck disable=SC2086 # one word per target
    rustup target add --toolchain "$channel" $missing
  fi
  if [ -n "$components" ]; then
    step "rustup component add --toolchain $channel$components (missing)"
    # shellcheck disable=SC2086 # one word per component
    rustup component add --toolchain "$channel" $components
  fi
fi

step "cargo fmt --check"
cargo fmt --all --check

step "clippy (host, all targets)"
cargo clippy --workspace --all-targets -- -D warnings

for target in $targets; do
  step "clippy ($target)"
  cargo clippy -p rtcr -p l4-sys -p rtcr-boot -p rtcr-core -p rtcr-image -p rtcr-child --target "$target" -- -D warnings
  step "build rtcr and the children ($target, release)"
  cargo build --release -p rtcr -p rtcr-child --target "$target"
done

step "host tests"
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
RTCR_ELF_X86_64="$target_dir/x86_64-unknown-none/release/rtcr" \
RTCR_ELF_AARCH64="$target_dir/aarch64-unknown-none/release/rtcr" \
  cargo test --workspace
