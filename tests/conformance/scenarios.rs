//! The scenarios: guest code (hand-assembled in `programs`), the guest-debug configuration
//! and the VMM's script. Register values are DBGBCR/DBGWCR encodings (Arm ARM D19.3).

use kvmdbg::backend::GuestDebug;

use super::guest_programs::*;
use super::programs::*;
use super::OnDebug;

pub const RAM: u64 = 0x4000_0000;
/// A RAM doubleword the watchpoint scenarios use.
pub const DATA: u64 = 0x4010_0000;
/// Where the vector table goes (VBAR_EL1), and its "current EL, SP_ELx, synchronous" entry.
const SYNC_VECTOR: u64 = 0x800 + 0x200;
/// The vector table's "lower EL using AArch64, synchronous" entry (D1.10.2: offset 0x400).
const LOWER_SYNC_VECTOR: u64 = 0x800 + 0x400;
/// Where the breakpoint scenarios' subroutines `target` and `target2` are.
const BP_TARGETS_AT: u64 = 0x1000;
/// The vector table's "current EL, SP_ELx, IRQ" entry (Arm ARM D1.10.2: offset 0x280).
const IRQ_VECTOR: u64 = 0x800 + 0x280;
/// What the interrupt scenarios print: x9 (interrupts taken), x10 (last INTID), x11 (last
/// ELR_EL1), x12 (last SPSR_EL1), x13 (ISR_EL1 as read by the program).
const IRQ_REGS: &[u8] = &[9, 10, 11, 12, 13];

pub struct Scenario {
    pub name: &'static str,
    /// (offset from RAM, words); vCPU 0 starts at offset 0.
    pub code: Vec<(u64, Vec<u32>)>,
    pub debug: GuestDebug,
    pub on_debug: OnDebug,
    /// X registers printed at the end.
    pub regs: &'static [u8],
    /// RAM doublewords printed at the end.
    pub words: &'static [u64],
}

/// `program` then PSCI SYSTEM_OFF, at the start of RAM.
fn at_start(program: &[u32]) -> Vec<(u64, Vec<u32>)> {
    let mut code = program.to_vec();
    code.extend_from_slice(SYSTEM_OFF);
    vec![(0, code)]
}

/// [`at_start`] plus the guest's synchronous exception handler in its vector table.
fn with_handler(program: &[u32]) -> Vec<(u64, Vec<u32>)> {
    let mut code = at_start(program);
    code.push((SYNC_VECTOR, SYNC_HANDLER.to_vec()));
    code
}

/// The GIC and timer setup, then `program`, then SYSTEM_OFF, with the IRQ handler in the
/// vector table.
fn with_irq(program: &[u32]) -> Vec<(u64, Vec<u32>)> {
    let mut code = GIC_TIMER_SETUP.to_vec();
    code.extend_from_slice(program);
    let mut code = at_start(&code);
    code.push((IRQ_VECTOR, IRQ_HANDLER.to_vec()));
    code
}

/// [`at_start`] plus the guest-owned debug handler at both synchronous vectors it uses and the
/// breakpoint targets (layout: `guest_programs`).
fn with_dbg_handler(program: &[u32]) -> Vec<(u64, Vec<u32>)> {
    let mut code = at_start(program);
    code.push((SYNC_VECTOR, DBG_HANDLER.to_vec()));
    code.push((LOWER_SYNC_VECTOR, LOWER_VECTOR.to_vec()));
    code.push((BP_TARGETS_AT, BP_TARGETS.to_vec()));
    code
}

/// The addresses of `DBG_HANDLER`'s log for `N / per` exceptions, `per` doublewords each:
/// ESR, ELR, SPSR (`per` = 3) or ESR, ELR, FAR, SPSR (`per` = 4). Scenarios print one entry
/// more than they expect to be written, so an extra exception shows.
const fn log_words<const N: usize>(per: usize) -> [u64; N] {
    let mut out = [0u64; N];
    let mut i = 0;
    while i < N {
        let entry = (i / per) as u64;
        let k = (i % per) as u64;
        // Without the FAR, the third doubleword printed is the fourth logged (SPSR).
        let slot = if per == 3 && k == 2 { 3 } else { k };
        out[i] = DATA + 32 * entry + 8 * slot;
        i += 1;
    }
    out
}

