//! Guest-owned debug through the model (`cpu::debug`): corners of the Arm ARM D2 rules that
//! the conformance scenarios (tests/conformance/guest_*.trace) do not reach.
//!
//! Each snippet runs with a logging handler at both synchronous vectors it can use: four
//! doublewords per exception at x20 (ESR, ELR, SPSR, FAR), a count in x9; software steps
//! return with SPSR.SS = 1, SVC returns after itself, anything else skips its instruction.

use vm_memory::{Bytes, GuestAddress};

use super::{step_dbg, sw_bp_dbg, Setup, DATA, SHUTDOWN};
use crate::a64::{pstate, sys, Reg};
use crate::backend::model::cpu::debug::is_load_exclusive;
use crate::backend::model::testutil::{asm, config, load, ram, RAM};
use crate::backend::{create_vm, BackendKind, GuestDebug, VcpuExit};

/// The logging handler at VBAR_EL1 + 0x200 (EL1h) and + 0x400 (EL0), VBAR_EL1 = RAM + 0x800.
const HANDLER: &str = ".org 0x800\n .org 0xa00\n 9: mrs x10, esr_el1\n mrs x11, elr_el1\n \
     mrs x12, spsr_el1\n mrs x13, far_el1\n stp x10, x11, [x20], #16\n stp x12, x13, [x20], #16\n \
     add x9, x9, #1\n lsr x14, x10, #26\n and x15, x14, #0x3e\n cmp x15, #0x32\n b.eq 1f\n \
     cmp x14, #0x15\n b.eq 2f\n add x11, x11, #4\n msr elr_el1, x11\n eret\n \
     1: orr x12, x12, #0x200000\n msr spsr_el1, x12\n eret\n 2: eret\n .org 0xc00\n b 9b";

/// MDSCR_EL1 values (Arm ARM D19.3): SS (bit 0), KDE (bit 13), MDE (bit 15).
const SS: u64 = 1;
const KDE: u64 = 1 << 13;
const MDE: u64 = 1 << 15;

/// Assembles `src` (then PSCI SYSTEM_OFF) with the handler; x20 = DATA (the log).
fn guest(src: &str) -> Option<Setup> {
    let words = asm(&format!(
        "{src}\n ldr x0, =0x84000008\n hvc #0\n .ltorg\n {HANDLER}"
    ))?;
    let mem = ram();
    load(&mem, RAM, &words);
    let vm = create_vm(BackendKind::Model, &mem, &config(1)).expect("model VM");
    let mut cpu = vm.create_vcpu(0).expect("vCPU 0");
    cpu.set(Reg::Pc, RAM).unwrap();
    cpu.set(Reg::Sys(sys::VBAR_EL1), RAM + 0x800).unwrap();
    cpu.set(Reg::X(20), DATA).unwrap();
    Some(Setup { vm, cpu, mem })
}

/// One logged exception: (ESR, ELR, SPSR, FAR).
fn logged(s: &Setup, n: u64) -> (u64, u64, u64, u64) {
    let at = |k: u64| {
        s.mem
            .read_obj::<u64>(GuestAddress(DATA + 32 * n + 8 * k))
            .unwrap()
    };
    (at(0), at(1), at(2), at(3))
}

fn count(s: &mut Setup) -> u64 {
    s.cpu.get(Reg::X(9)).unwrap()
}

#[test]
fn load_exclusive_decoding() {
    // LDXR x3, [x20]; LDAXR w1, [x2]; LDXP x1, x2, [x3]; LDAXP x1, x2, [x3].
    for i in [0xc85f_7e83, 0x885f_fc41, 0xc87f_0861, 0xc87f_8861] {
        assert!(is_load_exclusive(i), "{i:#x}");
    }
    // STXR w4, x3, [x20]; LDAR x1, [x2]; CASP x0, x1, x2, x3, [x4]; CASA x0, x1, [x2];
    // LDR x1, [x2].
    for i in [
        0xc804_7e83,
        0xc8df_fc41,
        0x4820_7c82,
        0xc8e0_7c41,
        0xf940_0041,
    ] {
        assert!(!is_load_exclusive(i), "{i:#x}");
    }
}

