#!/usr/bin/env bash
# Boot the rtcr root task on Fiasco.OC in QEMU, given an existing Fiasco and
# L4Re build (nothing here builds or fetches them).
#
#   scripts/qemu-boot.sh [--arch x86_64|aarch64] [--timeout SECONDS]
#                        [--keys "KEYS"] [--until TEXT] [--elf PATH | --roottask moe]
#                        [--module FILE]... [--raw] [-- ROOTTASK-ARGS...]
#
# The root task is rtcr (or the ELF of --elf): ROOTTASK-ARGS is rtcr's
# configuration (crates/rtcr-boot/src/config.rs), e.g. `child=none probe`;
# without any, `child=none` is passed.
# --roottask moe boots the standard L4Re way instead (no rtcr): the L4Re
# build's moe is the root task, with the L4Re build's `l4re` as a module
# before the --module files; ROOTTASK-ARGS are moe's, by default
# `--init=rom/NAME` with NAME the first --module's file name, e.g.
#   scripts/qemu-boot.sh --roottask moe --module .../l4f/rtcr-l4-hello
# Every module is found by its file name, as rom/NAME (moe) or NAME (rtcr).
#
# Environment (per architecture, as in tests/qemu.rs):
#   FIASCO_OBJ_X86_64 / FIASCO_OBJ_ARM64  Fiasco build dir holding `fiasco`
#   L4RE_OBJ_X86_64   / L4RE_OBJ_ARM64    L4Re build dir (O=) holding
#                                         bin/<arch>_*/plain/bootstrap and
#                                         bin/<arch>_*/l4f/sigma0
# --keys drives JDB through the serial line (the kernel runs -serial_esc):
#   tokens separated by blanks: @N waits N seconds, ?TEXT waits until the
#   serial output shows TEXT (no blanks; at most the timeout), ESC, DOWN,
#   UP, ENTER, and anything else is typed as is. Example, dump rtcr's
#   object space:
#   --keys "@8 ESC @2 s @1 DOWN DOWN o @3"
# --until TEXT ends the boot (before the timeout) a second after the serial
#   output shows TEXT (plain text: a child's line, not a defmt one).
# The serial log goes to stdout with CRs and colour codes removed, and
# rtcr's defmt lines (rtcr-defmt <hex>) decoded to text on the fly by
# `rtcrctl log --elf` (built here on first use); --raw leaves them encoded.
# Binaries are looked for in $CARGO_TARGET_DIR (default: target/).
#
# Host needs: qemu-system-x86_64 / qemu-system-aarch64 (Debian/Ubuntu:
# qemu-system-x86, qemu-system-arm), and for arm64 the L4Re tree's l4image.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)

arch=x86_64 timeout=30 keys="" until="" elf="" roottask=rtcr modules=() raw=0
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) arch=$2; shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    --keys) keys=$2; shift 2 ;;
    --until) until=$2; shift 2 ;;
    --elf) elf=$2; shift 2 ;;
    --roottask) roottask=$2; shift 2 ;;
    --module) modules+=("$2"); shift 2 ;;
    --raw) raw=1; shift ;;
    --) shift; break ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "qemu-boot: unknown option $1" >&2; exit 2 ;;
  esac
done
rt_args="$*"
case "$roottask" in
  rtcr) ;;
  moe) [ -z "$elf" ] || { echo "qemu-boot: --elf and --roottask moe exclude each other" >&2; exit 2; } ;;
  *) echo "qemu-boot: unknown root task $roottask (rtcr or moe)" >&2; exit 2 ;;
esac

case "$arch" in
  x86_64) fvar=FIASCO_OBJ_X86_64 lvar=L4RE_OBJ_X86_64 l4arch=amd64 target=x86_64-unknown-none qemu=qemu-system-x86_64 qpkg=qemu-system-x86 ;;
  aarch64|arm64) arch=aarch64 fvar=FIASCO_OBJ_ARM64 lvar=L4RE_OBJ_ARM64 l4arch=arm64 target=aarch64-unknown-none qemu=qemu-system-aarch64 qpkg=qemu-system-arm ;;
  *) echo "qemu-boot: unknown architecture $arch" >&2; exit 2 ;;
