/*
 * rtcr-c-child: a C child for rtcr (issue 10), built by the cross gcc against
 * an L4Re tree's own l4sys headers. Every kernel entry is L4Re's inline code
 * (amd64: the `syscall` in l4_ipc(); arm64: a call of __l4_sys_syscall,
 * which start-<arch>.S provides as `svc #0; ret`), never rtcr's or l4-sys's.
 *
 * It does what crates/rtcr-child/src/bin/rtcr-foreign.rs does, in C:
 *  - root-task style: capability slots 1-7 as the kernel gives a root task,
 *    the KIP and RAM from the pager by the sigma0 protocol, so the same file
 *    runs as the real root task and under rtcr;
 *  - the KIP and four RAM pages (three of 4 KiB, one of 16 KiB) received into
 *    windows of its own choosing (0x0180_0000 .. 0x0182_0000), used there as
 *    a ledger checked and rewritten every round;
 *  - four threads: main (the sleeper: 20 ms l4_ipc_sleep()s timed by the KIP
 *    clock), an entrypoint serving three IPC gates (l4_ipc_wait(), then
 *    l4_ipc_reply_and_wait()), a client calling them with sequence numbers
 *    (l4_ipc_call()) and triggering three software IRQs (l4_irq_trigger()),
 *    and an IRQ waiter. A root task has one page of UTCBs: four threads.
 *  - output through the log capability (l4_vcon_write()): `c-child: started`
 *    once, `c-child: ERROR <what> <details>` for every unexpected result (at
 *    most ten lines a round, all counted), and every 25 sleeps (~500 ms)
 *    `c-child: round R calls C irqs I sleeps S early E late L errors X ledger
 *    ok|BAD`.
 *
 * Freestanding: no libc, no L4Re library; only the headers. All state lives
 * in this program's static memory and the pager's pages.
 */
#include <l4/sys/types.h>
#include <l4/sys/consts.h>
#include <l4/sys/utcb.h>
#include <l4/sys/ipc.h>
#include <l4/sys/factory.h>
#include <l4/sys/irq.h>
#include <l4/sys/rcv_endpoint.h>
#include <l4/sys/thread.h>
#include <l4/sys/scheduler.h>
#include <l4/sys/vcon.h>
#include <l4/sys/kip.h>
#include <l4/sigma0/sigma0.h>

typedef unsigned long u64;

/* ---- layout ---- */

#define SLOT(n) ((l4_cap_idx_t)(n) << L4_CAP_SHIFT)

enum { T_ENTRY = 0x10, T_CLIENT = 0x11, T_WAITER = 0x12 };
enum { NGATES = 3, NIRQS = 3, NRAM = 4, NTHREADS = 3 };

static const unsigned gate_slot[NGATES] = { 0x20, 0x21, 0x22 };
static const unsigned irq_slot[NIRQS] = { 0x30, 0x31, 0x32 };
static const u64 gate_label[NGATES] = { 0x100, 0x200, 0x300 };
static const u64 irq_label[NIRQS] = { 0x1010, 0x1020, 0x1030 };
#define REPLY_OFFSET 1000UL

/* Priorities: main highest, so the kernel, not the others, times its sleeps. */
#define MAIN_PRIO 14

/* The UTCB of thread k: the first one's address + 0x400 * k (rtcr's README). */
#define UTCB_STRIDE 0x400UL

/* Where the KIP is received (one page), and the ledger's RAM: each request's
 * own window, the size asked for, a page apart. Below the link address. */
#define KIP_WINDOW 0x01800000UL
static const u64 ram_at[NRAM] = { 0x01810000UL, 0x01812000UL, 0x01814000UL, 0x01820000UL };
static const unsigned ram_order[NRAM] = { 12, 12, 12, 14 };

#define SLEEP_US 20000ULL
#define LATE_SLACK_US 15000ULL
#define SLEEPS_PER_ROUND 25
#define CLIENT_US 10000ULL
#define IRQ_LOST_US 2000000ULL
#define ERROR_LINES_PER_ROUND 10