/// 5 exceptions logged plus one empty entry (guest_hw_breakpoint; guest_bp_vmm_hw has 4).
static BP_LOG: [u64; 18] = log_words(3);
/// 7 exceptions (guest_bp_vmm_swbp: the VMM's debug makes more of them) plus one empty entry.
static BP_LOG_LONG: [u64; 24] = log_words(3);
/// 6 watchpoint exceptions and SVC plus one empty entry, with the FAR, then the watched data.
static WATCH_LOG: [u64; 37] = {
    let log: [u64; 32] = log_words(4);
    let mut out = [0u64; 37];
    let mut i = 0;
    while i < 32 {
        out[i] = log[i];
        i += 1;
    }
    let data = [
        DATA + 0x800,
        DATA + 0x900,
        DATA + 0x908,
        DATA + 0x918,
        DATA + 0x920,
    ];
    while i < 37 {
        out[i] = data[i - 32];
        i += 1;
    }
    out
};
/// 13 steps, UDF and SVC plus one empty entry.
static STEP_LOG: [u64; 48] = log_words(3);
/// UDF and SVC only (the guest's own step has no effect while the VMM owns debug) plus one
/// empty entry.
static STEP_VMM_LOG: [u64; 9] = log_words(3);
/// 5 steps, SVC, BRK and SVC plus one empty entry.
static STEP_EL0_LOG: [u64; 27] = log_words(3);
/// The registers the guest-owned debug scenarios print: x4, x5 (MDSCR_EL1 or OSLSR_EL1 as
/// read), x9 (exceptions taken), x22, x23 (instructions that ran: PSCI zeroes x1-x3).
const GUEST_DBG_REGS: &[u8] = &[4, 5, 9, 22, 23];

fn step() -> GuestDebug {
    GuestDebug {
        enable: true,
        single_step: true,
        ..GuestDebug::default()
    }
}

fn sw_bp() -> GuestDebug {
    GuestDebug {
        enable: true,
        sw_breakpoints: true,
        ..GuestDebug::default()
    }
}

/// One hardware breakpoint: E=1, PMC=0b11 (EL0 and EL1), BAS=0b1111 -> 0x1e7.
fn hw_bp(addr: u64) -> GuestDebug {
    let mut d = GuestDebug {
        enable: true,
        hw: true,
        ..GuestDebug::default()
    };
    d.bcr[0] = 0x1e7;
    d.bvr[0] = addr;
    d
}

/// One watchpoint with control value `wcr` at `addr`.
fn watch(wcr: u64, addr: u64) -> GuestDebug {
    let mut d = GuestDebug {
        enable: true,
        hw: true,
        ..GuestDebug::default()
    };
    d.wcr[0] = wcr;
    d.wvr[0] = addr;
    d
}

fn scenario(
    name: &'static str,
    code: Vec<(u64, Vec<u32>)>,
    debug: GuestDebug,
    on_debug: OnDebug,
) -> Scenario {
    Scenario {
        name,
        code,
        debug,
        on_debug,
        regs: &[],
        words: &[],
    }
}

