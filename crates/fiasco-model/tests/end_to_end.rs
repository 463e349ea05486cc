//! A child program on the model talks to the root through a gate, counts in
//! its memory, and the root sees every step with the same words the kernel
//! would carry.

mod common;
use common::*;

use fiasco_model::{sys, Cpu, Program, Trap};
use l4_sys::cap::CapIdx;
use l4_sys::ipc;
use l4_sys::msgtag::{MsgTag, TagFlags};
use l4_sys::{Kernel, TimeoutPair};
use std::sync::Arc;

/// Counts in DATA and reports every count to its gate (slot 4 in its task).
struct Counter;
impl Program for Counter {
    fn step(&self, cpu: &mut Cpu<'_>) -> Result<(), Trap> {
        loop {
            match cpu.state() {
                0 => {
                    let n = cpu.load_u64(DATA)? + 1;
                    cpu.store_u64(DATA, n)?;
                    cpu.set_r(0, n);
                    cpu.goto(1);
                }
                1 => {
                    let n = cpu.r(0);
                    cpu.utcb().mr[0] = n;
                    let r = sys!(
                        cpu,
                        ipc::call(cpu, CapIdx(4), MsgTag::new(0, 1, 0, TagFlags::empty()), TimeoutPair::NEVER)
                    );
                    // the reply says how many more to count
                    let more = r.map(|_| cpu.utcb().mr[0]).unwrap_or(0);
                    cpu.goto(if more > 0 { 0 } else { 2 });
                }
                _ => {
                    let _ = sys!(cpu, ipc::sleep(cpu, l4_sys::Timeout::NEVER));
                }
            }
        }
    }
}

#[test]
fn child_counts_and_calls_the_root_through_its_gate() {
    let mut m = model();
    m.register_program(CODE, Arc::new(Counter));
    let mut root = m.root();
    let child = spawn(&mut root, 0x20, CODE, 0x10, 10);
    for expect in 1..=5u64 {
        let r = ipc::wait(&mut root, TimeoutPair::NEVER).expect("child message");
        assert_eq!(r.label, 0x10 | 3, "gate label | W | S of the child's cap");
        assert_eq!(r.tag.words(), 1);
        assert_eq!(root.utcb().mr[0], expect);
        root.utcb().mr[0] = if expect < 5 { 1 } else { 0 };
        ipc::reply(&mut root, MsgTag::new(0, 1, 0, TagFlags::empty()), 0, TimeoutPair::NEVER).unwrap();
    }
    // the counter lives in the child's memory, where rtcr will find it
    let m = root.model();
    let task = obj(m, child.task.idx());
    let bytes = m.peek(task, DATA, 8).unwrap();
    assert_eq!(u64::from_le_bytes(bytes.try_into().unwrap()), 5);
}