esac
command -v "$qemu" >/dev/null || { echo "qemu-boot: $qemu not found (Debian/Ubuntu: apt-get install $qpkg)" >&2; exit 3; }
target_dir=${CARGO_TARGET_DIR:-$here/target}
fobj=${!fvar:-} lobj=${!lvar:-}
[ -n "$fobj" ] || { echo "qemu-boot: set $fvar to a Fiasco build directory" >&2; exit 3; }
[ -n "$lobj" ] || { echo "qemu-boot: set $lvar to an L4Re build directory" >&2; exit 3; }
fiasco=$fobj/fiasco
[ -f "$fiasco" ] || { echo "qemu-boot: no fiasco binary in $fobj" >&2; exit 3; }
find_one() { find "$lobj"/bin -path "$1" -type f 2>/dev/null | sort | head -n 1; }
sigma0=$(find_one "*/${l4arch}_*/l4f/sigma0")
[ -n "$sigma0" ] || { echo "qemu-boot: no sigma0 under $lobj/bin/${l4arch}_*/l4f" >&2; exit 3; }
if [ "$roottask" = moe ]; then
  # the L4Re way (conf/modules.list, entry hello): roottask moe --init=rom/X,
  # modules l4re and X
  elf=$(find_one "*/${l4arch}_*/l4f/moe")
  [ -n "$elf" ] || { echo "qemu-boot: no moe under $lobj/bin/${l4arch}_*/l4f" >&2; exit 3; }
  l4re=$(find_one "*/${l4arch}_*/l4f/l4re")
  [ -n "$l4re" ] || { echo "qemu-boot: no l4re under $lobj/bin/${l4arch}_*/l4f" >&2; exit 3; }
  if [ -z "$rt_args" ]; then
    [ ${#modules[@]} -gt 0 ] || { echo "qemu-boot: --roottask moe needs a --module to start (or moe's arguments after --)" >&2; exit 2; }
    rt_args="--init=rom/$(basename "${modules[0]}")"
  fi
  modules=("$l4re" "${modules[@]}")
else
  rt_args=${rt_args:-child=none}
  [ -n "$elf" ] || elf=$target_dir/$target/release/rtcr
  [ -f "$elf" ] || { echo "qemu-boot: $elf missing: cargo build --release -p rtcr --target $target" >&2; exit 3; }
fi
for m in "${modules[@]}"; do
  [ -f "$m" ] || { echo "qemu-boot: module $m missing" >&2; exit 3; }
done

# what QEMU printed so far, for the ?TEXT waits of --keys
seen=$(mktemp "${TMPDIR:-/tmp}/rtcr-qemu-boot.XXXXXX")
pidfile=$seen.pid
watcher=""
cleanup() {
  [ -z "$watcher" ] || kill "$watcher" 2>/dev/null || true
  rm -f "$seen" "$pidfile"
}
trap cleanup EXIT
feed() {
  for t in $keys; do
    case "$t" in
      @*) sleep "${t#@}" ;;
      \?*)
        # wait (at most the timeout) until the serial output shows TEXT
        n=0
        until LC_ALL=C grep -qa -- "${t#?}" "$seen" || [ "$n" -ge $((timeout * 5)) ]; do sleep 0.2; n=$((n + 1)); done ;;
      ESC) printf '\033' ;;
      DOWN) printf '\033[B' ;;
      UP) printf '\033[A' ;;
      ENTER) printf '\r' ;;
      *) printf '%s' "$t" ;;
    esac
  done
}
clean() { tr -d '\r' | sed -u 's/\x1b\[[0-9;]*[A-Za-z]//g'; }
# --until: stop this boot's QEMU (by the pid it wrote) once TEXT shows
if [ -n "$until" ]; then
  (
    until LC_ALL=C grep -qa -- "$until" "$seen" 2>/dev/null; do sleep 0.5; done
    sleep 1
    [ -s "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null
  ) &
  watcher=$!
fi
decode() { cat; }
if [ "$raw" = 0 ] && LC_ALL=C grep -qa '\.defmt' "$elf"; then
  # the decoder needs no L4Re headers: without L4RE_OBJ_* l4-sys's build
  # skips its bindgen cross-check, which would need libclang
  (cd "$here" && env -u L4RE_OBJ_X86_64 -u L4RE_OBJ_ARM64 cargo build -q --release -p rtcrctl) || {
    echo "qemu-boot: building rtcrctl (the decoder of rtcr's defmt lines) failed, cargo said why above;" \
      "--raw boots without it" >&2
    exit 3
  }
  decode() { "$target_dir/release/rtcrctl" log --elf "$elf"; }
fi

case "$arch" in
  x86_64)
    bootstrap=$(find_one "*/${l4arch}_*/plain/bootstrap")
    [ -n "$bootstrap" ] || { echo "qemu-boot: no bootstrap under $lobj/bin/${l4arch}_*/plain" >&2; exit 3; }
    # -initrd separates modules with ',': a literal ',' is written ',,'
    esc() { printf '%s' "$*" | sed 's/,/,,/g'; }
    initrd="$(esc "$fiasco -serial_esc"),$(esc "$sigma0"),$(esc "$elf $rt_args")"
    for m in "${modules[@]}"; do initrd="$initrd,$(esc "$m")"; done
    feed | timeout "$timeout" "$qemu" -M q35 -m 512 -cpu max -no-reboot \
      -display none -monitor none -serial stdio -pidfile "$pidfile" \
      -kernel "$bootstrap" -append "bootstrap" -initrd "$initrd" 2>&1 | tee "$seen" | clean | decode || true
    ;;
  aarch64)
    image=$("$here/scripts/arm64-image.sh" "$fiasco" "$sigma0" "$lobj" "$elf" "$rt_args" "${modules[@]}")
    trap 'cleanup; rm -rf "$(dirname "$image")"' EXIT
    # a kernel built for EL2 (CONFIG_CPU_VIRT) needs the virtualization extension
    machine=virt
    if grep -q '^CONFIG_CPU_VIRT=y' "$fobj/globalconfig.out" 2>/dev/null; then machine=virt,virtualization=true; fi
    feed | timeout "$timeout" "$qemu" -M "$machine" -cpu cortex-a57 -m 1024 \
      -no-reboot -display none -monitor none -serial stdio -pidfile "$pidfile" -kernel "$image" 2>&1 | tee "$seen" | clean | decode || true
    ;;
esac