#[test]
fn unmasking_d_starts_a_pending_step() {
    // PSTATE.SS = 0 with the step inactive (D = 1): clearing D makes it active-pending, so
    // the step exception comes before the next instruction without stepping one (ISV = 0);
    // then every instruction is stepped (ISV = 1) until MDSCR_EL1.SS is cleared. (Stepping
    // code that writes ELR_EL1/SPSR_EL1 and ERETs cannot work: each step exception
    // overwrites them.)
    let Some(mut s) = guest(&format!(
        "mov x0, #{:#x}\n msr mdscr_el1, x0\n isb\n msr daifclr, #8\n nop\n \
         add x7, x7, #1\n add x7, x7, #1\n msr mdscr_el1, xzr\n nop",
        KDE | SS
    )) else {
        return;
    };
    assert_eq!(s.cpu.run().unwrap(), SHUTDOWN);
    let steps: Vec<_> = (0..count(&mut s)).map(|n| logged(&s, n)).collect();
    let got: Vec<_> = steps.iter().map(|l| (l.0, l.1)).collect();
    assert_eq!(
        got,
        [
            (0xce00_0022, RAM + 0x10), // after daifclr: active-pending at once
            (0xcf00_0022, RAM + 0x14), // nop
            (0xcf00_0022, RAM + 0x18), // add
            (0xcf00_0022, RAM + 0x1c), // add; the msr then turns stepping off
        ]
    );
    for l in &steps {
        assert_eq!(l.2 & pstate::SS, 0, "taken from active-pending: {steps:x?}");
    }
    assert_eq!(s.cpu.get(Reg::X(7)).unwrap(), 2);
}

#[test]
fn os_lock_and_pstate_d_mask_guest_debug_and_the_double_lock_cannot_be_set() {
    // A store watchpoint on DATA + 0x800 and stepping, under the OS lock and then with
    // PSTATE.D = 1: neither fires; OSDLR_EL1 reads 0 after writing 1 (RAZ/WI, as on KVM).
    let Some(mut s) = guest(&format!(
        "add x1, x20, #0x800\n msr dbgwvr0_el1, x1\n mov x0, #0x1ff7\n msr dbgwcr0_el1, x0\n \
         mov x0, #1\n msr oslar_el1, x0\n msr osdlr_el1, x0\n mrs x7, osdlr_el1\n \
         mov x0, #{:#x}\n msr mdscr_el1, x0\n isb\n msr daifclr, #8\n str x0, [x1]\n \
         msr daifset, #8\n msr oslar_el1, xzr\n isb\n str x0, [x1]\n mrs x8, mdscr_el1",
        KDE | MDE | SS
    )) else {
        return;
    };
    assert_eq!(s.cpu.run().unwrap(), SHUTDOWN);
    assert_eq!(count(&mut s), 0, "nothing taken: {:x?}", logged(&s, 0));
    assert_eq!(s.cpu.get(Reg::X(7)).unwrap(), 0, "OSDLR_EL1 is RAZ/WI");
    assert_eq!(s.cpu.get(Reg::X(8)).unwrap(), KDE | MDE | SS);
    let watched = s.mem.read_obj::<u64>(GuestAddress(DATA + 0x800)).unwrap();
    assert_eq!(watched, KDE | MDE | SS, "both stores done");
}

