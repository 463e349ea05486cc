//! What a child may not do: quotas are enforced with error replies,
//! malformed and unsupported requests get error replies (rtcr goes on
//! serving), and a direct rebind of a gate it holds with the server right
//! goes to the kernel — which refuses it, because the child knows its
//! threads only by rtcr's proxy gates, never by a thread capability. So the
//! kernel offers no way to change a binding behind rtcr's back; the label is
//! still read back at each checkpoint (get_infos) in case one appears.

use rtcr_sim::*;

use fiasco_model::{sys, Cpu, Trap};
use l4_sys::cap::{kind, Cap, CapIdx};
use l4_sys::exc::Arch;
use l4_sys::{factory, ipc, Errno, Error, Kernel, Timeout};
use rtcr_core::supervisor::ServeOutcome;
use rtcr_core::Supervisor;
use std::sync::Arc;

const F: Cap<kind::Factory> = Cap::new(CapIdx(2));

fn code(r: Result<impl Sized, Error>) -> u64 {
    match r {
        Ok(_) => 0,
        Err(Error::Kernel(e)) => e.value() as u64,
        Err(Error::Ipc(e)) => 0x1000 | e.to_tcr(),
        Err(_) => 0xffff,
    }
}

/// Makes request `state` and stores its result at DATA + 8 * state.
fn requester() -> Arc<dyn fiasco_model::Program> {
    struct R;
    impl fiasco_model::Program for R {
        fn step(&self, cpu: &mut Cpu<'_>) -> Result<(), Trap> {
            let s = cpu.state();
            let r = match s {
                // six gates: the quota is five
                0..=5 => code(sys!(cpu, factory::create_gate(cpu, F, CapIdx(0x20 + s), None))),
                // a task: not for a supervised child
                6 => code(sys!(cpu, factory::create_task(cpu, F, CapIdx(0x30), l4_sys::Fpage::INVALID))),
                // the factory spoken to with the task protocol
                7 => code(sys!(cpu, ipc::rpc(cpu, CapIdx(2), -11, &[0], &[]))),
                // an unknown thread operation
                8 => code(sys!(cpu, ipc::rpc(cpu, CapIdx(3), -12, &[0x77], &[]))),
                // ex_regs with the wrong word count
                9 => code(sys!(cpu, ipc::rpc(cpu, CapIdx(3), -12, &[1, 2], &[]))),
                // a gate bound to "a thread" that is an IRQ-less gate
                10 => {
                    let it = [l4_sys::item::SendItem::cap_arg(CapIdx(0x20))];
                    cpu.utcb().br[0] = l4_sys::item::rcv_single_cap(CapIdx(0x31));
                    code(sys!(cpu, ipc::rpc(cpu, CapIdx(2), -15, &[0, 0x0008_0001, 0x40], &it)))
                }
                // memory is rtcr's: no unmapping of memory through the task cap
                11 => code(sys!(
                    cpu,
                    ipc::rpc(
                        cpu,
                        CapIdx(1),
                        -11,
                        &[1, 0x8000_0000, l4_sys::Fpage::mem(DATA, 12, l4_sys::MemRights::RWX).0],
                        &[]
                    )
                )),
                // an empty message to the scheduler
                12 => code(sys!(cpu, ipc::rpc(cpu, CapIdx(7), -14, &[], &[]))),
                _ => {
                    let _ = sys!(cpu, ipc::sleep(cpu, Timeout::NEVER));
                    return Ok(());
                }
            };
            cpu.store_u64(DATA + 8 * s, r + 1)?;
            cpu.goto(s + 1);
            Ok(())
        }
    }
    Arc::new(R)
}

#[test]
fn quotas_and_bad_requests_get_error_replies() {
    let mut m = model(Arch::Amd64, requester());
    let mut r = m.root();
    let mut env = ModelEnv(&mut r);
    let mut sp = spec("requester");
    sp.max_objects = 5;
    let mut sup = Supervisor::spawn(&mut env, sp).unwrap();
    let out = sup.serve(&mut env, 500, Timeout::from_us(2000)).unwrap();
    assert_eq!(out, ServeOutcome::Idle, "rtcr is still serving");
    let mm = env.0.model();
    let t = mm.object_at(mm.boot_objects().root_task, sup.child_task().idx().0).unwrap();
    let got: Vec<u64> = (0..13u64)
        .map(|i| u64::from_le_bytes(mm.peek(t, DATA + 8 * i, 8).unwrap().try_into().unwrap()).wrapping_sub(1))
        .collect();
    let e = |x: Errno| x.value() as u64;
    assert_eq!(&got[..5], &[0, 0, 0, 0, 0], "five gates");
    assert_eq!(got[5], e(Errno::NoMem), "the sixth is over the quota");
    assert_eq!(got[6], e(Errno::Perm), "no tasks");
    assert_eq!(got[7], e(Errno::BadProto));
    assert_eq!(got[8], e(Errno::NoSys));
    assert_eq!(got[9], e(Errno::Inval));
    assert_eq!(got[10], e(Errno::NoMem), "quota again (checked first)");
    assert_eq!(got[11], e(Errno::Perm), "memory is rtcr's");
    assert_eq!(got[12], e(Errno::MsgTooShort));
    // only the five gates were recorded, in the slots the child chose
    let gates: Vec<u64> = sup.recorded_slots().iter().filter(|s| s.1 == "gate").map(|s| s.0).collect();
    assert_eq!(gates, vec![0x20, 0x21, 0x22, 0x23, 0x24]);
}

