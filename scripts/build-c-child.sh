#!/usr/bin/env bash
# Build rtcr-c-child (c-child/): a freestanding C child compiled against the
# l4sys headers of an existing L4Re build (nothing here fetches or builds
# L4Re), checked to be a static ET_EXEC inside rtcr's child range.
#
#   scripts/build-c-child.sh --arch x86_64|aarch64 [--out DIR]
#
# Environment:
#   L4RE_OBJ_X86_64 / L4RE_OBJ_ARM64  the L4Re build dir (O=); its include/
#                                     tree holds the installed headers
#   CC_X86_64 / CC_AARCH64            the compiler (default: gcc on an x86_64
#                                     host, else x86_64-linux-gnu-gcc;
#                                     aarch64-linux-gnu-gcc)
# Writes DIR/rtcr-c-child (default DIR: $CARGO_TARGET_DIR or target/, then
# <arch>-unknown-none/release, beside the Rust children) and prints its path.
# Host needs: the compiler (Debian/Ubuntu: gcc, gcc-aarch64-linux-gnu) and
# readelf (binutils).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)

arch="" out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) arch=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "build-c-child: unknown option $1" >&2; exit 2 ;;
  esac
done

case "$arch" in
  x86_64)
    lvar=L4RE_OBJ_X86_64 l4arch=amd64 base=0x02000000 machine="Advanced Micro Devices X86-64"
    if [ -n "${CC_X86_64:-}" ]; then cc=$CC_X86_64
    elif [ "$(uname -m)" = x86_64 ]; then cc=gcc
    else cc=x86_64-linux-gnu-gcc; fi
    cpkg="gcc (on x86_64) or gcc-x86-64-linux-gnu"
    aflags=(-mno-red-zone -fcf-protection=none) ;;
  aarch64|arm64)
    arch=aarch64 lvar=L4RE_OBJ_ARM64 l4arch=arm64 base=0x4C000000 machine="AArch64"
    cc=${CC_AARCH64:-aarch64-linux-gnu-gcc}
    cpkg=gcc-aarch64-linux-gnu
    aflags=(-mgeneral-regs-only -mno-outline-atomics) ;;
  "") echo "build-c-child: --arch x86_64|aarch64 is required" >&2; exit 2 ;;
  *) echo "build-c-child: unknown architecture $arch (x86_64 or aarch64)" >&2; exit 2 ;;
esac

lobj=${!lvar:-}
[ -n "$lobj" ] || { echo "build-c-child: set $lvar to an L4Re build directory (its include/ tree has the l4sys headers)" >&2; exit 3; }
inc=$lobj/include
for h in l4/sys/ipc.h "$l4arch/l4/sys/arch/ipc.h" l4/sigma0/sigma0.h; do
  [ -f "$inc/$h" ] || { echo "build-c-child: $inc/$h missing: is $lobj a built L4Re directory for $l4arch?" >&2; exit 3; }
done
command -v "$cc" >/dev/null || { echo "build-c-child: the C compiler $cc not found (Debian/Ubuntu: apt-get install $cpkg)" >&2; exit 3; }
command -v readelf >/dev/null || { echo "build-c-child: readelf not found (Debian/Ubuntu: apt-get install binutils)" >&2; exit 3; }
[ -n "$out" ] || out=${CARGO_TARGET_DIR:-$here/target}/$arch-unknown-none/release
mkdir -p "$out"
elf=$out/rtcr-c-child
src=$here/c-child

"$cc" -std=gnu11 -O2 -g0 -Wall -Wextra -Werror -Wno-unused-parameter \
  -ffreestanding -fno-builtin -nostdlib -nostdinc -static -fno-pic -no-pie \
  -fno-stack-protector -fno-asynchronous-unwind-tables -fno-unwind-tables \
  -fno-common "${aflags[@]}" \
  -isystem "$inc/$l4arch" -isystem "$inc" -isystem "$("$cc" -print-file-name=include)" \
  -Wl,-T,"$src/child.ld" -Wl,--defsym=CHILD_BASE=$base -Wl,--build-id=none \
  -Wl,-z,max-page-size=4096 -Wl,-z,norelro -Wl,--no-dynamic-linker \
  -o "$elf" "$src/start-$arch.S" "$src/rtcr-c-child.c" -lgcc

# the child contract (README "Writing a child"): a static ET_EXEC for this
# machine, no PT_INTERP/PT_DYNAMIC, every PT_LOAD inside 0x1_0000..0x6000_0000
fail() { echo "build-c-child: $elf: $*" >&2; exit 4; }
hdr=$(LC_ALL=C readelf -h "$elf")
grep -q 'Type:[[:space:]]*EXEC' <<<"$hdr" || fail "not ET_EXEC"
grep -q "Machine:[[:space:]]*$machine" <<<"$hdr" || fail "not an $arch ELF"
ph=$(LC_ALL=C readelf -lW "$elf")
grep -qE '^[[:space:]]*(INTERP|DYNAMIC)' <<<"$ph" && fail "has PT_INTERP or PT_DYNAMIC"
LC_ALL=C readelf -rW "$elf" | grep -q 'Relocation section' && fail "has relocations"
loads=$(awk '$1 == "LOAD" { print $3, $6 }' <<<"$ph")
[ -n "$loads" ] || fail "no PT_LOAD"
while read -r va memsz; do
  lo=$((va)) hi=$((va + memsz))
  { [ "$lo" -ge $((0x10000)) ] && [ "$hi" -le $((0x60000000)) ]; } ||
    fail "PT_LOAD $va+$memsz outside the child range 0x10000..0x60000000"
  [ $((lo % 4096)) -eq 0 ] || fail "PT_LOAD $va not page-aligned"
done <<<"$loads"
entry=$(awk '/Entry point/ { print $4 }' <<<"$hdr")
[ "$((entry))" -eq "$((base))" ] || fail "entry $entry is not the link address $base"
echo "$elf"