#define STACK_BYTES 16384
static unsigned char stacks[NTHREADS][STACK_BYTES] __attribute__((aligned(16)));

/* ---- state ---- */

static int kip_mapped;
static int ram_mapped[NRAM];
static u64 ledger_round_no;
static int ledger_ok = 1;
static u64 called[NGATES], served[NGATES];
static u64 calls;
static u64 triggered[NIRQS], delivered[NIRQS], triggered_at[NIRQS];
static u64 sleeps, early, late, errors;
static u64 lines_left = ERROR_LINES_PER_ROUND;

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
#define ADD(x, v) __atomic_fetch_add(&(x), (v), __ATOMIC_RELAXED)

/* gcc may emit calls to these even when freestanding */
void *memset(void *d, int c, unsigned long n)
{
  volatile unsigned char *p = d;
  while (n--)
    *p++ = (unsigned char)c;
  return d;
}

void *memcpy(void *d, void const *s, unsigned long n)
{
  volatile unsigned char *p = d;
  unsigned char const *q = s;
  while (n--)
    *p++ = *q++;
  return d;
}

/* ---- output ---- */

struct line { char b[240]; unsigned n; };

static void put_s(struct line *l, char const *s)
{
  while (*s && l->n < sizeof(l->b) - 1)
    l->b[l->n++] = *s++;
}

static void put_u(struct line *l, u64 v)
{
  char t[24];
  int i = 0;
  do { t[i++] = (char)('0' + v % 10); v /= 10; } while (v);
  while (i && l->n < sizeof(l->b) - 1)
    l->b[l->n++] = t[--i];
}

static void put_x(struct line *l, u64 v)
{
  char t[20];
  int i = 0;
  do { t[i++] = "0123456789abcdef"[v & 15]; v >>= 4; } while (v);
  put_s(l, "0x");
  while (i && l->n < sizeof(l->b) - 1)
    l->b[l->n++] = t[--i];
}

static void emit(struct line *l)
{
  l->b[l->n++] = '\n';
  l4_vcon_write(L4_BASE_LOG_CAP, l->b, l->n);
}

static void say(char const *s)
{
  struct line l = { .n = 0 };
  put_s(&l, s);
  emit(&l);
}

/* Counts an unexpected result; the line (`c-child: ERROR <what> ...`, the
 * rest filled in by the caller) is printed while this round's budget lasts. */