/// Creates a gate bound to itself (label 0x40), then rebinds it directly
/// to label 0x80 (it holds the server right), then waits.
fn rebinder() -> Arc<dyn fiasco_model::Program> {
    struct B;
    impl fiasco_model::Program for B {
        fn step(&self, cpu: &mut Cpu<'_>) -> Result<(), Trap> {
            match cpu.state() {
                0 => {
                    let _ = sys!(cpu, factory::create_gate(cpu, F, CapIdx(0x20), Some((Cap::new(CapIdx(3)), 0x40))));
                    cpu.goto(1);
                }
                1 => {
                    let r = sys!(
                        cpu,
                        l4_sys::rcv_endpoint::bind_thread(
                            cpu,
                            Cap::<kind::IpcGate>::new(CapIdx(0x20)),
                            Cap::new(CapIdx(3)),
                            0x80
                        )
                    );
                    cpu.store_u64(DATA, code(r) + 1)?;
                    cpu.goto(2);
                }
                _ => {
                    let _ = sys!(cpu, ipc::sleep(cpu, Timeout::NEVER));
                }
            }
            Ok(())
        }
    }
    Arc::new(B)
}

#[test]
fn a_child_cannot_rebind_a_gate_behind_rtcrs_back() {
    let mut m = model(Arch::Amd64, rebinder());
    let mut r = m.root();
    let mut env = ModelEnv(&mut r);
    let mut sup = Supervisor::spawn(&mut env, spec("rebinder")).unwrap();
    sup.serve(&mut env, 100, Timeout::from_us(2000)).unwrap();
    let mm = env.0.model();
    let t = mm.object_at(mm.boot_objects().root_task, sup.child_task().idx().0).unwrap();
    // the bind went to the kernel, not to rtcr: the child holds the gate with
    // the server right, and the thread item it sent is rtcr's proxy gate, not
    // a thread — so the kernel refuses it
    let r = u64::from_le_bytes(mm.peek(t, DATA, 8).unwrap().try_into().unwrap()) - 1;
    assert_eq!(r, Errno::Inval.value() as u64, "a child cannot bind a gate to a thread it only knows by proxy");
    let (cp, _) = sup.checkpoint(&mut env).unwrap();
    let gate = cp.caps.iter().find(|c| c.slot == 0x20).unwrap();
    match &cp.objects[gate.object as usize] {
        rtcr_image::ObjectRecord::Gate { label, bound } => {
            assert_eq!(*label, 0x40, "label read back with get_infos at the checkpoint");
            assert!(bound.is_some());
        }
        o => panic!("{o:?}"),
    }
}

/// Asks its pager (sigma0 protocol) for 16 KiB of any RAM into the whole
/// address space, as a root task does, and writes to it.
fn sigma0_client() -> Arc<dyn fiasco_model::Program> {
    struct S;
    impl fiasco_model::Program for S {
        fn step(&self, cpu: &mut Cpu<'_>) -> Result<(), Trap> {
            match cpu.state() {
                0 => {
                    let whole = l4_sys::Fpage::mem(0, 63, l4_sys::MemRights::empty());
                    let r = sys!(cpu, l4_sys::sigma0::map_any(cpu, Cap::new(CapIdx(4)), 14, whole));
                    let at = r.unwrap_or(0);
                    cpu.store_u64(DATA, at)?;
                    cpu.set_r(0, at);
                    cpu.goto(1);
                }
                1 => {
                    let at = cpu.r(0);
                    if at != 0 {
                        cpu.store_u64(at + 0x3000, 0xfeed)?;
                    }
                    cpu.goto(2);
                }
                _ => {
                    let _ = sys!(cpu, ipc::sleep(cpu, Timeout::NEVER));
                }
            }
            Ok(())
        }
    }
    Arc::new(S)
}

