#!/usr/bin/env bash
# Build the single boot image arm64 bootstrap needs (bootstrap + fiasco +
# sigma0 + the root task, rtcr or moe [+ modules]) with the l4image tool of
# an existing L4Re build. Prints the image's path. Used by scripts/qemu-boot.sh.
#
#   scripts/arm64-image.sh [--raw] [--kernel-opts "OPTS"] FIASCO SIGMA0 L4RE_OBJ ROOTTASK_ELF "ROOTTASK ARGS" [MODULE...]
#
# --raw          a raw arm64 Image (from bootstrap.raw, with its Linux-style
#                header), the form the board machines (QEMU raspi4b,
#                imx8mp-evk; a board's firmware or U-Boot) start; without it
#                an ELF (from bootstrap.elf), as QEMU virt takes it
# --kernel-opts  the kernel's command line (default: -serial_esc)
set -euo pipefail
raw=0 kopts="-serial_esc"
while [ $# -gt 0 ]; do
  case "$1" in
    --raw) raw=1; shift ;;
    --kernel-opts) kopts=$2; shift 2 ;;
    *) break ;;
  esac
done
[ $# -ge 5 ] || { sed -n '2,13p' "$0" >&2; exit 2; }
fiasco=$1 sigma0=$2 lobj=$3 elf=$4 args=$5
shift 5
l4image=$lobj/source/tool/bin/l4image
[ -x "$l4image" ] || l4image=$(command -v l4image || true)
[ -n "$l4image" ] || { echo "arm64-image: no l4image in $lobj/source/tool/bin or PATH" >&2; exit 3; }
kind=elf
[ "$raw" = 1 ] && kind=raw
base=$(find -L "$lobj"/bin -path "*/arm64_*/plain/bootstrap.$kind" -type f | sort | head -n 1)
[ -n "$base" ] || { echo "arm64-image: no bin/arm64_*/plain/bootstrap.$kind in $lobj" >&2; exit 3; }

work=${TMPDIR:-/tmp}/rtcr-arm64-image.$$
mkdir -p "$work"
list=$work/modules.list
# modaddr is relative to the RAM base (QEMU virt and the i.MX8M Plus:
# 0x4000_0000, the Raspberry Pi 4: 0); the modules then start at
# RAM + 0x110_0000, clear of the kernel, sigma0 and of rtcr at RAM + 128 MiB
# as long as they stay below 110 MiB.
{
  echo "modaddr 0x01100000"
  echo "entry rtcr"
  echo "kernel $(basename "$fiasco")${kopts:+ $kopts}"
  echo "sigma0 $(basename "$sigma0")"
  echo "roottask $(basename "$elf") $args"
  for m in "$@"; do echo "module $(basename "$m")"; done
} > "$list"
search="$(dirname "$fiasco"):$(dirname "$sigma0"):$(dirname "$elf")"
for m in "$@"; do search="$search:$(dirname "$m")"; done
"$l4image" -i "$base" -o "$work/rtcr.$kind" create --entry rtcr \
  --modules-list-file "$list" --search-path "$search" > "$work/l4image.log" 2>&1 \
  || { cat "$work/l4image.log" >&2; exit 1; }
echo "$work/rtcr.$kind"