#[test]
fn breakpoint_privilege_and_step_priority() {
    // Breakpoint 0 (EL0 only, PMC = 0b10: 0x1e5) on the first nop is not taken at EL1;
    // breakpoint 1 (EL1, 0x1e3) on the second. Stepping reaches the second nop
    // active-pending: the step exception comes first, then (the handler re-arms the step)
    // the breakpoint, with SPSR.SS = 1 (the instruction was not stepped yet).
    let Some(mut s) = guest(&format!(
        "adr x0, 1f\n msr dbgbvr0_el1, x0\n mov x0, #0x1e5\n msr dbgbcr0_el1, x0\n \
         adr x0, 2f\n msr dbgbvr1_el1, x0\n mov x0, #0x1e3\n msr dbgbcr1_el1, x0\n \
         mov x0, #{:#x}\n msr mdscr_el1, x0\n isb\n msr daifclr, #8\n 1: nop\n \
         mov x0, #{:#x}\n msr mdscr_el1, x0\n 2: nop\n msr mdscr_el1, xzr",
        KDE | MDE,
        KDE | MDE | SS
    )) else {
        return;
    };
    assert_eq!(s.cpu.run().unwrap(), SHUTDOWN);
    assert_eq!(count(&mut s), 2);
    let second_nop = RAM + 0x3c;
    // Turning stepping on with PSTATE.SS = 0 makes it active-pending (ISV = 0).
    assert_eq!(
        (logged(&s, 0).0, logged(&s, 0).1),
        (0xce00_0022, second_nop)
    );
    let (esr, elr, spsr, _) = logged(&s, 1);
    assert_eq!(
        (esr, elr),
        (0xc600_0022, second_nop),
        "EC 0x31 after the step"
    );
    assert_eq!(spsr & pstate::SS, pstate::SS);
}

#[test]
fn read_modify_write_hits_a_guest_load_watchpoint() {
    // LDADD is a load and a store: a load-only watchpoint (LSC = 0b01: 0x1fef) fires with
    // WnR = 0 (EC 0x35), the FAR at the access; the handler skips it.
    let Some(mut s) = guest(&format!(
        "add x1, x20, #0x800\n msr dbgwvr0_el1, x1\n mov x0, #0x1fef\n msr dbgwcr0_el1, x0\n \
         mov x0, #{MDE:#x}\n msr mdscr_el1, x0\n isb\n mov x0, #1\n ldadd x0, x4, [x1]"
    )) else {
        return;
    };
    assert_eq!(s.cpu.run().unwrap(), SHUTDOWN);
    assert_eq!(count(&mut s), 0, "KDE = 0: masked at EL1");
    let Some(mut s) = guest(&format!(
        "add x1, x20, #0x800\n msr dbgwvr0_el1, x1\n mov x0, #0x1fef\n msr dbgwcr0_el1, x0\n \
         mov x0, #{:#x}\n msr mdscr_el1, x0\n isb\n msr daifclr, #8\n mov x0, #1\n \
         ldadd x0, x4, [x1]",
        KDE | MDE
    )) else {
        return;
    };
    assert_eq!(s.cpu.run().unwrap(), SHUTDOWN);
    assert_eq!(count(&mut s), 1);
    let (esr, elr, _, far) = logged(&s, 0);
    assert_eq!((esr, elr, far), (0xd600_0022, RAM + 0x24, DATA + 0x800));
    assert_eq!(
        s.mem.read_obj::<u64>(GuestAddress(DATA + 0x800)).unwrap(),
        0,
        "skipped"
    );
}

#[test]
fn the_vmm_owning_debug_leaves_the_guest_its_own_mdscr_and_silences_its_step() {
    // The guest turns its own step on and reads MDSCR_EL1 back while the VMM owns debug
    // (software breakpoints only): it reads its own value, the VMM reads the same, and no
    // step exception reaches the guest (KVM 6.1 loads MDSCR_EL1.SS = 0).
    let Some(mut s) = guest(&format!(
        "mov x0, #{:#x}\n msr mdscr_el1, x0\n adr x0, 1f\n msr elr_el1, x0\n \
         ldr x0, =0x200005\n msr spsr_el1, x0\n eret\n 1: nop\n mrs x7, mdscr_el1\n nop",
        KDE | SS
    )) else {
        return;
    };
    s.cpu.set_guest_debug(&sw_bp_dbg()).unwrap();
    assert_eq!(s.cpu.run().unwrap(), SHUTDOWN);
    assert_eq!(count(&mut s), 0);
    assert_eq!(s.cpu.get(Reg::X(7)).unwrap(), KDE | SS);
    assert_eq!(s.cpu.get(Reg::Sys(sys::MDSCR_EL1)).unwrap(), KDE | SS);
    // The ERET returned with PSTATE.SS = 0: with the VMM owning debug the debug target is
    // EL2, so debug exceptions are enabled at the source (DebugExceptionReturnSS).
    assert_eq!(s.cpu.get(Reg::Pstate).unwrap() & pstate::SS, 0);
}

