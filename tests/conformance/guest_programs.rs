//! Guest-owned debug programs: the guest programs its own breakpoints, watchpoints and
//! software step (MDSCR_EL1, DBGBCR/DBGBVR, DBGWCR/DBGWVR, OSLAR_EL1, SPSR_EL1.SS; Arm ARM D2,
//! D19.3) and takes the debug exceptions at its own vectors. Every exception goes through
//! `DBG_HANDLER`, which logs four doublewords per exception at x20 (ESR, ELR, FAR for
//! watchpoints else 0, SPSR), counts in x9 and returns as the class needs.
//!
//! Layout (offsets from RAM): the program at 0 (then SYSTEM_OFF), VBAR_EL1 = 0x800 with
//! `DBG_HANDLER` at 0xa00 (current EL with SP_ELx) and `LOWER_VECTOR` at 0xc00 (lower EL,
//! AArch64), `BP_TARGETS` at 0x1000. The log starts at DATA (0x4010_0000).

/// The one synchronous exception handler: logs, then breakpoints, watchpoints, BRK and UDF
/// return past the instruction; software steps return with SPSR_EL1.SS = 1 (step the next
/// instruction); `svc #0` returns after it; `svc #1` turns the guest's debug off (MDSCR_EL1 = 0)
/// and returns to x21 at EL1h with DAIF masked.
pub const DBG_HANDLER: &[u32] = &[
    0xd538_520a, // +0x00 mrs x10, esr_el1 // syndrome
    0xd538_402b, // +0x04 mrs x11, elr_el1 // return address
    0xd538_400d, // +0x08 mrs x13, spsr_el1 // interrupted PSTATE
    0xd280_000c, // +0x0c mov x12, #0 // FAR, logged for watchpoints only (UNKNOWN otherwise)
    0xd35a_fd4e, // +0x10 lsr x14, x10, #26 // exception class
    0x927f_11cf, // +0x14 and x15, x14, #0x3e // class without the same-EL bit
    0xf100_d1ff, // +0x18 cmp x15, #0x34 // watchpoint (0x34/0x35)?
    0x5400_0041, // +0x1c b.ne 1f // no: FAR not logged
    0xd538_600c, // +0x20 mrs x12, far_el1 // yes: the watched address
    0xa881_2e8a, // +0x24 stp x10, x11, [x20], #16 // log ESR, ELR
    0xa881_368c, // +0x28 stp x12, x13, [x20], #16 // log FAR, SPSR
    0x9100_0529, // +0x2c add x9, x9, #1 // exceptions taken
    0xf100_c9ff, // +0x30 cmp x15, #0x32 // software step (0x32/0x33)?
    0x5400_0140, // +0x34 b.eq 3f // yes: step the next instruction too
    0xf100_55df, // +0x38 cmp x14, #0x15 // SVC?
    0x5400_00c1, // +0x3c b.ne 2f // no: skip the instruction
    0x3600_012a, // +0x40 tbz w10, #0, 4f // svc #0: return after it (ELR is already there)
    0xd510_025f, // +0x44 msr mdscr_el1, xzr // svc #1: the guest's debug off (MDSCR_EL1 = 0)
    0xaa15_03eb, // +0x48 mov x11, x21 // and return to the EL1 continuation in x21
    0xd280_78ad, // +0x4c mov x13, #0x3c5 // as EL1h with DAIF masked
    0x1400_0004, // +0x50 b 5f // write SPSR and ELR
    0x9100_116b, // +0x54 add x11, x11, #4 // skip the instruction (breakpoint, watchpoint, BRK, UDF)
    0x1400_0003, // +0x58 b 4f // write ELR
    0xb26b_01ad, // +0x5c orr x13, x13, #0x200000 // SPSR.SS = 1: active-not-pending after the ERET
    0xd518_400d, // +0x60 msr spsr_el1, x13 // return PSTATE
    0xd518_402b, // +0x64 msr elr_el1, x11 // return address
    0xd69f_03e0, // +0x68 eret // back
];

