#!/usr/bin/env bash
# Build l4re-apps/ (rtcr's L4Re test programs rtcr-l4-hello and
# rtcr-l4-suite, an L4Re package) with L4Re's own build system against an
# existing L4Re build directory (nothing here fetches or builds L4Re), check
# that each is a static ET_EXEC for the architecture, and print their paths.
#
#   scripts/build-l4re-apps.sh --arch x86_64|aarch64
#
# Environment:
#   L4RE_OBJ_X86_64 / L4RE_OBJ_ARM64  the L4Re build dir (O=); its `source`
#                                     link leads to the L4Re tree (L4DIR)
# Runs `make L4DIR=$L4RE_OBJ/source O=$L4RE_OBJ` in l4re-apps/: the objects
# go to $L4RE_OBJ/ext-pkg/..., the programs to
# $L4RE_OBJ/bin/<arch>_<cpu>/l4f/ (amd64_gen, arm64_armv8a, ...).
# Host needs: GNU make and the compiler the L4Re tree was configured with
# (gcc/g++ for amd64, aarch64-linux-gnu-gcc/g++ for arm64: Debian/Ubuntu
# gcc g++, gcc-aarch64-linux-gnu g++-aarch64-linux-gnu), readelf (binutils).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)

arch=""
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) arch=$2; shift 2 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "build-l4re-apps: unknown option $1" >&2; exit 2 ;;
  esac
done

case "$arch" in
  x86_64) lvar=L4RE_OBJ_X86_64 l4arch=amd64 machine="Advanced Micro Devices X86-64" ;;
  aarch64|arm64) arch=aarch64 lvar=L4RE_OBJ_ARM64 l4arch=arm64 machine="AArch64" ;;
  "") echo "build-l4re-apps: --arch x86_64|aarch64 is required" >&2; exit 2 ;;
  *) echo "build-l4re-apps: unknown architecture $arch (x86_64 or aarch64)" >&2; exit 2 ;;
esac

lobj=${!lvar:-}
[ -n "$lobj" ] || { echo "build-l4re-apps: set $lvar to an L4Re build directory (O=) for $l4arch" >&2; exit 3; }
[ -f "$lobj/.config.all" ] || { echo "build-l4re-apps: $lobj is not a configured L4Re build directory (no .config.all)" >&2; exit 3; }
grep -q "^CONFIG_BUILD_ARCH_$l4arch=y" "$lobj/.config.all" ||
  { echo "build-l4re-apps: $lobj is not built for $l4arch ($lvar)" >&2; exit 3; }
l4dir=$lobj/source
[ -f "$l4dir/mk/prog.mk" ] || { echo "build-l4re-apps: $l4dir (the build dir's link to the L4Re tree) has no mk/prog.mk" >&2; exit 3; }
command -v make >/dev/null || { echo "build-l4re-apps: make not found (Debian/Ubuntu: apt-get install make)" >&2; exit 3; }
command -v readelf >/dev/null || { echo "build-l4re-apps: readelf not found (Debian/Ubuntu: apt-get install binutils)" >&2; exit 3; }
# the compilers the tree was configured with (L4Re records them in .config)
for v in CONFIGURED_CC CONFIGURED_CXX; do
  c=$(sed -n "s/^$v=\"\{0,1\}\([^\"]*\)\"\{0,1\}\$/\1/p" "$lobj/.config" 2>/dev/null | head -n 1)
  if [ -n "$c" ] && ! command -v "$c" >/dev/null; then
    echo "build-l4re-apps: $lobj was configured with the compiler $c ($v), which is not installed" >&2
    exit 3
  fi
done

# the build log goes to stderr, so that stdout holds only the paths
make -C "$here/l4re-apps" L4DIR="$l4dir" O="$lobj" -j"${JOBS:-2}" >&2 ||
  { echo "build-l4re-apps: make in l4re-apps/ against $lobj failed (its output above)" >&2; exit 1; }

fail() { echo "build-l4re-apps: $1: $2" >&2; exit 4; }
for prog in rtcr-l4-hello rtcr-l4-suite; do
  elf=$(find "$lobj/bin" -path "*/${l4arch}_*/l4f/$prog" -type f 2>/dev/null | sort | head -n 1)
  [ -n "$elf" ] || fail "$prog" "not installed under $lobj/bin/${l4arch}_*/l4f"
  hdr=$(LC_ALL=C readelf -h "$elf")
  grep -q 'Type:[[:space:]]*EXEC' <<<"$hdr" || fail "$elf" "not ET_EXEC (a static program)"
  grep -q "Machine:[[:space:]]*$machine" <<<"$hdr" || fail "$elf" "not an $arch ELF"
  LC_ALL=C readelf -lW "$elf" | grep -qE '^[[:space:]]*(INTERP|DYNAMIC)' && fail "$elf" "has PT_INTERP or PT_DYNAMIC"
  echo "$elf"
done