#[test]
fn the_guests_step_resumes_active_pending_when_the_vmm_gives_debug_back() {
    // The guest has its own step on (KDE | SS) while the VMM single-steps it through an ERET
    // to EL1 with D = 0: the VMM's step wins and PSTATE.SS stays 0. When the VMM lets go,
    // entering the guest is an exception return into active-pending: the guest's step
    // exception comes first, ISV = 0; then its steps go on, through SVC (ISV = 0 after it).
    let Some(mut s) = guest(&format!(
        "mov x0, #{:#x}\n msr mdscr_el1, x0\n adr x0, 1f\n msr elr_el1, x0\n mov x0, #0x5\n \
         msr spsr_el1, x0\n eret\n 1: nop\n nop\n svc #0\n nop",
        KDE | SS
    )) else {
        return;
    };
    s.cpu.set_guest_debug(&step_dbg()).unwrap();
    for _ in 0..7 {
        assert!(matches!(s.cpu.run().unwrap(), VcpuExit::Debug { .. }));
    }
    assert_eq!(s.cpu.get(Reg::Pc).unwrap(), RAM + 0x1c);
    assert_eq!(count(&mut s), 0, "the guest's step never fired");
    s.cpu.set_guest_debug(&GuestDebug::default()).unwrap();
    assert_eq!(s.cpu.run().unwrap(), SHUTDOWN);
    let got: Vec<_> = (0..count(&mut s))
        .map(|n| logged(&s, n))
        .map(|l| (l.0, l.1))
        .collect();
    assert_eq!(
        got,
        [
            (0xce00_0022, RAM + 0x1c), // active-pending at entry: ISV = 0
            (0xcf00_0022, RAM + 0x20), // nop stepped
            (0xcf00_0022, RAM + 0x24), // nop
            (0x5600_0000, RAM + 0x28), // svc #0: SPSR.SS = 0 ...
            (0xce00_0022, RAM + 0x28), // ... so the step ends after the ERET, ISV = 0
            (0xcf00_0022, RAM + 0x2c), // nop
            (0xcf00_0022, RAM + 0x30), // ldr x0 (SYSTEM_OFF follows: the HVC ends the run)
        ]
    );
}

#[test]
fn guest_watchpoints_see_sttr_at_el1_as_an_el0_access_taken_from_el1() {
    // STTR at EL1 under a guest watchpoint (LSC = 0b11, BAS = 0xff): with PAC = 0b10 (EL0
    // only: 0x1ffd) it hits, as an EL0 access does (Arm ARM D2.10, C6.2 "STTR"), but the
    // exception is taken from EL1: EC 0x35 with WnR, FAR at the access; PAC = 0b01 (EL1 only:
    // 0x1ffb) misses it.
    let src = |wcr: u64| {
        format!(
            "add x1, x20, #0x800\n msr dbgwvr0_el1, x1\n mov x0, #{wcr:#x}\n msr dbgwcr0_el1, x0\n \
             mov x0, #{:#x}\n msr mdscr_el1, x0\n isb\n msr daifclr, #8\n mov x0, #5\n \
             sttr x0, [x1]",
            KDE | MDE
        )
    };
    let Some(mut s) = guest(&src(0x1ffb)) else {
        return;
    };
    assert_eq!(s.cpu.run().unwrap(), SHUTDOWN);
    assert_eq!(count(&mut s), 0, "PAC 0b01 misses the unprivileged store");
    assert_eq!(
        s.mem.read_obj::<u64>(GuestAddress(DATA + 0x800)).unwrap(),
        5
    );
    let Some(mut s) = guest(&src(0x1ffd)) else {
        return;
    };
    assert_eq!(s.cpu.run().unwrap(), SHUTDOWN);
    assert_eq!(count(&mut s), 1);
    let (esr, elr, spsr, far) = logged(&s, 0);
    assert_eq!((esr, elr, far), (0xd600_0062, RAM + 0x24, DATA + 0x800));
    assert_eq!(spsr & 0xf, 0b0101, "taken from EL1h");
    assert_eq!(
        s.mem.read_obj::<u64>(GuestAddress(DATA + 0x800)).unwrap(),
        0,
        "skipped"
    );
}