/// VBAR_EL1 + 0x400 (synchronous, lower EL using AArch64): to the handler.
pub const LOWER_VECTOR: &[u32] = &[
    0x17ff_ff80, // +0x00 b .-0x200 // to the handler at VBAR_EL1 + 0x200
];

/// Two one-instruction subroutines at RAM + 0x1000: `target` (+0x00) and `target2` (+0x08).
pub const BP_TARGETS: &[u32] = &[
    0x9100_06d6, // +0x00 add x22, x22, #1 // target: breakpoint 0 (EL0 and EL1)
    0xd65f_03c0, // +0x04 ret // back
    0x9100_06f7, // +0x08 add x23, x23, #1 // target2: breakpoint 1 (EL1 only)
    0xd65f_03c0, // +0x0c ret // back
];

/// The guest's own hardware breakpoints: 0 on `target` (EL0 and EL1), 1 on `target2` (EL1
/// only), called with KDE = 0, with PSTATE.D = 1, enabled, under the OS lock, at EL0, and
/// after MDSCR_EL1 = 0.
pub const GUEST_BP: &[u32] = &[
    0xd2a8_0001, // +0x00 movz x1, #0x4000, lsl #16 // RAM
    0x9120_0021, // +0x04 add x1, x1, #0x800 // vector table
    0xd518_c001, // +0x08 msr vbar_el1, x1 // VBAR_EL1
    0xd2a8_0214, // +0x0c movz x20, #0x4010, lsl #16 // log pointer: DATA
    0xd280_0009, // +0x10 mov x9, #0 // exceptions taken
    0x9120_0020, // +0x14 add x0, x1, #0x800 // RAM + 0x1000: target
    0xd510_0080, // +0x18 msr dbgbvr0_el1, x0 // breakpoint 0 address
    0xd280_3ce0, // +0x1c mov x0, #0x1e7 // E, PMC=0b11 (EL0 and EL1), BAS=0b1111
    0xd510_00a0, // +0x20 msr dbgbcr0_el1, x0 // breakpoint 0 control
    0x9120_2020, // +0x24 add x0, x1, #0x808 // RAM + 0x1008: target2
    0xd510_0180, // +0x28 msr dbgbvr1_el1, x0 // breakpoint 1 address
    0xd280_3c60, // +0x2c mov x0, #0x1e3 // E, PMC=0b01 (EL1 only), BAS=0b1111
    0xd510_01a0, // +0x30 msr dbgbcr1_el1, x0 // breakpoint 1 control
    0xd290_0000, // +0x34 mov x0, #0x8000 // MDSCR_EL1.MDE, KDE = 0
    0xd510_0240, // +0x38 msr mdscr_el1, x0 // breakpoints on, not at EL1
    0xd503_3fdf, // +0x3c isb // synchronize
    0xd503_48ff, // +0x40 msr daifclr, #8 // PSTATE.D = 0
    0x9400_03ef, // +0x44 bl target // (1) target: KDE = 0, not taken
    0xd294_0000, // +0x48 mov x0, #0xa000 // MDSCR_EL1.MDE | KDE
    0xd510_0240, // +0x4c msr mdscr_el1, x0 // debug exceptions at EL1 ...
    0xd503_48df, // +0x50 msr daifset, #8 // ... but PSTATE.D = 1
    0xd503_3fdf, // +0x54 isb // synchronize
    0x9400_03ea, // +0x58 bl target // (2) target: D = 1, not taken
    0xd503_48ff, // +0x5c msr daifclr, #8 // PSTATE.D = 0: enabled at EL1
    0x9400_03e8, // +0x60 bl target // (3) target: EC 0x31, the handler skips the add
    0x9400_03e9, // +0x64 bl target2 // (4) target2 (EL1 only): EC 0x31
    0xd280_0020, // +0x68 mov x0, #1 // OSLK
    0xd510_1080, // +0x6c msr oslar_el1, x0 // OS lock on
    0xd503_3fdf, // +0x70 isb // synchronize
    0xd530_1184, // +0x74 mrs x4, oslsr_el1 // OSLM | OSLK: 0xa
    0x9400_03e2, // +0x78 bl target // (5) target: OS lock, not taken
    0xd510_109f, // +0x7c msr oslar_el1, xzr // OS lock off
    0xd503_3fdf, // +0x80 isb // synchronize
    0xd530_1185, // +0x84 mrs x5, oslsr_el1 // OSLM: 0x8
    0x9400_03de, // +0x88 bl target // (6) target: EC 0x31 again
    0x1000_0115, // +0x8c adr x21, 1f // where svc #1 returns to
    0x1000_0080, // +0x90 adr x0, 2f // the EL0 code
    0xd518_4020, // +0x94 msr elr_el1, x0 // ERET target
    0xd518_401f, // +0x98 msr spsr_el1, xzr // EL0t, DAIF clear
    0xd69f_03e0, // +0x9c eret // to EL0
    0x9400_03d8, // +0xa0 bl target // (7) target at EL0: EC 0x30
    0x9400_03d9, // +0xa4 bl target2 // (8) target2 at EL0: EL1 only, not taken
    0xd400_0021, // +0xa8 svc #1 // back to EL1 at 1f, MDSCR_EL1 = 0
    0x9400_03d5, // +0xac bl target // (9) target: MDSCR_EL1 = 0, not taken
];

