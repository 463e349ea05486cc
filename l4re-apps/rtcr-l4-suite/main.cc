/*
 * rtcr-l4-suite: an L4Re program written the way L4Re users write them
 * (C++, pthreads, the L4Re environment, L4::Server with an object
 * registry), which rtcr is meant to run unchanged (issue 11). Built by
 * L4Re's build system as a static program; started by moe or by rtcr.
 *
 * What it does, all the time, and checks:
 *  - IPC: a server thread runs an L4Re::Util::Registry_server; the registry
 *    creates an IPC gate through the environment's factory, bound to that
 *    thread. A client thread calls it (the `Seq` interface below) with
 *    sequence numbers 1, 2, 3, ...: the server checks each call is the next
 *    one (a call delivered twice or lost is an error) and answers
 *    n + 1000, which the client checks. `calls` counts checked answers.
 *  - IRQ: a software IRQ from the environment's factory, bound with a label
 *    to a waiter thread; a trigger thread triggers it again only once the
 *    last trigger was delivered, so every trigger must arrive exactly once
 *    (a second delivery or none within 2 s is an error). `irqs` counts
 *    deliveries.
 *  - memory: a 64 KiB block from malloc and a 64 KiB dataspace from the
 *    environment's memory allocator, attached through its region manager;
 *    every round both must hold the last round's pattern (which depends on
 *    the address and the round), then get this round's. A mismatch makes
 *    the ledger BAD.
 *  - sleeps: every sleep (the client's and the trigger's 10 ms between
 *    rounds of work, the main thread's interval) is an l4_ipc_sleep timed
 *    by the KIP clock: it must end by its timeout, never before it
 *    (`early`); one that ends more than 15 ms after it is counted `late`
 *    (reported, not an error: a loaded emulator delays threads).
 *
 * The main thread prints `rtcr-l4-suite: start`, a set-up line, then every
 * interval (500 ms by default, or the first argument in ms) the status line
 * of rtcr's test children (crates/rtcr-child/src/foreign.rs, `Status`):
 *
 *   rtcr-l4-suite: round R calls C irqs I sleeps S early E late L errors X ledger ok|BAD
 *
 * Every unexpected result counts in `errors` (an early sleep in `early`)
 * and prints an `rtcr-l4-suite: ERROR ...` line (at most ten a round).
 * There is no timing check besides sanity: a call or an IRQ outstanding
 * for 2 s is an error.
 */
#include <l4/re/env>
#include <l4/re/env.h>
#include <l4/re/dataspace>
#include <l4/re/mem_alloc>
#include <l4/re/namespace>
#include <l4/re/rm>
#include <l4/re/util/unique_cap>
#include <l4/re/util/object_registry>
#include <l4/sys/cxx/ipc_iface>
#include <l4/sys/cxx/ipc_epiface>
#include <l4/sys/factory>
#include <l4/sys/irq>
#include <l4/sys/ipc.h>
#include <l4/sys/kip.h>
#include <pthread-l4.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <pthread.h>

