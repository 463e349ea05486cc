#!/usr/bin/env bash
# The kernel benchmark (issue 12): what rtcr costs a child on a real
# Fiasco.OC, against baselines measured in the same boots. Not a test:
# it prints figures, it asserts nothing.
#
#   scripts/bench-kernel.sh --arch x86_64|aarch64 [--timeout SECONDS] [--keep DIR | --from DIR]
#                           [--protect-only]
#
# Two boots of existing builds (nothing here builds Fiasco or L4Re; the
# same variables as scripts/qemu-boot.sh and tests/qemu.rs):
#   1. rtcr-bench as the root task: a gate round trip and an IRQ's trigger
#      to delivery, measured by the child itself (1000 each);
#   2. rtcr with rtcr-bench as its child (`bench` on rtcr's line: rtcr
#      logs what it measured as defmt lines, decoded by qemu-boot.sh):
#      the same two measurements under rtcr; then the child writes 1, 16,
#      256 and 4096 pages per pass, each for a while, while rtcr
#      checkpoints it every second (a pass of 4096 pages must fit between
#      two checkpoints: each page faults to rtcr once per interval) and
#      crashes it every 25 s (crash_ms), so it is restored with images of
#      each size.
# It prints, per architecture: the pause (median, p99, max) per dirty set
# against a memcpy of the same bytes timed by rtcr in the same boot; the
# copy after the resume; the image per child page; each recovery by phase
# against a memcpy of the image and against issue 12's goal (3 x the
# pause of a checkpoint of the whole child + 2 x the memcpy); the gate
# round trip and the IRQ under rtcr against the root task; rtcr's heap and
# store per child page; and what the write-protect of a checkpoint would
# cost if the child's memory were mapped in 2 MiB superpages: rtcr times,
# before its child starts, the one kernel call that takes W from 16 MiB
# (4096 pages) mapped into a scratch task as 4 KiB pages and as 2 MiB pages,
# and from 16 pages (src/protect_bench.rs). Under QEMU TCG these are
# emulator figures, on a host shared with other work: read the ratios, not
# the microseconds.
#
# --protect-only boots only rtcr, until its child's first figure, and
# prints only that last measurement (a minute instead of many; with
# --keep/--from the log is DIR/<arch>-protect.log).
#
# Needs: the release builds of rtcr and rtcr-bench for the architecture
# in $CARGO_TARGET_DIR (default target/):
#   cargo build --release -p rtcr -p rtcr-child --target <arch>-unknown-none
# and what scripts/qemu-boot.sh needs. --keep DIR keeps both boot logs
# (DIR/<arch>-root.log, DIR/<arch>-rtcr.log); --from DIR prints the table
# from logs kept so, without booting.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)

arch=x86_64 timeout=900 keep="" from="" only=0
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) arch=$2; shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    --keep) keep=$2; shift 2 ;;
    --from) from=$2; shift 2 ;;
    --protect-only) only=1; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "bench-kernel: unknown option $1" >&2; exit 2 ;;
  esac
done
case "$arch" in
  x86_64) target=x86_64-unknown-none ;;
  aarch64|arm64) arch=aarch64 target=aarch64-unknown-none ;;
  *) echo "bench-kernel: unknown architecture $arch" >&2; exit 2 ;;
esac
logs=$(mktemp -d "${TMPDIR:-/tmp}/rtcr-bench.XXXXXX")
trap 'rm -rf "$logs"' EXIT
bin=${CARGO_TARGET_DIR:-$here/target}/$target/release
if [ -n "$from" ] && [ "$only" = 0 ]; then
  cp "$from/$arch-root.log" "$logs/root.log"
  cp "$from/$arch-rtcr.log" "$logs/rtcr.log"
fi
for b in rtcr rtcr-bench; do
  [ -n "$from" ] && break
  [ -f "$bin/$b" ] || {
    echo "bench-kernel: $bin/$b missing: cargo build --release -p rtcr -p rtcr-child --target $target" >&2
    exit 3
  }
done

# rtcr's line: checkpoints every second, a heap and a store for a child of
# 4096 pages and more (its shadow, the records and the image of a
# checkpoint live in the heap; two images in the store), the memcpy scratch
# (as large as the store), crashes every 25 s from 15 s on
rtcr_args="child=rtcr-bench bench interval_ms=1000 max_pages=5000 heap_kib=98304 store_kib=36864"
rtcr_args="$rtcr_args crash_ms=15000 crash_every_ms=25000"