/// The guest's own watchpoints: 0 on bytes 2-3 of WATCHED (stores), 1 on the 32 bytes at
/// RANGE (loads and stores, MASK = 5); accesses inside and outside, with PSTATE.D = 1, at EL0.
pub const GUEST_WATCH: &[u32] = &[
    0xd2a8_0001, // +0x00 movz x1, #0x4000, lsl #16 // RAM
    0x9120_0021, // +0x04 add x1, x1, #0x800 // vector table
    0xd518_c001, // +0x08 msr vbar_el1, x1 // VBAR_EL1
    0xd2a8_0214, // +0x0c movz x20, #0x4010, lsl #16 // log pointer: DATA
    0xd280_0009, // +0x10 mov x9, #0 // exceptions taken
    0x9120_0281, // +0x14 add x1, x20, #0x800 // x1 = DATA + 0x800 (WATCHED)
    0xd510_00c1, // +0x18 msr dbgwvr0_el1, x1 // watchpoint 0 address
    0xd280_32e0, // +0x1c mov x0, #0x197 // E, PAC=0b11, LSC=0b10 (stores), BAS=0b0000_1100 (bytes 2-3)
    0xd510_00e0, // +0x20 msr dbgwcr0_el1, x0 // watchpoint 0 control
    0x9124_0285, // +0x24 add x5, x20, #0x900 // x5 = DATA + 0x900 (RANGE)
    0xd510_01c5, // +0x28 msr dbgwvr1_el1, x5 // watchpoint 1 address
    0xd283_ffe0, // +0x2c movz x0, #0x1fff // E, PAC=0b11, LSC=0b11 (loads and stores), BAS=0xff ...
    0xf2a0_a000, // +0x30 movk x0, #0x500, lsl #16 // ... MASK=5: the 32 bytes at RANGE
    0xd510_01e0, // +0x34 msr dbgwcr1_el1, x0 // watchpoint 1 control
    0xd294_0000, // +0x38 mov x0, #0xa000 // MDSCR_EL1.MDE | KDE
    0xd510_0240, // +0x3c msr mdscr_el1, x0 // watchpoints on, at EL1 too
    0xd503_3fdf, // +0x40 isb // synchronize
    0xd503_48ff, // +0x44 msr daifclr, #8 // PSTATE.D = 0
    0xd280_0aa0, // +0x48 mov x0, #0x55 // value stored
    0xb900_0020, // +0x4c str w0, [x1] // bytes 0-3 (2-3 watched): EC 0x35, WnR; skipped
    0x3900_0420, // +0x50 strb w0, [x1, #1] // byte 1: not watched, written
    0xb940_0023, // +0x54 ldr w3, [x1] // load: a store watchpoint ignores it
    0x7900_0420, // +0x58 strh w0, [x1, #2] // bytes 2-3: EC 0x35; skipped
    0xf940_0ca6, // +0x5c ldr x6, [x5, #24] // load in the range: EC 0x35, WnR = 0; skipped
    0xa901_80a0, // +0x60 stp x0, x0, [x5, #24] // pair, first half in the range: EC 0x35; skipped
    0xf900_10a0, // +0x64 str x0, [x5, #32] // just past the range: written
    0xd503_48df, // +0x68 msr daifset, #8 // PSTATE.D = 1: masked at EL1
    0x7900_0420, // +0x6c strh w0, [x1, #2] // watched bytes, not taken: written
    0xd503_48ff, // +0x70 msr daifclr, #8 // PSTATE.D = 0
    0x1000_00f5, // +0x74 adr x21, 1f // where svc #1 returns to
    0x1000_0080, // +0x78 adr x0, 2f // the EL0 code
    0xd518_4020, // +0x7c msr elr_el1, x0 // ERET target
    0xd518_401f, // +0x80 msr spsr_el1, xzr // EL0t, DAIF clear
    0xd69f_03e0, // +0x84 eret // to EL0
    0xf900_00a0, // +0x88 str x0, [x5] // EL0 store in the range: EC 0x34; skipped
    0xd400_0021, // +0x8c svc #1 // back to EL1 at 1f, MDSCR_EL1 = 0
    0xf900_04a0, // +0x90 str x0, [x5, #8] // MDSCR_EL1 = 0: not taken, written
];

