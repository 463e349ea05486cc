#!/usr/bin/env bash
# Boot the rtcr root task on Fiasco.OC in QEMU, given an existing Fiasco and
# L4Re build (nothing here builds or fetches them).
#
#   scripts/qemu-boot.sh [--arch x86_64|aarch64] [--machine MACHINE]
#                        [--timeout SECONDS] [--keys "KEYS"] [--until TEXT]
#                        [--elf PATH | --roottask moe] [--smp N]
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
# --machine picks the emulated machine (implies --arch aarch64 unless it
# is q35); each has its own kernel and L4Re build (boot/BOARDS.md):
#   q35 (x86_64), virt (aarch64; the default of each architecture)
#   raspi4b, or rpi4: Raspberry Pi 4B (BCM2711, Cortex-A72, GIC-400); the
#     console is the mini-UART (QEMU's second serial line); rtcr must be
#     linked into the Pi's low GiB: without --elf, rtcr is built here on
#     first use with RTCR_LINK_BASE=0x08000000 into $CARGO_TARGET_DIR/rpi4
#   imx8mp-evk, or imx8mp: NXP i.MX 8M Plus EVK (Cortex-A53 x4, GICv3, 3 GiB
#     from 0x4000_0000); the console is UART1; rtcr as for virt
# The board machines start a raw arm64 Image (not an ELF).
#
# Environment (per machine, as in tests/qemu.rs and tests/qemu_boards.rs):
#   FIASCO_OBJ_X86_64 / FIASCO_OBJ_ARM64  Fiasco build dir holding `fiasco`
#     (raspi4b: FIASCO_OBJ_RPI4, imx8mp-evk: FIASCO_OBJ_IMX8MP)
#   L4RE_OBJ_X86_64   / L4RE_OBJ_ARM64    L4Re build dir (O=) holding
#                                         bin/<arch>_*/plain/bootstrap and
#                                         bin/<arch>_*/l4f/sigma0
#     (raspi4b: L4RE_OBJ_RPI4, PLATFORM_TYPE=rpi;
#      imx8mp-evk: L4RE_OBJ_IMX8MP, PLATFORM_TYPE=imx8m)
# --keys drives JDB through the serial line (the kernel runs -serial_esc,
# except on raspi4b, where the mini-UART's receive interrupt is not used:
# there JDB reads keys only once it is entered, e.g. by rtcr's `jdb`):
#   tokens separated by blanks: @N waits N seconds, ?TEXT waits until the
#   serial output shows TEXT (no blanks; at most the timeout), ESC, DOWN,
#   UP, ENTER, and anything else is typed as is. Example, dump rtcr's
#   object space:
#   --keys "@8 ESC @2 s @1 DOWN DOWN o @3"
# --smp N gives the machine N CPUs (q35 and virt; default 1; the board
#   machines have their own four).
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

arch=x86_64 machine="" timeout=30 keys="" until="" elf="" roottask=rtcr modules=() raw=0 smp=1
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) arch=$2; shift 2 ;;
    --machine) machine=$2; shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    --keys) keys=$2; shift 2 ;;
    --until) until=$2; shift 2 ;;
    --elf) elf=$2; shift 2 ;;
    --roottask) roottask=$2; shift 2 ;;
    --module) modules+=("$2"); shift 2 ;;
    --raw) raw=1; shift ;;
    --smp) smp=$2; shift 2 ;;
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

case "$machine" in
  "") ;;
  q35) arch=x86_64 ;;
  virt) arch=aarch64 ;;
  raspi4b|rpi4) arch=aarch64 machine=raspi4b ;;
  imx8mp-evk|imx8mp) arch=aarch64 machine=imx8mp-evk ;;
  *) echo "qemu-boot: unknown machine $machine (q35, virt, raspi4b, imx8mp-evk)" >&2; exit 2 ;;
esac
case "$arch" in
  x86_64) fvar=FIASCO_OBJ_X86_64 lvar=L4RE_OBJ_X86_64 l4arch=amd64 target=x86_64-unknown-none qemu=qemu-system-x86_64 qpkg=qemu-system-x86 ;;
  aarch64|arm64) arch=aarch64 fvar=FIASCO_OBJ_ARM64 lvar=L4RE_OBJ_ARM64 l4arch=arm64 target=aarch64-unknown-none qemu=qemu-system-aarch64 qpkg=qemu-system-arm ;;
  *) echo "qemu-boot: unknown architecture $arch" >&2; exit 2 ;;