# the write-protect figures alone: rtcr takes them before the child starts,
# so its boot ends at the child's first line
if [ "$only" = 1 ]; then
  if [ -n "$from" ]; then
    cp "$from/$arch-protect.log" "$logs/rtcr.log"
  else
    echo "bench-kernel: $arch: rtcr with rtcr-bench ($rtcr_args), until the child's first figure" >&2
    "$here/scripts/qemu-boot.sh" --arch "$arch" --timeout 300 --until "bench: gate round trip" \
      --elf "$bin/rtcr" --module "$bin/rtcr-bench" -- "$rtcr_args" >"$logs/rtcr.log" 2>&1 || true
  fi
  if [ -n "$keep" ]; then
    mkdir -p "$keep"
    cp "$logs/rtcr.log" "$keep/$arch-protect.log"
  fi
fi

if [ -z "$from" ] && [ "$only" = 0 ]; then
  echo "bench-kernel: $arch: 1. rtcr-bench as the root task" >&2
  "$here/scripts/qemu-boot.sh" --arch "$arch" --timeout 180 --until "bench: irq trigger" \
    --elf "$bin/rtcr-bench" >"$logs/root.log" 2>&1 || true
  echo "bench-kernel: $arch: 2. rtcr-bench under rtcr ($rtcr_args), until the child says it is done" >&2
  "$here/scripts/qemu-boot.sh" --arch "$arch" --timeout "$timeout" --until "bench: done" \
    --elf "$bin/rtcr" --module "$bin/rtcr-bench" -- "$rtcr_args" >"$logs/rtcr.log" 2>&1 || true
fi
if [ -n "$keep" ] && [ "$only" = 0 ]; then
  mkdir -p "$keep"
  cp "$logs/root.log" "$keep/$arch-root.log"
  cp "$logs/rtcr.log" "$keep/$arch-rtcr.log"
fi
if [ "$only" = 1 ]; then
  touch "$logs/root.log"
  grep -q "rtcr: bench: protect" "$logs/rtcr.log" || {
    echo "bench-kernel: rtcr printed no write-protect figures; its end:" >&2
    tail -n 30 "$logs/rtcr.log" >&2
    exit 1
  }
fi
for f in root rtcr; do
  [ "$only" = 1 ] && break
  grep -q "bench: gate round trip" "$logs/$f.log" || {
    echo "bench-kernel: the $f boot printed no measurement; its end:" >&2
    tail -n 30 "$logs/$f.log" >&2
    exit 1
  }
done
[ "$only" = 1 ] || grep -q "bench: done" "$logs/rtcr.log" || echo "bench-kernel: the child under rtcr did not finish (--timeout $timeout): partial figures" >&2