/// The guest single-steps its own EL1 code (MDSCR_EL1.KDE | SS, ERET with SPSR.SS = 1 and D
/// clear): an UNDEFINED instruction, a load-exclusive, SVC, MMIO, a KVM-trapped MRS, an
/// in-kernel HVC, then turns stepping off.
pub const GUEST_STEP: &[u32] = &[
    0xd530_0244, // +0x00 mrs x4, mdscr_el1 // the guest's own MDSCR_EL1: 0
    0xd2a8_0001, // +0x04 movz x1, #0x4000, lsl #16 // RAM
    0x9120_0021, // +0x08 add x1, x1, #0x800 // vector table
    0xd518_c001, // +0x0c msr vbar_el1, x1 // VBAR_EL1
    0xd2a8_0214, // +0x10 movz x20, #0x4010, lsl #16 // log pointer: DATA
    0xd280_0009, // +0x14 mov x9, #0 // exceptions taken
    0xd284_0020, // +0x18 mov x0, #0x2001 // MDSCR_EL1.KDE | SS
    0xd510_0240, // +0x1c msr mdscr_el1, x0 // software step at EL1
    0x1000_0100, // +0x20 adr x0, 1f // the stepped code
    0xd518_4020, // +0x24 msr elr_el1, x0 // ERET target
    0xd280_38a0, // +0x28 movz x0, #0x1c5 // SPSR: EL1h, A I F masked, D clear ...
    0xf2a0_0400, // +0x2c movk x0, #0x20, lsl #16 // ... SS = 1
    0xd518_4000, // +0x30 msr spsr_el1, x0 // return PSTATE
    0xd2a1_2001, // +0x34 movz x1, #0x900, lsl #16 // MMIO address
    0xd503_3fdf, // +0x38 isb // synchronize
    0xd69f_03e0, // +0x3c eret // PSTATE.SS = 1, D = 0: step the next instruction
    0x9100_06d6, // +0x40 add x22, x22, #1 // stepped: EC 0x33, ISV = 1
    0x0000_0000, // +0x44 udf #0 // UNDEFINED: SPSR.SS = 1; skipped, the next one stepped
    0xc85f_7e83, // +0x48 ldxr x3, [x20] // load-exclusive: ISV = 1, EX = 1
    0x9100_06d6, // +0x4c add x22, x22, #1 // stepped
    0xd400_0001, // +0x50 svc #0 // SPSR.SS = 0: the step ends after the ERET (ISV = 0)
    0x9100_06d6, // +0x54 add x22, x22, #1 // stepped
    0xb900_0020, // +0x58 str w0, [x1] // MMIO, completed outside the guest: ISV = 0
    0x9100_06d6, // +0x5c add x22, x22, #1 // stepped
    0xd538_0506, // +0x60 mrs x6, id_aa64dfr0_el1 // trapped and emulated by KVM: ISV = 0
    0x5280_0000, // +0x64 mov w0, #0 // PSCI_VERSION ...
    0x72b0_8000, // +0x68 movk w0, #0x8400, lsl #16 // ... 0x84000000
    0xd400_0002, // +0x6c hvc #0 // in-kernel PSCI: ISV = 0
    0x9100_06d6, // +0x70 add x22, x22, #1 // stepped
    0xd284_0000, // +0x74 mov x0, #0x2000 // MDSCR_EL1.KDE
    0xd510_0240, // +0x78 msr mdscr_el1, x0 // stepping off: no step exception after it
    0x9100_06d6, // +0x7c add x22, x22, #1 // not stepped
];