esac
[ -n "$machine" ] || { [ "$arch" = x86_64 ] && machine=q35 || machine=virt; }
# per machine: the build variables, where rtcr must lie (its RAM window,
# [lo, hi)), the link base it is built with here (none: the default build)
board_base=""
case "$machine" in
  q35) ram_lo=0x100000 ram_hi=0x20000000 ;;
  virt) ram_lo=0x40000000 ram_hi=0x80000000 ;;
  # the first GiB less the VideoCore's part: RAM on every Pi 4 model
  raspi4b) fvar=FIASCO_OBJ_RPI4 lvar=L4RE_OBJ_RPI4 ram_lo=0x80000 ram_hi=0x3b400000 board_base=0x08000000 ;;
  imx8mp-evk) fvar=FIASCO_OBJ_IMX8MP lvar=L4RE_OBJ_IMX8MP ram_lo=0x40000000 ram_hi=0x100000000 ;;
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
  if [ -z "$elf" ] && [ -n "$board_base" ]; then
    # rtcr linked for the board (build.rs reads RTCR_LINK_BASE), in a target
    # dir of its own so that the default build stays as it is
    board_dir=$target_dir/$machine
    (cd "$here" && RTCR_LINK_BASE=$board_base cargo build -q --release -p rtcr --target "$target" \
      --target-dir "$board_dir") || {
      echo "qemu-boot: building rtcr linked at $board_base for $machine failed, cargo said why above" >&2
      exit 3
    }
    elf=$board_dir/$target/release/rtcr
  fi
  [ -n "$elf" ] || elf=$target_dir/$target/release/rtcr
  [ -f "$elf" ] || { echo "qemu-boot: $elf missing: cargo build --release -p rtcr --target $target" >&2; exit 3; }
  # bootstrap loads the root task at its physical link address: it must be RAM
  # on the machine (the ELF header's entry point, little endian, at byte 24)
  entry=0x$(od -An -t x8 -j 24 -N 8 "$elf" | tr -d ' \n')
  if [ $((entry)) -lt $((ram_lo)) ] || [ $((entry)) -ge $((ram_hi)) ]; then
    echo "qemu-boot: $elf is linked at $entry, which is not RAM for it on $machine ($ram_lo..$ram_hi);" \
      "build it with RTCR_LINK_BASE (build.rs, boot/BOARDS.md)" >&2
    exit 3
  fi
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
    feed | timeout "$timeout" "$qemu" -M q35 -m 512 -cpu max -smp "$smp" -no-reboot \
      -display none -monitor none -serial stdio -pidfile "$pidfile" \
      -kernel "$bootstrap" -append "bootstrap" -initrd "$initrd" 2>&1 | tee "$seen" | clean | decode || true
    ;;
  aarch64)
    # the board machines start a raw Image; the Pi's kernel runs without
    # -serial_esc (its mini-UART receive interrupt is not usable there)
    img_opts=()
    case "$machine" in
      raspi4b) img_opts=(--raw --kernel-opts "") ;;
      imx8mp-evk) img_opts=(--raw) ;;
    esac
    image=$("$here/scripts/arm64-image.sh" "${img_opts[@]}" "$fiasco" "$sigma0" "$lobj" "$elf" "$rt_args" "${modules[@]}")
    trap 'cleanup; rm -rf "$(dirname "$image")"' EXIT
    # a kernel built for EL2 (CONFIG_CPU_VIRT) needs the virtualization extension
    case "$machine" in
      virt)
        qm=virt
        if grep -q '^CONFIG_CPU_VIRT=y' "$fobj/globalconfig.out" 2>/dev/null; then qm=virt,virtualization=true; fi
        qopts=(-M "$qm" -cpu cortex-a57 -m 1024 -smp "$smp" -serial stdio) ;;
      # 2 GiB, four A72 (fixed by the machine); serial 0 is the PL011, 1 the mini-UART
      raspi4b) qopts=(-M raspi4b -serial null -serial stdio) ;;
      # the EVK's 3 GiB from 0x4000_0000 and its four A53; serial 0 is UART1
      imx8mp-evk) qopts=(-M imx8mp-evk -m 3G -smp 4 -serial stdio) ;;
    esac
    feed | timeout "$timeout" "$qemu" "${qopts[@]}" \
      -no-reboot -display none -monitor none -pidfile "$pidfile" -kernel "$image" 2>&1 | tee "$seen" | clean | decode || true
    ;;
esac
