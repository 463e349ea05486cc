//! IPC sent to a thread's capability: one child thread talking to another
//! directly, without a gate (L4Re's libpthread sends its manager requests
//! this way, to the manager's thread capability, which waits in an open
//! wait). The child knows its threads only by rtcr's proxy gates, so such a
//! message reaches rtcr. rtcr has the sender make the call again, itself,
//! to the real thread: the receiver gets it from the sender, as it would
//! without rtcr, and the reply goes straight back.
//!
//! How: rtcr answers the sender with its own message back (so the
//! sender's message registers hold it again), stops the child's threads
//! that can run without cancelling anything, finds the sender among them
//! (the one just back from a call to that proxy gate with that message),
//! and has it issue the same call from rtcr's call stub ([`crate::calls`])
//! to a slot of its own that holds the real thread. When the call returns,
//! the sender goes on after its own kernel entry with the call's results.
//! A send (no reply wanted) is delivered by rtcr itself. A message with
//! capabilities in it is refused (`-EINVAL`): rtcr cannot give them back
//! to the sender to send again.

use alloc::vec::Vec;

use l4_sys::error::Errno;
use l4_sys::{ipc, MsgTag, TimeoutPair};

use crate::labels::Service;
use crate::services::Reply;
use crate::state::{ObjKind, Supervisor, NO_DONATION, PRIV_BASE};
use crate::{Env, Error};

/// Child slots where rtcr keeps each thread's real capability (receive
/// only: for IPC to the thread; after the exception gates).
pub const DIRECT_BASE: u64 = PRIV_BASE + 0x800;

/// How long rtcr waits to deliver a send to a thread (µs).
const SEND_TIMEOUT_US: u64 = 10_000;

impl Supervisor {
    /// A message for thread `target` that is not a thread operation.
    pub(crate) fn direct_ipc<E: Env>(&mut self, env: &mut E, target: u32, tag: MsgTag) -> Reply {
        if tag.items() > 0 || target as usize >= self.threads.len() {
            return Reply::Words(-Errno::Inval.value(), Vec::new());
        }
        let n = tag.words().min(63);
        let words: Vec<u64> = env.utcb().mr[..n].to_vec();
        // the message back: the sender's registers hold it again
        env.utcb().mr[..n].copy_from_slice(&words);
        let echo = MsgTag::new(tag.label(), n, 0, NO_DONATION);
        if ipc::reply(env, echo, 0, TimeoutPair::SEND_ZERO).is_err() {
            // no one waits for a reply: a send, delivered by rtcr
            let real = self.thread_cap(target);
            env.utcb().mr[..n].copy_from_slice(&words);
            let t = l4_sys::Timeout::from_us(SEND_TIMEOUT_US);
            let _ = ipc::send(env, real.idx(), MsgTag::new(tag.label(), n, 0, NO_DONATION), TimeoutPair::new(t, t));
            return Reply::None;
        }
        match self.reissue_to_thread(env, target, tag) {
            Ok(true) => {}
            Ok(false) => self.direct_lost += 1,
            Err(_) => self.direct_lost += 1,
        }
        Reply::None
    }

    fn reissue_to_thread<E: Env>(&mut self, env: &mut E, target: u32, tag: MsgTag) -> Result<bool, Error> {
        let started: Vec<u32> = (0..self.threads.len() as u32).filter(|&t| self.threads[t as usize].started).collect();
        if started == [target] {
            // its only thread calling itself would wait for itself: it
            // keeps the echo, and no thread needs stopping to find that out
            return Ok(true);
        }
        let stopped = self.stop_runnable(env, &started)?;
        let ri = crate::checkpoint::regs(self.arch);
        let proxy = self.objects[self.threads[target as usize].obj as usize].child_view;
        let mut senders = Vec::new();
        for (i, (_, r, _)) in stopped.iter().enumerate() {
            let dest = r[ri.dest];
            let back = MsgTag(r[ri.tag]);
            let to_proxy = self.caps.get(&(dest >> 12)).is_some_and(|c| {
                matches!(self.objects[c.obj as usize].kind, ObjKind::Thread(x) if x == target)
                    && self.objects[c.obj as usize].child_view == proxy
            });
            if dest & 3 == 3
                && to_proxy
                && back.words() == tag.words()
                && back.items() == 0
                && !back.has_error()
                && self.follows_entry_instruction(env, r[ri.ip])
            {
                senders.push(i);
            }
        }
        let mut done = false;
        let mut rest = stopped;
        // a thread calling itself would wait for itself: it keeps the echo
        if let [i] = senders[..].iter().copied().filter(|&i| rest[i].0 != target).collect::<Vec<_>>()[..] {
            let (t, mut r, fpu) = rest.remove(i);
            // its UTCB now holds its message again (the echo); it calls the
            // real thread from the stub and goes on after its own entry
            r[ri.tag] = MsgTag::new(tag.label(), tag.words(), 0, tag.flags()).0;
            let dest = (DIRECT_BASE + u64::from(target)) << 12 | (r[ri.dest] & 0xf);
            let timeout = r[ri.abi_timeout];
            // what a cut records for it while the call is in progress
            let utcb = self.save_utcb(env, t, &r, &fpu)?;
            self.threads[t as usize].armed = false;
            self.hold(env, t, r, dest, timeout, utcb, fpu)?;
            done = true;
        }
        for (t, r, fpu) in rest {
            self.resume_with(env, t, &r, &fpu)?;
        }
        Ok(done)
    }

    /// Gives the child thread `t`'s real capability in its direct slot
    /// (for IPC to the thread only; thread operations go to the proxy).
    pub(crate) fn map_direct<E: Env>(&mut self, env: &mut E, t: u32) -> Result<(), Error> {
        let real = self.objects[self.threads[t as usize].obj as usize].cap;
        self.give_cap(env, real, DIRECT_BASE + u64::from(t), 4, false)
    }
}

/// Is `svc` a thread proxy and `tag` no thread operation (a message for
/// the thread itself)?
pub(crate) fn is_direct(svc: Service, tag: MsgTag) -> bool {
    svc == Service::Thread && tag.label() != l4_sys::Protocol::Thread.label()
}