awk -v arch="$arch" -v only="$only" '
function num(key,   i) { for (i = 1; i < NF; i++) if ($i == key) return $(i + 1) + 0; return -1 }
function sortn(a, n,   i, j, t) { for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t } }
function pct(a, n, p,   k) { if (n == 0) return 0; sortn(a, n); k = int(n * p / 100) + 1; if (k > n) k = n; return a[k] }
function us(ns) { return ns / 1000 }
FILENAME ~ /root.log$/ && /bench: gate round trip/ { root_gate_med = num("median_ns"); root_gate_p99 = num("p99_ns") }
FILENAME ~ /root.log$/ && /bench: irq trigger to delivery/ { root_irq_med = num("median_ns"); root_irq_p99 = num("p99_ns") }
FILENAME ~ /rtcr.log$/ && /bench: gate round trip/ && !gate_med { gate_med = num("median_ns"); gate_p99 = num("p99_ns") }
FILENAME ~ /rtcr.log$/ && /bench: irq trigger to delivery/ && !irq_med { irq_med = num("median_ns"); irq_p99 = num("p99_ns") }
FILENAME ~ /rtcr.log$/ && /bench: phase: / { for (i = 1; i <= NF; i++) if ($i == "phase:") phase = $(i + 1) + 0 }
FILENAME ~ /rtcr.log$/ && /rtcr: restore phase: / {
  line = $0; sub(/.*restore phase: /, "", line); v = line; sub(/ us$/, "", v); sub(/.* /, "", v)
  name = line; sub(/ [0-9]+ us$/, "", name); ph[++nph] = name; phv[nph] = v + 0
}
FILENAME ~ /rtcr.log$/ && /rtcr: bench: protect W of / {
  pw_n = num("of"); pw_4k = num("as_4k_ns"); pw_2m = num("as_2m_ns"); pw_sn = num("small_pages"); pw_s4k = num("small_4k_ns")
  pw_s2m = num("small_in_2m_ns"); pw_reps = num("reps"); pw_order = num("super_order")
  ps_4k = num("scratch_4k_ns"); ps_2m = num("scratch_2m_ns"); ps_s4k = num("scratch_small_4k_ns"); ps_s2m = num("scratch_small_in_2m_ns")
}
FILENAME ~ /rtcr.log$/ && /rtcr: bench: protect figures not taken/ { pw_why = $0; sub(/.*not taken: /, "", pw_why) }
FILENAME ~ /rtcr.log$/ && /rtcr: bench: checksums over / {
  ck_n = num("over"); ck_m = num("memcpy_ns"); ck_crc = num("crc64_ns"); ck_x3 = num("xxh3_ns"); ck_x64 = num("xxh64_ns")
}
FILENAME ~ /rtcr.log$/ && /rtcr: bench: checkpoint / {
  d = num("dirty"); full_seen = full_seen || 0
  if (!full_pause && d >= 4096) { full_pause = num("pause_us"); full_pages = d }
  heap[++nheap] = num("heap_used") / num("child_pages"); peak[nheap] = num("heap_peak") / num("child_pages")
  if (num("image") > maxim) { maxim = num("image"); maxim_pages = num("child_pages") }
  if (skip) { skip = 0; next }
  if (phase > 0 && d >= phase && d <= phase + 8) {
    n[phase]++; p[phase, n[phase]] = num("pause_us"); m[phase, n[phase]] = num("memcpy_ns"); w[phase, n[phase]] = num("protect_us")
    c[phase, n[phase]] = num("copy_us"); f[phase] = num("fpages"); im[phase] = num("image"); cp_[phase] = num("child_pages")
  } else other++
}
FILENAME ~ /rtcr.log$/ && /rtcr: restored in place: / {
  line = $0; sub(/ pages left as they were.*/, "", line); sub(/.* /, "", line); kept_next = line
}
FILENAME ~ /rtcr.log$/ && /rtcr: bench: restore / {
  nr++; rimg[nr] = num("image"); rtot[nr] = num("phases_us"); rmem[nr] = num("memcpy_ns"); rph[nr] = ""
  rkept[nr] = (kept_next == "" ? "full" : kept_next); kept_next = ""
  for (i = nph - 5; i <= nph; i++) if (i >= 1) rph[nr] = rph[nr] sprintf(" %8d", phv[i])
  rph[nr] = rph[nr] (num("map_us") >= 0 ? sprintf(" %8d", num("map_us")) : sprintf(" %8s", "-"))
  rph[nr] = rph[nr] (num("unmap_us") >= 0 ? sprintf(" %8d", num("unmap_us")) : sprintf(" %8s", "-"))
  nph = 0; skip = 1
}
function protect_line() {
  if (pw_why != "") { printf "write-protect as 2 MiB superpages: not measured (%s)\n", pw_why; return }
  if (!pw_n) { printf "write-protect as 2 MiB superpages: not measured (no figures in the log)\n"; return }
  printf "protect W of %d pages as 4 KiB mappings %.0f us, as 2 MiB mappings %.0f us (%.1fx); %d pages as 4 KiB mappings %.0f us\n", pw_n, us(pw_4k), us(pw_2m), (pw_2m > 0 ? pw_4k / pw_2m : 0), pw_sn, us(pw_s4k)
  printf "(what superpages would buy: one kernel call over the same 16 MiB, aliases in rtcr'"'"'s own running task, before\nthe child starts, median of %d; %d pages as 2 MiB mappings against %d as 4 KiB mappings: %.1fx; W off %d pages\ninside one 2 MiB mapping, which the kernel takes from the whole 2 MiB: %.0f us; in a scratch task that never ran\n(on arm64 no ASID, so no TLB invalidation per page): 4 KiB %.0f us, 2 MiB %.0f us, %d pages %.0f us, inside 2 MiB %.0f us%s)\n", pw_reps, pw_n, pw_sn, (pw_s4k > 0 ? pw_2m / pw_s4k : 0), pw_sn, us(pw_s2m), us(ps_4k), us(ps_2m), pw_sn, us(ps_s4k), us(ps_s2m), (pw_order < 21 ? sprintf("; sigma0 sent blocks of order %d, not 2 MiB: no superpages", pw_order) : "")
}
END {
  if (only) {
    printf "\n== rtcr kernel benchmark, %s: write-protect only (emulator figures: read the ratios) ==\n", arch
    protect_line()
    exit
  }
  printf "\n== rtcr kernel benchmark, %s (emulator figures: QEMU TCG on a 2-core host shared with other work) ==\n", arch
  printf "\npause per checkpoint (stop to resume, rtcr'"'"'s stamp counter) for D pages written per 1 s interval,\nagainst a memcpy of the same bytes timed by rtcr in the same boot (median of each)\n"
  printf "%6s %4s %9s %9s %9s %11s %7s %6s %10s %13s %12s\n", "D", "n", "med us", "p99 us", "max us", "memcpy us", "ratio", "fpages", "protect us", "copy after us", "image B/page"
  for (k = 1; k <= 4; k++) {
    D = (k == 1 ? 1 : k == 2 ? 16 : k == 3 ? 256 : 4096); nn = n[D]
    if (nn == 0) { printf "%6d %4d   (no checkpoint saw exactly this dirty set)\n", D, 0; continue }
    for (i = 1; i <= nn; i++) { a[i] = p[D, i]; b[i] = m[D, i]; e[i] = c[D, i]; g[i] = w[D, i] }
    med = pct(a, nn, 50); p99 = pct(a, nn, 99); mx = a[nn]; mm = us(pct(b, nn, 50)); cc = pct(e, nn, 50); pr = pct(g, nn, 50)
    pm[D] = med
    printf "%6d %4d %9d %9d %9d %11.0f %6.2fx %6d %10d %13d %12.0f\n", D, nn, med, p99, mx, mm, (mm > 0 ? med / mm : 0), f[D], pr, cc, im[D] / cp_[D]
  }
  printf "(medians of pause and memcpy; protect: the kernel calls that write-protect the dirty set, part of the pause)\n"
  if (other) printf "(%d checkpoints left out: taken as a phase changed or right after a restore)\n", other
  if (pm[16] && pm[4096])
    printf "goal: pause at 4096 dirty pages <= 2 x the pause at 16: %d us vs %d us (%.1fx): %s\n", pm[4096], pm[16], pm[4096] / pm[16], (pm[4096] <= 2 * pm[16] ? "met" : "NOT met")
  protect_line()
  printf "\nrecovery (crash seen to every thread running again, rtcr'"'"'s stamp counter), by phase (us), against a memcpy\nof the image timed by rtcr right after; goal: <= 3 x the pause of a checkpoint of the whole child (%d us,\n%d pages) + 2 x that memcpy\n", full_pause, full_pages
  printf "%10s %9s %9s %7s %8s %8s %8s %8s %8s %8s %8s %8s %6s  %s\n", "image B", "total", "memcpy", "ratio", "destroy", "verify", "objects", "memory", "threads", "resume", "map", "unmap", "kept", "goal"
  for (i = 1; i <= nr; i++) {
    goal = 3 * full_pause + 2 * us(rmem[i])
    printf "%10d %9d %9.0f %6.1fx%s %6s  %s (%.0f us)\n", rimg[i], rtot[i], us(rmem[i]), (rmem[i] > 0 ? rtot[i] / us(rmem[i]) : 0), rph[i], rkept[i], (rtot[i] <= goal ? "met" : "NOT met"), goal
  }
  printf "(map: of the memory phase, the kernel calls that map the pages into the child; unmap: of the objects\nphase of a recovery in place, the kernel calls that unmap what the image does not show; kept: a recovery in\nplace, the pages it left as they were in the crashed child'"'"'s task, or full: rebuilt in a new task)\n"
  if (ck_m > 0)
    printf "(the image checksum over %d bytes, rtcr'"'"'s stamp counter: memcpy %.0f us; CRC-64/XZ, formats 1-3, %.1fx; XXH64, format 5, %.1fx; XXH3-64 %.1fx)\n", ck_n, us(ck_m), ck_crc / ck_m, ck_x64 / ck_m, ck_x3 / ck_m
  printf "\nthe child'"'"'s own paths, under rtcr against the same program as the root task (median / p99, ns)\n"
  printf "%-28s %9s %9s %9s %9s %8s %8s\n", "", "rtcr med", "root med", "rtcr p99", "root p99", "med x", "p99 x"
  printf "%-28s %9d %9d %9d %9d %7.2fx %7.2fx\n", "gate round trip", gate_med, root_gate_med, gate_p99, root_gate_p99, gate_med / root_gate_med, gate_p99 / root_gate_p99
  printf "%-28s %9d %9d %9d %9d %7.2fx %7.2fx\n", "IRQ trigger to delivery", irq_med, root_irq_med, irq_p99, root_irq_p99, irq_med / root_irq_med, irq_p99 / root_irq_p99
  for (i = 1; i <= nheap; i++) { hh[i] = heap[i]; pp[i] = peak[i] }
  printf "\nrtcr'"'"'s own memory per child page: heap %.0f B held between checkpoints (median), %.0f B at the most\n(a checkpoint of 4096 dirty pages: the shadow, its records and its image at once); store %.0f B (two slots\nof the largest image, %d B)\n", pct(hh, nheap, 50), pct(pp, nheap, 100), (maxim_pages ? 2 * maxim / maxim_pages : 0), maxim
}' "$logs/root.log" "$logs/rtcr.log"