/// Every scenario.
pub fn all() -> Vec<Scenario> {
    use OnDebug::*;
    let none = GuestDebug::default;
    vec![
        Scenario {
            regs: &[2, 12],
            ..scenario("step_mmio", at_start(STEP_MMIO), step(), Continue)
        },
        // x9 (`ldrsh x9` from MMIO) is not compared: arm64 KVM nested in QEMU 7.2 TCG loads it
        // zero-extended (the emulated host reports ISS.SSE = 0), unlike hardware; kvmdbg's
        // machine repairs the value (machine::exit), this raw-backend trace cannot.
        Scenario {
            regs: &[5, 6, 7, 8],
            ..scenario("mmio_sizes", at_start(MMIO_SIZES), none(), Continue)
        },
        Scenario {
            regs: &[5, 6, 7, 8],
            ..scenario("step_mmio_sizes", at_start(MMIO_SIZES), step(), Continue)
        },
        Scenario {
            regs: &[1, 2, 8, 9],
            ..scenario("nisv", at_start(NISV), none(), Continue)
        },
        Scenario {
            regs: &[1, 2, 8, 9],
            ..scenario("step_nisv", at_start(NISV), step(), Continue)
        },
        scenario("brk", at_start(BRK), sw_bp(), SkipInstruction),
        scenario("hw_breakpoint", at_start(HW_NOPS), hw_bp(RAM + 8), DisarmHw),
        Scenario {
            regs: &[2],
            words: &[DATA],
            // E, PAC=0b11, LSC=0b10 (store), BAS=0xff
            ..scenario(
                "watch_store",
                at_start(WATCH_STORE),
                watch(0x1ff7, DATA),
                DisarmHw,
            )
        },
        Scenario {
            words: &[DATA],
            // E, PAC=0b11, LSC=0b10 (store), BAS=0b0000_0010 (byte 1 only)
            ..scenario(
                "watch_bytes",
                at_start(WATCH_BYTES),
                watch(0x57, DATA),
                DisarmHw,
            )
        },
        Scenario {
            regs: &[2],
            // E, PAC=0b11, LSC=0b01 (load), BAS=0xff
            ..scenario(
                "watch_load",
                at_start(WATCH_LOAD),
                watch(0x1fef, DATA),
                DisarmHw,
            )
        },
        Scenario {
            words: &[DATA + 24, DATA + 32],
            // E, PAC=0b11, LSC=0b11, BAS=0xff, MASK=5 (32 bytes)
            ..scenario(
                "watch_mask",
                at_start(WATCH_MASK),
                watch(0x0500_1fff, DATA),
                DisarmHw,
            )
        },
        Scenario {
            words: &[DATA, DATA + 8],
            // E, PAC=0b11, LSC=0b10 (store), BAS=0xff on the second doubleword
            ..scenario(
                "watch_pair",
                at_start(WATCH_PAIR),
                watch(0x1ff7, DATA + 8),
                DisarmHw,
            )
        },
        Scenario {
            regs: &[3, 4],
            // E, PAC=0b11, LSC=0b01 (load), BAS=0xff on the second doubleword
            ..scenario(
                "watch_ldp",
                at_start(WATCH_LDP),
                watch(0x1fef, DATA + 8),
                DisarmHw,
            )
        },
        Scenario {
            words: &[DATA],
            // E, PAC=0b11, LSC=0b10 (store), BAS=0b1000_0000 (byte 7 only)
            ..scenario(
                "watch_half",
                at_start(WATCH_HALF),
                watch(0x1017, DATA),
                DisarmHw,
            )
        },
        Scenario {
            regs: &[2, 10],
            ..scenario("step_svc", with_handler(SVC_SETUP), step(), Continue)
        },
        Scenario {
            regs: &[2, 10],
            ..scenario("guest_brk", with_handler(BRK_SETUP), none(), Continue)
        },
        Scenario {
            regs: &[2, 10],
            ..scenario(
                "guest_brk_reinjected",
                with_handler(BRK_SETUP),
                sw_bp(),
                Reinject,
            )
        },
        // Guest-owned debug: no VMM debug, the guest's own settings deliver the exceptions to
        // its vectors (Arm ARM D2).
        Scenario {
            regs: GUEST_DBG_REGS,
            words: &BP_LOG,
            ..scenario(
                "guest_hw_breakpoint",
                with_dbg_handler(GUEST_BP),
                none(),
                Continue,
            )
        },
        Scenario {
            regs: GUEST_DBG_REGS,
            words: &WATCH_LOG,
            ..scenario(
                "guest_watchpoint",
                with_dbg_handler(GUEST_WATCH),
                none(),
                Continue,
            )
        },
        Scenario {
            regs: GUEST_DBG_REGS,
            words: &STEP_LOG,
            ..scenario("guest_step", with_dbg_handler(GUEST_STEP), none(), Continue)
        },
        Scenario {
            regs: GUEST_DBG_REGS,
            words: &STEP_EL0_LOG,
            ..scenario(
                "guest_step_el0",
                with_dbg_handler(GUEST_STEP_EL0),
                none(),
                Continue,
            )
        },
        // The same programs while the VMM owns debug (KVM 6.1: MDCR_EL2.TDE routes every debug
        // exception to the VMM; with USE_HW the VMM's registers replace the guest's, without it
        // the guest's own are live; MDSCR_EL1.SS is the VMM's SINGLESTEP).
        Scenario {
            regs: GUEST_DBG_REGS,
            words: &BP_LOG,
            ..scenario(
                "guest_bp_vmm_hw",
                with_dbg_handler(GUEST_BP),
                hw_bp(RAM + BP_TARGETS_AT + 8),
                OwnOrReinject,
            )
        },
        Scenario {
            regs: GUEST_DBG_REGS,
            words: &BP_LOG_LONG,
            ..scenario(
                "guest_bp_vmm_swbp",
                with_dbg_handler(GUEST_BP),
                sw_bp(),
                Reinject,
            )
        },
        Scenario {
            regs: GUEST_DBG_REGS,
            words: &WATCH_LOG,
            ..scenario(
                "guest_watch_vmm_swbp",
                with_dbg_handler(GUEST_WATCH),
                sw_bp(),
                Reinject,
            )
        },
        Scenario {
            regs: GUEST_DBG_REGS,
            words: &STEP_VMM_LOG,
            ..scenario(
                "guest_step_vmm_step",
                with_dbg_handler(GUEST_STEP),
                step(),
                Continue,
            )
        },
        Scenario {
            regs: GUEST_DBG_REGS,
            words: &STEP_VMM_LOG,
            ..scenario(
                "guest_step_vmm_swbp",
                with_dbg_handler(GUEST_STEP),
                sw_bp(),
                Continue,
            )
        },
        // Interrupts: the virtual timer (INTID 27) due at once and an SGI, delivered through
        // the GICv3 (KVM's vGIC; the model's own), run freely and single-stepped.
        Scenario {
            regs: IRQ_REGS,
            ..scenario("irq_run", with_irq(IRQ_UNMASK), none(), Continue)
        },
        Scenario {
            regs: IRQ_REGS,
            ..scenario("irq_step_unmask", with_irq(IRQ_UNMASK), step(), Continue)
        },
        Scenario {
            regs: IRQ_REGS,
            ..scenario("irq_step_masked", with_irq(IRQ_MASKED), step(), Continue)
        },
        Scenario {
            regs: IRQ_REGS,
            ..scenario("irq_step_wfi", with_irq(IRQ_WFI), step(), Continue)
        },
        // SMCCC calls over SMC and HVC, answered in the kernel (never an exit); the SMC answers
        // depend on the host kernel (a per-version trace, see tests/kvm_conformance.rs).
        Scenario {
            regs: &[10, 11, 12, 13],
            ..scenario("smc_calls", at_start(SMC_CALLS), none(), Continue)
        },
        Scenario {
            regs: &[10, 11, 12, 13],
            ..scenario("step_smc_calls", at_start(SMC_CALLS), step(), Continue)
        },
    ]
}