namespace {

typedef unsigned long long u64;

enum : u64
{
  Reply_offset = 1000,       // the server answers call n with n + 1000
  Irq_label = 0x1010,        // the label the IRQ is bound with
  Work_sleep_us = 10000,     // the client's and the trigger's pause
  Late_slack_us = 15000,     // how late a sleep may end before it is `late`
  Outstanding_us = 2000000,  // a call or an IRQ this long is an error
  Block_bytes = 64 * 1024,   // the malloc block and the dataspace
  Error_lines = 10,          // ERROR lines per round
};

// ---- counters (shared by the threads) ----

std::atomic<u64> calls, irqs_sent, irqs_delivered, sleeps, early, late, errors;
std::atomic<u64> error_lines_left{Error_lines};
std::atomic<u64> call_since_us; // when the client's call in flight started (0: none)
std::atomic<bool> ledger_ok{true};

l4_kernel_info_t const *kip;

u64 now_us()
{ return l4_kip_clock(kip); }

// prints an ERROR line while this round's budget of lines lasts
void vreport(char const *fmt, va_list ap)
{
  u64 left = error_lines_left.load();
  while (left && !error_lines_left.compare_exchange_weak(left, left - 1))
    ;
  if (!left)
    return;
  char buf[160];
  vsnprintf(buf, sizeof(buf), fmt, ap);
  printf("rtcr-l4-suite: ERROR %s\n", buf);
  fflush(stdout);
}

// an early sleep: its own counter, and a line
void report_early(char const *fmt, ...) __attribute__((format(printf, 1, 2)));
void report_early(char const *fmt, ...)
{
  early++;
  va_list ap;
  va_start(ap, fmt);
  vreport(fmt, ap);
  va_end(ap);
}

// any other unexpected result: counted in `errors`, and a line
void error(char const *fmt, ...) __attribute__((format(printf, 1, 2)));
void error(char const *fmt, ...)
{
  errors++;
  va_list ap;
  va_start(ap, fmt);
  vreport(fmt, ap);
  va_end(ap);
}

// a sleep of `us` by the kernel's receive timeout, timed by the KIP clock
void sleep_timed(u64 us, char const *who)
{
  u64 t0 = now_us();
  l4_msgtag_t tag = l4_ipc_sleep(l4_timeout(L4_IPC_TIMEOUT_NEVER, l4_timeout_from_us(us)));
  u64 t1 = now_us();
  long err = l4_ipc_error(tag, l4_utcb());
  if (err != L4_IPC_RETIMEOUT)
    {
      error("%s: sleep of %llu us ended with IPC error %ld, not a timeout", who, us, err);
      return;
    }
  sleeps++;
  u64 took = t1 - t0;
  if (took < us)
    report_early("%s: sleep of %llu us ended after %llu us", who, us, took);
  else if (took > us + Late_slack_us)
    late++;
}

// ---- the memory: a pattern of the address and the round ----

// splitmix64's finaliser of both, as rtcr_child::foreign::pattern: a page
// that lands elsewhere, a stale page and a zeroed page all fail the check
u64 pattern(u64 addr, u64 round)
{
  u64 z = addr ^ (round * 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

struct Block
{
  char const *name;
  u64 volatile *words;

  static constexpr unsigned Count = Block_bytes / sizeof(u64);

  void fill(u64 round)
  {
    for (unsigned i = 0; i < Count; i++)
      words[i] = pattern(reinterpret_cast<u64>(&words[i]), round);
  }

  // must hold round `last`'s pattern; then gets `next`'s
  void round(u64 last, u64 next)
  {
    unsigned bad = 0;
    u64 first = 0, want = 0, got = 0;
    for (unsigned i = 0; i < Count; i++)
      {
        u64 addr = reinterpret_cast<u64>(&words[i]);
        u64 w = words[i];
        if (w != pattern(addr, last) && bad++ == 0)
          first = addr, want = pattern(addr, last), got = w;
      }
    fill(next);
    if (bad)
      {
        ledger_ok = false;
        error("%s: %u wrong words in round %llu, the first at 0x%llx: 0x%llx, want 0x%llx",
              name, bad, last, first, got, want);
      }
  }
};

// ---- IPC: the interface, its server, its client ----

struct Seq : L4::Kobject_t<Seq, L4::Kobject, 0x7a01>
{
  L4_INLINE_RPC(long, next, (l4_uint64_t n, l4_uint64_t *answer));
  typedef L4::Typeid::Rpcs<next_t> Rpcs;
};

struct Seq_server : L4::Epiface_t<Seq_server, Seq>
{
  u64 last = 0;

  long op_next(Seq::Rights, l4_uint64_t n, l4_uint64_t &answer)
  {
    if (n != last + 1)
      error("server: call %llu after %llu (%s)", (u64)n, last, n <= last ? "repeated" : "calls lost");
    last = n;
    answer = n + Reply_offset;
    return 0;
  }
};

Seq_server seq_server;
std::atomic<bool> server_ready;
L4::Cap<Seq> gate;

void *server_thread(void *)
{
  L4Re::Util::Registry_server<> server(Pthread::L4::cap(pthread_self()), L4Re::Env::env()->factory());
  gate = L4::cap_cast<Seq>(server.registry()->register_obj(&seq_server));
  if (!gate.is_valid())
    {
      printf("rtcr-l4-suite: cannot register the server object (%ld)\n", (long)gate.cap());
      exit(1);
    }
  server_ready = true;
  server.loop();
}

void *client_thread(void *)
{
  for (u64 n = 1;; n++)
    {
      l4_uint64_t answer = 0;
      u64 t0 = now_us();
      call_since_us = t0 ? t0 : 1;
      long r = gate->next(n, &answer);
      call_since_us = 0;
      u64 took = now_us() - t0;
      if (r < 0)
        error("client: call %llu failed: %ld", n, r);
      else if (answer != n + Reply_offset)
        error("client: call %llu answered %llu", n, (u64)answer);
      else
        calls++;
      if (took > Outstanding_us)
        error("client: call %llu took %llu us", n, took);
      sleep_timed(Work_sleep_us, "client");
    }
}

// ---- the IRQ: a waiter and a trigger ----

L4::Cap<L4::Irq> irq;
std::atomic<bool> waiter_ready;

void *irq_waiter_thread(void *)
{
  long err = l4_error(irq->bind_thread(Pthread::L4::cap(pthread_self()), Irq_label));
  if (err < 0)
    {
      printf("rtcr-l4-suite: cannot bind the IRQ to the waiter: %ld\n", err);
      exit(1);
    }
  waiter_ready = true;
  for (;;)
    {
      l4_umword_t label = 0;
      l4_msgtag_t tag = l4_ipc_wait(l4_utcb(), &label, L4_IPC_NEVER);
      long ipc = l4_ipc_error(tag, l4_utcb());
      if (ipc)
        {
          error("irq waiter: wait ended with IPC error %ld", ipc);
          continue;
        }
      if ((label & ~3UL) != Irq_label)
        {
          error("irq waiter: a message with label 0x%lx", (unsigned long)label);
          continue;
        }
      // the trigger sends the next one only after this delivery: a
      // delivery beyond the triggers is one delivered twice
      if (irqs_delivered.load() >= irqs_sent.load())
        error("irq waiter: delivery %llu of %llu triggers", irqs_delivered.load() + 1, irqs_sent.load());
      irqs_delivered++;
    }
}

void *irq_trigger_thread(void *)
{
  for (;;)
    {
      u64 n = ++irqs_sent;
      // a send-only IPC: its result is the IPC error, not l4_error()'s label
      long err = l4_ipc_error(irq->trigger(), l4_utcb());
      if (err)
        error("trigger: trigger %llu failed with IPC error %ld", n, err);
      u64 t0 = now_us();
      while (irqs_delivered.load() < n)
        {
          if (now_us() - t0 > Outstanding_us)
            {
              error("trigger: trigger %llu not delivered after %llu us", n, now_us() - t0);
              // go on from what was delivered
              irqs_sent = irqs_delivered.load();
              break;
            }
          l4_ipc_sleep_ms(1);
        }
      sleep_timed(Work_sleep_us, "trigger");
    }
}

pthread_t start(void *(*fn)(void *), char const *name)
{
  pthread_t t;
  int r = pthread_create(&t, nullptr, fn, nullptr);
  if (r != 0)
    {
      printf("rtcr-l4-suite: cannot start the %s thread: %d\n", name, r);
      exit(1);
    }
  return t;
}

void wait_for(std::atomic<bool> const &flag)
{
  while (!flag.load())
    l4_ipc_sleep_ms(1);
}

} // namespace

int main(int argc, char **argv)
{
  u64 interval_ms = 500;
  if (argc > 1 && strtoul(argv[1], nullptr, 0) > 0)
    interval_ms = strtoul(argv[1], nullptr, 0);

  printf("rtcr-l4-suite: start\n");
  fflush(stdout);
  L4Re::Env const *env = L4Re::Env::env();
  kip = l4re_kip();

  // memory: malloc, and a dataspace attached through the region manager
  Block heap{"malloc block", static_cast<u64 volatile *>(malloc(Block_bytes))};
  if (!heap.words)
    {
      printf("rtcr-l4-suite: malloc(%u) failed\n", (unsigned)Block_bytes);
      return 1;
    }
  auto ds = L4Re::Util::make_unique_cap<L4Re::Dataspace>();
  if (!ds.is_valid())
    {
      printf("rtcr-l4-suite: no capability slot for the dataspace\n");
      return 1;
    }
  long err = env->mem_alloc()->alloc(Block_bytes, ds.get());
  if (err < 0)
    {
      printf("rtcr-l4-suite: mem_alloc()->alloc failed: %ld\n", err);
      return 1;
    }
  L4Re::Rm::Unique_region<u64 *> region;
  err = env->rm()->attach(&region, Block_bytes, L4Re::Rm::F::Search_addr | L4Re::Rm::F::RW,
                          L4::Ipc::make_cap_rw(ds.get()));
  if (err < 0)
    {
      printf("rtcr-l4-suite: rm()->attach failed: %ld\n", err);
      return 1;
    }
  Block dspace{"dataspace", region.get()};
  heap.fill(0);
  dspace.fill(0);

  // the IRQ, from the environment's factory
  auto irq_cap = L4Re::Util::make_unique_cap<L4::Irq>();
  if (!irq_cap.is_valid())
    {
      printf("rtcr-l4-suite: no capability slot for the IRQ\n");
      return 1;
    }
  err = l4_error(env->factory()->create(irq_cap.get()));
  if (err < 0)
    {
      printf("rtcr-l4-suite: factory()->create(Irq) failed: %ld\n", err);
      return 1;
    }
  irq = irq_cap.get();

  // its own binary, read-only from rom/ (the namespace the environment names)
  char const *self = argv[0] && !strncmp(argv[0], "rom/", 4) ? argv[0] + 4 : "rtcr-l4-suite";
  auto rom = env->get_cap<L4Re::Namespace>("rom");
  auto bin = L4Re::Util::make_unique_cap<L4Re::Dataspace>();
  if (!rom.is_valid() || !bin.is_valid() || (err = rom->query(self, bin.get())) < 0)
    {
      printf("rtcr-l4-suite: rom/%s: query failed: %ld\n", self, rom.is_valid() ? err : -1L);
      return 1;
    }
  L4Re::Rm::Unique_region<unsigned char const *> rom_region;
  unsigned long bin_size = bin->size();
  err = env->rm()->attach(&rom_region, bin_size, L4Re::Rm::F::Search_addr | L4Re::Rm::F::R,
                          L4::Ipc::make_cap(bin.get(), L4_CAP_FPAGE_RO));
  if (err < 0 || memcmp(rom_region.get(), "\177ELF", 4))
    {
      printf("rtcr-l4-suite: rom/%s: attach failed (%ld) or no ELF there\n", self, err);
      return 1;
    }
  unsigned char const *elf = rom_region.get();
  unsigned char elf_head[64];
  memcpy(elf_head, elf, sizeof(elf_head));

  start(server_thread, "server");
  wait_for(server_ready);
  start(irq_waiter_thread, "irq waiter");
  wait_for(waiter_ready);
  start(client_thread, "client");
  start(irq_trigger_thread, "irq trigger");
  printf("rtcr-l4-suite: set up: 5 threads, gate 0x%lx, IRQ 0x%lx, malloc block at %p, dataspace at %p, "
         "rom/%s (%lu bytes) at %p\n",
         (unsigned long)gate.cap(), (unsigned long)irq.cap(), (void *)heap.words, (void *)dspace.words, self,
         bin_size, (void const *)elf);
  fflush(stdout);

  for (u64 round = 1;; round++)
    {
      sleep_timed(interval_ms * 1000, "main");
      heap.round(round - 1, round);
      dspace.round(round - 1, round);
      if (memcmp(elf, elf_head, sizeof(elf_head)))
        {
          error("main: rom/%s changed under the program", self);
          ledger_ok = false;
        }
      u64 since = call_since_us.load();
      if (since && now_us() > since + Outstanding_us)
        error("main: a call outstanding for %llu us", now_us() - since);
      printf("rtcr-l4-suite: round %llu calls %llu irqs %llu sleeps %llu early %llu late %llu errors %llu ledger %s\n",
             round, calls.load(), irqs_delivered.load(), sleeps.load(), early.load(), late.load(), errors.load(),
             ledger_ok ? "ok" : "BAD");
      fflush(stdout);
      error_lines_left = Error_lines;
    }
}
