/*
 * rtcr-l4-hello: the simplest L4Re program rtcr is meant to run unchanged
 * (issue 11), built by L4Re's own build system against L4Re's libc: a
 * static program started by moe (or by rtcr) with the L4Re environment.
 *
 * It prints `rtcr-l4-hello: start` once, then forever: one round is a
 * global counter incremented, a page of static memory (the ledger) checked
 * against the last round's pattern and rewritten with this round's, and a
 * sleep (usleep, 50 ms by default). Every 10th round it prints the status
 * line of rtcr's test children (crates/rtcr-child/src/foreign.rs, `Status`):
 *
 *   rtcr-l4-hello: round N calls 0 irqs 0 sleeps N early 0 late 0 errors E ledger ok|BAD
 *
 * errors counts every failed self-check (the counter not what the round
 * says, usleep failing, a ledger mismatch), each also an
 * `rtcr-l4-hello: ERROR ...` line while a budget of lines lasts; ledger is
 * BAD once a ledger check failed. A program checkpointed and restored must
 * see none of that.
 *
 * Arguments (optional): SLEEP_MS (default 50), EVERY (status every EVERY
 * rounds, default 10).
 */
#define _DEFAULT_SOURCE /* usleep */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

typedef unsigned long long u64;

enum { LEDGER_WORDS = 4096 / 8, ERROR_LINES = 20 };

/* The counter the program increments, and the page it checks. Both are
 * static data: they live in the program's .data/.bss pages, which a
 * restore must give back. */
static volatile u64 counter;
static volatile u64 ledger[LEDGER_WORDS] __attribute__((aligned(4096)));
static u64 errors, error_lines;
static int ledger_ok = 1;

/* The word at address `addr` in round `round` (splitmix64's finaliser, as
 * rtcr_child::foreign::pattern): a page that lands elsewhere, a stale page
 * and a zeroed page all fail the check. */
static u64 pattern(u64 addr, u64 round)
{
  u64 z = addr ^ (round * 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

static void error(char const *what, u64 a, u64 b)
{
  errors++;
  if (error_lines < ERROR_LINES)
    {
      error_lines++;
      printf("rtcr-l4-hello: ERROR %s: %llu / %llu\n", what, a, b);
    }
}

/* Round `round`'s pattern into the ledger. */
static void ledger_fill(u64 round)
{
  for (unsigned i = 0; i < LEDGER_WORDS; i++)
    ledger[i] = pattern((u64)(unsigned long)&ledger[i], round);
}

/* The ledger must hold round `last`'s pattern; then it gets `next`'s. */
static void ledger_round(u64 last, u64 next)
{
  u64 bad = 0, first = 0;
  for (unsigned i = 0; i < LEDGER_WORDS; i++)
    {
      u64 addr = (u64)(unsigned long)&ledger[i];
      if (ledger[i] != pattern(addr, last) && bad++ == 0)
        first = addr;
    }
  ledger_fill(next);
  if (bad)
    {
      ledger_ok = 0;
      error("ledger: wrong words / first at", bad, first);
    }
}

static unsigned long arg(int argc, char **argv, int i, unsigned long dflt)
{
  if (argc <= i)
    return dflt;
  unsigned long v = strtoul(argv[i], NULL, 0);
  return v ? v : dflt;
}

int main(int argc, char **argv)
{
  unsigned long sleep_ms = arg(argc, argv, 1, 50);
  unsigned long every = arg(argc, argv, 2, 10);

  printf("rtcr-l4-hello: start\n");
  fflush(stdout);
  ledger_fill(0);

  for (u64 round = 1;; round++)
    {
      counter++;
      if (counter != round)
        error("counter / round", counter, round);
      ledger_round(round - 1, round);
      if (usleep(sleep_ms * 1000) != 0)
        error("usleep failed, round", round, 0);
      if (round % every == 0)
        {
          printf("rtcr-l4-hello: round %llu calls 0 irqs 0 sleeps %llu early 0 late 0 errors %llu ledger %s\n",
                 round, round, errors, ledger_ok ? "ok" : "BAD");
          fflush(stdout);
        }
    }
}