/// The guest single-steps EL0 code (MDSCR_EL1.SS, KDE = 0): SVC and BRK on the way, then
/// `svc #1` back to EL1.
pub const GUEST_STEP_EL0: &[u32] = &[
    0xd2a8_0001, // +0x00 movz x1, #0x4000, lsl #16 // RAM
    0x9120_0021, // +0x04 add x1, x1, #0x800 // vector table
    0xd518_c001, // +0x08 msr vbar_el1, x1 // VBAR_EL1
    0xd2a8_0214, // +0x0c movz x20, #0x4010, lsl #16 // log pointer: DATA
    0xd280_0009, // +0x10 mov x9, #0 // exceptions taken
    0xd280_0020, // +0x14 mov x0, #1 // MDSCR_EL1.SS (KDE = 0: EL1 is never stepped)
    0xd510_0240, // +0x18 msr mdscr_el1, x0 // software step
    0x1000_01d5, // +0x1c adr x21, 1f // where svc #1 returns to
    0x1000_00c0, // +0x20 adr x0, 2f // the EL0 code
    0xd518_4020, // +0x24 msr elr_el1, x0 // ERET target
    0xd2a0_0400, // +0x28 mov x0, #0x200000 // SPSR: EL0t, DAIF clear, SS = 1
    0xd518_4000, // +0x2c msr spsr_el1, x0 // return PSTATE
    0xd503_3fdf, // +0x30 isb // synchronize
    0xd69f_03e0, // +0x34 eret // to EL0, active-not-pending
    0x9100_06d6, // +0x38 add x22, x22, #1 // stepped: EC 0x32, ISV = 1
    0x9100_06d6, // +0x3c add x22, x22, #1 // stepped
    0xd400_0001, // +0x40 svc #0 // SPSR.SS = 0: the step ends after the ERET (ISV = 0)
    0x9100_06d6, // +0x44 add x22, x22, #1 // stepped
    0xd420_0060, // +0x48 brk #3 // BRK: SPSR.SS = 1; skipped, the next one stepped
    0x9100_06d6, // +0x4c add x22, x22, #1 // stepped
    0xd400_0021, // +0x50 svc #1 // back to EL1 at 1f, MDSCR_EL1 = 0
    0x9100_06d6, // +0x54 add x22, x22, #1 // EL1, not stepped
];