#[test]
fn memory_from_the_sigma0_protocol_is_checkpointed_too() {
    let mut m = model(Arch::Amd64, sigma0_client());
    let at;
    let bytes;
    {
        let mut r = m.root();
        let mut env = ModelEnv(&mut r);
        let mut sup = Supervisor::spawn(&mut env, spec("s0client")).unwrap();
        sup.serve(&mut env, 100, Timeout::from_us(2000)).unwrap();
        let mm = env.0.model();
        let t = mm.object_at(mm.boot_objects().root_task, sup.child_task().idx().0).unwrap();
        at = u64::from_le_bytes(mm.peek(t, DATA, 8).unwrap().try_into().unwrap());
        assert_eq!(at, spec("x").sigma0_range.0, "landed at the hot spot rtcr chose");
        assert_eq!(mm.peek(t, at + 0x3000, 8).unwrap(), 0xfeedu64.to_le_bytes());
        let (cp, st) = sup.checkpoint(&mut env).unwrap();
        assert!(cp.pages.iter().filter(|p| p.vaddr >= at && p.vaddr < at + 0x4000).count() == 4);
        bytes = rtcr_core::encode_image(Arch::Amd64, st.seq, &cp).unwrap();
    }
    let (meta, cp) = rtcr_image::decode(&bytes).unwrap();
    let mut m2 = model(Arch::Amd64, sigma0_client());
    let mut r = m2.root();
    let mut env = ModelEnv(&mut r);
    let sup = Supervisor::restore(&mut env, spec("x"), &cp, meta.sequence).unwrap();
    let mm = env.0.model();
    let t = mm.object_at(mm.boot_objects().root_task, sup.child_task().idx().0).unwrap();
    assert_eq!(mm.peek(t, at + 0x3000, 8).unwrap(), 0xfeedu64.to_le_bytes());
}

/// Maps the KIP through its pager (the sigma0 protocol, whole address
/// space as a root task does), then reads its clock word again and again,
/// counting the reads at DATA + 8.
fn kip_reader() -> Arc<dyn fiasco_model::Program> {
    struct K;
    impl fiasco_model::Program for K {
        fn step(&self, cpu: &mut Cpu<'_>) -> Result<(), Trap> {
            match cpu.state() {
                0 => {
                    let whole = l4_sys::Fpage::mem(0, 63, l4_sys::MemRights::empty());
                    let at = sys!(cpu, l4_sys::sigma0::map_kip(cpu, Cap::new(CapIdx(4)), whole)).unwrap_or(0);
                    cpu.store_u64(DATA, at)?;
                    cpu.goto(1);
                }
                1 => {
                    let at = cpu.load_u64(DATA)?;
                    // the KIP's clock word (offset 0xa0)
                    let _ = cpu.load_u64(at + 0xa0)?;
                    let n = cpu.load_u64(DATA + 8)?;
                    cpu.store_u64(DATA + 8, n + 1)?;
                    cpu.goto(2);
                }
                _ => {
                    let _ = sys!(cpu, ipc::sleep(cpu, Timeout::from_us(100)));
                    cpu.goto(1);
                }
            }
            Ok(())
        }
    }
    Arc::new(K)
}

#[test]
fn a_restored_child_finds_the_kip_where_it_was() {
    let mut m = model(Arch::Arm64, kip_reader());
    let bytes;
    {
        let mut r = m.root();
        let mut env = ModelEnv(&mut r);
        let mut sup = Supervisor::spawn(&mut env, spec("kip")).unwrap();
        for _ in 0..10 {
            assert!(!matches!(sup.serve(&mut env, 100, Timeout::from_us(500)).unwrap(), ServeOutcome::Crash { .. }));
        }
        assert_eq!(child_u64(env.0.model(), &sup, DATA), env.0.model().kip_phys());
        let (cp, st) = sup.checkpoint(&mut env).unwrap();
        // the KIP is the kernel's, not the child's memory: not in the image
        assert!(cp.pages.iter().all(|p| p.vaddr != env.0.model().kip_phys()));
        bytes = rtcr_core::encode_image(Arch::Arm64, st.seq, &cp).unwrap();
    }
    let (meta, cp) = rtcr_image::decode(&bytes).unwrap();
    let mut m2 = model(Arch::Arm64, kip_reader());
    let mut r = m2.root();
    let mut env = ModelEnv(&mut r);
    let mut sup = Supervisor::restore(&mut env, spec("x"), &cp, meta.sequence).unwrap();
    let reads = child_u64(env.0.model(), &sup, DATA + 8);
    for _ in 0..10 {
        let out = sup.serve(&mut env, 100, Timeout::from_us(500)).unwrap();
        assert!(!matches!(out, ServeOutcome::Crash { .. }), "the restored child faulted on its KIP: {out:?}");
    }
    assert!(child_u64(env.0.model(), &sup, DATA + 8) > reads, "it reads the KIP on");
}