static int error_line(struct line *l, char const *what)
{
  ADD(errors, 1);
  u64 left = LOAD(lines_left);
  while (left) {
    if (__atomic_compare_exchange_n(&lines_left, &left, left - 1, 0,
                                    __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
      l->n = 0;
      put_s(l, "c-child: ERROR ");
      put_s(l, what);
      put_s(l, " ");
      return 1;
    }
  }
  return 0;
}

static void error(char const *what, char const *details)
{
  struct line l;
  if (error_line(&l, what)) {
    put_s(&l, details);
    emit(&l);
  }
}

/* An IPC that failed (or a kernel-object call that returned an error): the
 * raw tag, the TCR error word and l4_error(), read before the log write
 * enters the kernel again. */
static void ipc_error(char const *what, char const *context, u64 n, l4_msgtag_t tag)
{
  l4_utcb_t *u = l4_utcb();
  u64 tcr = l4_utcb_tcr_u(u)->error;
  long e = l4_error_u(tag, u);
  struct line l;
  if (error_line(&l, what)) {
    put_s(&l, context);
    put_s(&l, " ");
    put_x(&l, n);
    put_s(&l, ": error ");
    if (e < 0) { put_s(&l, "-"); put_u(&l, (u64)-e); } else put_u(&l, (u64)e);
    put_s(&l, " (tag ");
    put_x(&l, tag.raw);
    put_s(&l, " TCR ");
    put_x(&l, tcr);
    put_s(&l, ")");
    emit(&l);
  }
}

/* ---- time ---- */

static int now_us(u64 *t)
{
  if (!LOAD(kip_mapped))
    return 0;
  *t = l4_kip_clock((l4_kernel_info_t const *)KIP_WINDOW);
  return 1;
}

/* l4_ipc_sleep() for `us`, checked: only the receive timeout may end it. */
static int sleep_checked(u64 us, char const *who)
{
  l4_msgtag_t tag = l4_ipc_sleep(l4_timeout(L4_IPC_TIMEOUT_NEVER, l4_timeout_from_us(us)));
  if (l4_ipc_error(tag, l4_utcb()) != L4_IPC_RETIMEOUT) {
    ipc_error("sleep", who, us, tag);
    return 0;
  }
  return 1;
}

/* One 20 ms sleep timed by the KIP clock; returns the sleeps so far. */
static u64 sleep_timed(void)
{
  u64 t0 = 0, t1 = 0;
  int have0 = now_us(&t0);
  int ok = sleep_checked(SLEEP_US, "sleeper");
  int have1 = now_us(&t1);
  u64 n = ADD(sleeps, 1) + 1;
  if (have0 && have1) {
    u64 took = t1 > t0 ? t1 - t0 : 0;
    if (took < SLEEP_US) {
      ADD(early, 1);
      if (ok) {
        struct line l;
        if (error_line(&l, "sleep")) {
          put_s(&l, "20 ms sleep ended after ");
          put_u(&l, took);
          put_s(&l, " us");
          emit(&l);
        }
      }
    } else if (took > SLEEP_US + LATE_SLACK_US)
      ADD(late, 1);
  }
  return n;
}

/* ---- memory from the pager: the sigma0 protocol through l4_ipc_call() ---- */

/* Sends a sigma0 request of `words` words and receives the one map item into
 * `window`; returns 1 with the item's control word in *item. */
static int pager_request(char const *what, u64 w0, u64 w1, unsigned words,
                         l4_fpage_t window, u64 *item)
{
  l4_utcb_t *u = l4_utcb();
  l4_buf_regs_t *br = l4_utcb_br_u(u);
  l4_msg_regs_t *mr = l4_utcb_mr_u(u);
  br->bdr = 0;
  br->br[0] = L4_ITEM_MAP;
  br->br[1] = window.raw;
  mr->mr[0] = w0;
  mr->mr[1] = w1;
  l4_msgtag_t tag = l4_ipc_call(L4_BASE_PAGER_CAP, u,
                                l4_msgtag(L4_PROTO_SIGMA0, words, 0, 0), L4_IPC_NEVER);
  if (l4_ipc_error(tag, u)) {
    ipc_error("pager", what, l4_fpage_memaddr(window), tag);
    return 0;
  }
  if (l4_msgtag_items(tag) != 1) {
    struct line l;
    if (error_line(&l, "pager")) {
      put_s(&l, what);
      put_s(&l, ": no map item in the reply (tag ");
      put_x(&l, tag.raw);
      put_s(&l, ")");
      emit(&l);
    }
    return 0;
  }
  *item = mr->mr[l4_msgtag_words(tag)];
  return 1;
}

/* A page (or pages) of 2^order bytes received into `at`: the item must say it
 * was mapped, whole. */
static int received(char const *what, u64 at, unsigned order, u64 item)
{
  u64 named = item & ~0xfffUL, sent_order = (item >> 6) & 0x3f, result = (item >> 1) & 3;
  struct line l = { .n = 0 };
  put_s(&l, "c-child: ");
  put_s(&l, what);
  put_s(&l, " received at window ");
  put_x(&l, at);
  put_s(&l, " (pager named ");
  put_x(&l, named);
  put_s(&l, ", order ");
  put_u(&l, sent_order);
  put_s(&l, ")");
  emit(&l);
  if (result != 0 || sent_order < order) {
    if (error_line(&l, "pager")) {
      put_s(&l, what);
      put_s(&l, ": item ");
      put_x(&l, item);
      put_s(&l, " not mapped whole into the window");
      emit(&l);
    }
    return 0;
  }
  return 1;
}

/* The ledger's word at `addr` in round `round` (splitmix64's finaliser of
 * both): a page that lands elsewhere, a stale one and a zeroed one all fail. */
static u64 pattern(u64 addr, u64 round)
{
  u64 z = addr ^ (round * 0x9E3779B97F4A7C15UL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
  return z ^ (z >> 31);
}

static void fill(u64 at, unsigned order, u64 round)
{
  volatile u64 *w = (volatile u64 *)at;
  for (u64 i = 0; i < (1UL << order) / 8; i++)
    w[i] = pattern(at + 8 * i, round);
}

/* Words of the page at `at` not holding round `round`'s pattern; the first
 * in *first_bad. */
static u64 check(u64 at, unsigned order, u64 round, u64 *first_bad, u64 *got)
{
  volatile u64 *w = (volatile u64 *)at;
  u64 bad = 0;
  for (u64 i = 0; i < (1UL << order) / 8; i++) {
    u64 v = w[i];
    if (v != pattern(at + 8 * i, round)) {
      if (!bad) { *first_bad = at + 8 * i; *got = v; }
      bad++;
    }
  }
  return bad;
}

static void get_memory(void)
{
  u64 item;
  l4_fpage_t kw = l4_fpage(KIP_WINDOW, L4_PAGESHIFT, 0);
  if (pager_request("KIP", SIGMA0_REQ_KIP, 0, 1, kw, &item)
      && received("KIP", KIP_WINDOW, L4_PAGESHIFT, item)) {
    l4_kernel_info_t const *kip = (l4_kernel_info_t const *)KIP_WINDOW;
    if (kip->magic == L4_KERNEL_INFO_MAGIC)
      STORE(kip_mapped, 1);
    else {
      struct line l;
      if (error_line(&l, "KIP")) {
        put_s(&l, "the page in its window holds ");
        put_x(&l, kip->magic);
        put_s(&l, ", not the KIP magic");
        emit(&l);
      }
    }
  }
  for (int i = 0; i < NRAM; i++) {
    /* "any RAM" of 2^order bytes: the request word and a memory fpage of
     * that size (address 0), as sigma0's protocol has it */
    l4_fpage_t want = l4_fpage(0, ram_order[i], 0);
    l4_fpage_t win = l4_fpage(ram_at[i], ram_order[i], 0);
    if (pager_request("RAM", SIGMA0_REQ_FPAGE_ANY, want.raw, 2, win, &item)
        && received("RAM", ram_at[i], ram_order[i], item)) {
      ram_mapped[i] = 1;
      fill(ram_at[i], ram_order[i], 0);
    }
  }
}

/* One ledger round: each page must hold the last round's pattern, then gets
 * this round's; the KIP must still be in its window. */
static void ledger_round(void)
{
  u64 last = ledger_round_no;
  for (int i = 0; i < NRAM; i++) {
    if (!ram_mapped[i])
      continue;
    u64 at = 0, got = 0;
    u64 bad = check(ram_at[i], ram_order[i], last, &at, &got);
    fill(ram_at[i], ram_order[i], last + 1);
    if (bad) {
      ledger_ok = 0;
      struct line l;
      if (error_line(&l, "ledger")) {
        put_s(&l, "page ");
        put_x(&l, ram_at[i]);
        put_s(&l, " round ");
        put_u(&l, last);
        put_s(&l, ": ");
        put_u(&l, bad);
        put_s(&l, " words wrong, ");
        put_x(&l, at);
        put_s(&l, " holds ");
        put_x(&l, got);
        put_s(&l, " not ");
        put_x(&l, pattern(at, last));
        emit(&l);
      }
    }
  }
  ledger_round_no = last + 1;
  if (kip_mapped) {
    l4_uint32_t magic = *(volatile l4_uint32_t const *)KIP_WINDOW;
    if (magic != L4_KERNEL_INFO_MAGIC) {
      ledger_ok = 0;
      error("KIP", "its window no longer holds the KIP magic");
    }
  }
}

static void status(void)
{
  struct line l = { .n = 0 };
  u64 irqs = 0;
  for (int i = 0; i < NIRQS; i++)
    irqs += LOAD(delivered[i]);
  put_s(&l, "c-child: round ");
  put_u(&l, ledger_round_no);
  put_s(&l, " calls ");
  put_u(&l, LOAD(calls));
  put_s(&l, " irqs ");
  put_u(&l, irqs);
  put_s(&l, " sleeps ");
  put_u(&l, LOAD(sleeps));
  put_s(&l, " early ");
  put_u(&l, LOAD(early));
  put_s(&l, " late ");
  put_u(&l, LOAD(late));
  put_s(&l, " errors ");
  put_u(&l, LOAD(errors));
  put_s(&l, ledger_ok ? " ledger ok" : " ledger BAD");
  emit(&l);
}

/* ---- the threads ---- */

static int index_of(u64 const *labels, int n, u64 label)
{
  for (int i = 0; i < n; i++)
    if (labels[i] == (label & ~3UL))
      return i;
  return -1;
}

static void unexpected(char const *what, u64 label, l4_msgtag_t tag)
{
  struct line l;
  if (error_line(&l, what)) {
    put_s(&l, "unexpected label ");
    put_x(&l, label);
    put_s(&l, " tag ");
    put_x(&l, tag.raw);
    emit(&l);
  }
}

/* Serves the gates: an open wait, then reply-and-wait with send timeout 0,
 * as an L4Re server loop does. Each gate's numbers must come once, in order. */
static void __attribute__((noreturn)) entrypoint(void)
{
  l4_utcb_t *u = l4_utcb();
  l4_umword_t label = 0;
  l4_msgtag_t tag = l4_ipc_wait(u, &label, L4_IPC_NEVER);
  for (;;) {
    if (l4_ipc_error(tag, u)) {
      ipc_error("server", "wait/reply, label", label, tag);
      tag = l4_ipc_wait(u, &label, L4_IPC_NEVER);
      continue;
    }
    int g = index_of(gate_label, NGATES, label);
    if (g < 0) {
      unexpected("server", label, tag);
      tag = l4_ipc_wait(u, &label, L4_IPC_NEVER);
      continue;
    }
    u64 n = l4_msgtag_words(tag) >= 1 ? l4_utcb_mr_u(u)->mr[0] : 0;
    u64 last = LOAD(served[g]);
    if (n != last + 1) {
      struct line l;
      if (error_line(&l, "server")) {
        put_s(&l, "gate ");
        put_x(&l, gate_label[g]);
        put_s(&l, ": call ");
        put_u(&l, n);
        put_s(&l, n <= last ? " arrived again (last " : " after a gap: calls lost (last ");
        put_u(&l, last);
        put_s(&l, ")");
        emit(&l);
      }
    }
    STORE(served[g], n);
    l4_utcb_mr_u(u)->mr[0] = n + REPLY_OFFSET;
    tag = l4_ipc_reply_and_wait(u, l4_msgtag(0, 1, 0, 0), &label, L4_IPC_SEND_TIMEOUT_0);
  }
}

static void call_gate(int g)
{
  l4_utcb_t *u = l4_utcb();
  u64 n = LOAD(called[g]) + 1;
  l4_utcb_mr_u(u)->mr[0] = n;
  l4_msgtag_t tag = l4_ipc_call(SLOT(gate_slot[g]), u, l4_msgtag(0, 1, 0, 0), L4_IPC_NEVER);
  if (l4_ipc_error(tag, u)) {
    /* cut after its send phase: the server has it, go on from it */
    if (l4_ipc_is_rcv_error(u))
      STORE(called[g], n);
    ipc_error("client", "gate call, number", n, tag);
    return;
  }
  STORE(called[g], n);
  u64 got = l4_utcb_mr_u(u)->mr[0];
  if (l4_msgtag_words(tag) >= 1 && got == n + REPLY_OFFSET)
    ADD(calls, 1);
  else {
    struct line l;
    if (error_line(&l, "client")) {
      put_s(&l, "gate ");
      put_x(&l, gate_label[g]);
      put_s(&l, " call ");
      put_u(&l, n);
      put_s(&l, ": reply ");
      put_u(&l, got);
      put_s(&l, " tag ");
      put_x(&l, tag.raw);
      emit(&l);
    }
  }
}

/* Triggers IRQ i once its last trigger was delivered (so a merge of two
 * triggers cannot hide a lost one); an outstanding one older than 2 s is
 * reported. */
static void trigger_irq(int i)
{
  u64 sent = LOAD(triggered[i]), got = LOAD(delivered[i]);
  u64 now = 0;
  if (sent == got) {
    STORE(triggered[i], sent + 1); /* before the trigger: the waiter may run at once */
    STORE(triggered_at[i], now_us(&now) ? now : 0);
    l4_msgtag_t tag = l4_irq_trigger(SLOT(irq_slot[i]));
    if (l4_ipc_error(tag, l4_utcb())) {
      STORE(triggered[i], sent);
      ipc_error("client", "trigger IRQ", irq_label[i], tag);
    }
  } else if (sent == got + 1) {
    u64 since = LOAD(triggered_at[i]);
    if (now_us(&now) && now > since && now - since > IRQ_LOST_US) {
      struct line l;
      if (error_line(&l, "irq")) {
        put_s(&l, "IRQ ");
        put_x(&l, irq_label[i]);
        put_s(&l, " trigger #");
        put_u(&l, sent);
        put_s(&l, " not delivered after ");
        put_u(&l, (now - since) / 1000);
        put_s(&l, " ms");
        emit(&l);
      }
      STORE(triggered_at[i], now);
    }
  } else {
    struct line l;
    if (error_line(&l, "irq")) {
      put_s(&l, "IRQ ");
      put_x(&l, irq_label[i]);
      put_s(&l, ": ");
      put_u(&l, sent);
      put_s(&l, " triggers, ");
      put_u(&l, got);
      put_s(&l, " deliveries");
      emit(&l);
    }
    STORE(triggered[i], sent > got ? sent : got);
  }
}

static void __attribute__((noreturn)) client(void)
{
  for (;;) {
    for (int g = 0; g < NGATES; g++)
      call_gate(g);
    for (int i = 0; i < NIRQS; i++)
      trigger_irq(i);
    sleep_checked(CLIENT_US, "client");
  }
}

/* Receives the IRQs; each delivery must be of a trigger not yet delivered. */
static void __attribute__((noreturn)) irq_waiter(void)
{
  l4_utcb_t *u = l4_utcb();
  for (;;) {
    l4_umword_t label = 0;
    l4_msgtag_t tag = l4_ipc_wait(u, &label, L4_IPC_NEVER);
    if (l4_ipc_error(tag, u)) {
      ipc_error("irq waiter", "wait, label", label, tag);
      continue;
    }
    int i = index_of(irq_label, NIRQS, label);
    if (i < 0) {
      unexpected("irq waiter", label, tag);
      continue;
    }
    u64 sent = LOAD(triggered[i]), got = LOAD(delivered[i]);
    if (got >= sent) {
      struct line l;
      if (error_line(&l, "irq")) {
        put_s(&l, "IRQ ");
        put_x(&l, irq_label[i]);
        put_s(&l, " delivered ");
        put_u(&l, got + 1);
        put_s(&l, " times, triggered ");
        put_u(&l, sent);
        emit(&l);
      }
    }
    STORE(delivered[i], got + 1);
  }
}

/* ---- set-up and main ---- */

static void (*const thread_fn[NTHREADS])(void) = { entrypoint, client, irq_waiter };
static const unsigned thread_slot[NTHREADS] = { T_ENTRY, T_CLIENT, T_WAITER };
static const unsigned thread_prio[NTHREADS] = { 12, 11, 13 };

#if defined(__aarch64__)
# define START_FLAGS L4_THREAD_EX_REGS_ARM64_SET_EL_EL0
/* a function starts with sp 16-byte aligned */
# define START_SP(top) (top)
#else
# define START_FLAGS 0
/* a function starts as if called: (sp + 8) 16-byte aligned */
# define START_SP(top) ((top) - 8)
#endif

/* Checks a kernel-object call's result; 0 and a report if it failed. */
static int ok(l4_msgtag_t tag, char const *what, u64 slot)
{
  if (l4_error(tag) < 0) {
    ipc_error("set-up", what, slot, tag);
    return 0;
  }
  return 1;
}

static int set_up(void)
{
  l4_addr_t first_utcb = (l4_addr_t)l4_utcb();
  for (int i = 0; i < NTHREADS; i++) {
    l4_cap_idx_t t = SLOT(thread_slot[i]);
    if (!ok(l4_factory_create_thread(L4_BASE_FACTORY_CAP, t), "create thread", thread_slot[i]))
      return 0;
    l4_thread_control_start();
    l4_thread_control_pager(L4_BASE_PAGER_CAP);
    l4_thread_control_exc_handler(L4_BASE_PAGER_CAP);
    l4_thread_control_bind((l4_utcb_t *)(first_utcb + UTCB_STRIDE * (i + 1)), L4_BASE_TASK_CAP);
    if (!ok(l4_thread_control_commit(t), "thread control", thread_slot[i]))
      return 0;
  }
  for (int g = 0; g < NGATES; g++)
    if (!ok(l4_factory_create_gate(L4_BASE_FACTORY_CAP, SLOT(gate_slot[g]), SLOT(T_ENTRY), gate_label[g]),
            "create gate", gate_slot[g]))
      return 0;
  for (int i = 0; i < NIRQS; i++) {
    if (!ok(l4_factory_create_irq(L4_BASE_FACTORY_CAP, SLOT(irq_slot[i])), "create IRQ", irq_slot[i]))
      return 0;
    if (!ok(l4_rcv_ep_bind_thread(SLOT(irq_slot[i]), SLOT(T_WAITER), irq_label[i]), "bind IRQ", irq_slot[i]))
      return 0;
  }
  l4_sched_param_t sp = l4_sched_param(MAIN_PRIO, 0);
  if (!ok(l4_scheduler_run_thread(L4_BASE_SCHEDULER_CAP, L4_BASE_THREAD_CAP, &sp), "run thread", 3))
    return 0;
  for (int i = 0; i < NTHREADS; i++) {
    l4_cap_idx_t t = SLOT(thread_slot[i]);
    sp = l4_sched_param(thread_prio[i], 0);
    if (!ok(l4_scheduler_run_thread(L4_BASE_SCHEDULER_CAP, t, &sp), "run thread", thread_slot[i]))
      return 0;
    l4_addr_t top = (l4_addr_t)&stacks[i][STACK_BYTES];
    if (!ok(l4_thread_ex_regs(t, (l4_addr_t)thread_fn[i], START_SP(top), START_FLAGS), "start thread",
            thread_slot[i]))
      return 0;
  }
  return 1;
}

/* Called from _start (start-<arch>.S) on the main stack. */
void __attribute__((noreturn)) c_child_main(void)
{
  say("c-child: started");
  get_memory();
  if (set_up()) {
    struct line l = { .n = 0 };
    put_s(&l, "c-child: set up: 4 threads, 3 gates, 3 IRQs, UTCB at ");
    put_x(&l, (u64)l4_utcb());
    emit(&l);
  }
  for (;;) {
    if (sleep_timed() % SLEEPS_PER_ROUND == 0) {
      ledger_round();
      status();
      STORE(lines_left, ERROR_LINES_PER_ROUND);
    }
  }
}
