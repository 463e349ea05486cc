#!/usr/bin/env bash
# Turn a captured rtcr console log (serial output of a board or of QEMU run
# with --raw) into plain text: rtcr's defmt lines (rtcr-defmt <hex>) are
# decoded with the format strings of the rtcr ELF that produced them, every
# other line passes through unchanged.
#
#   scripts/decode-log.sh RTCR_ELF [LOG]      (LOG defaults to standard input)
#
# The decoder is `rtcrctl log` (defmt-decoder from crates.io), built here on
# first use. scripts/qemu-boot.sh does the same on the fly.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
[ $# -ge 1 ] && [ $# -le 2 ] || { sed -n '2,10p' "$0" >&2; exit 2; }
# (without L4RE_OBJ_*: the decoder needs no bindgen cross-check, nor libclang)
(cd "$here" && env -u L4RE_OBJ_X86_64 -u L4RE_OBJ_ARM64 cargo build -q --release -p rtcrctl)
exec "${CARGO_TARGET_DIR:-$here/target}/release/rtcrctl" log --elf "$@"
