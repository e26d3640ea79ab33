/// step_mmio
pub const STEP_MMIO: &[u32] = &[
    0xd2a1_2001, // +0x00 movz x1, #0x900, lsl #16 // MMIO address
    0x5280_0820, // +0x04 mov w0, #0x41
    0x5280_0022, // +0x08 mov w2, #1
    0x1100_0442, // +0x0c add w2, w2, #1
    0xb900_0020, // +0x10 str w0, [x1] // MMIO write
    0x1100_0442, // +0x14 add w2, w2, #1
    0x1100_0442, // +0x18 add w2, w2, #1
    0xb940_002c, // +0x1c ldr w12, [x1] // MMIO read
    0xd538_0503, // +0x20 mrs x3, id_aa64dfr0_el1 // trapped and emulated by KVM
    0x5280_0000, // +0x24 mov w0, #0
    0x72b0_8000, // +0x28 movk w0, #0x8400, lsl #16 // PSCI_VERSION
    0xd400_0002, // +0x2c hvc #0 // handled in the kernel
];

/// mmio_sizes
pub const MMIO_SIZES: &[u32] = &[
    0xd2a1_2001, // +0x00 movz x1, #0x900, lsl #16 // MMIO address
    0xd288_2840, // +0x04 mov x0, #0x4142
    0x3900_0020, // +0x08 strb w0, [x1] // 1-byte store
    0x7900_0020, // +0x0c strh w0, [x1] // 2-byte store
    0xb900_0020, // +0x10 str w0, [x1] // 4-byte store
    0xf900_0020, // +0x14 str x0, [x1] // 8-byte store
    0x3940_0025, // +0x18 ldrb w5, [x1] // 1-byte load
    0x7940_0026, // +0x1c ldrh w6, [x1] // 2-byte load
    0xb940_0027, // +0x20 ldr w7, [x1] // 4-byte load
    0xf940_0028, // +0x24 ldr x8, [x1] // 8-byte load
    0x7980_0029, // +0x28 ldrsh x9, [x1] // sign-extending load into X
];

/// nisv
pub const NISV: &[u32] = &[
    0xd2a1_2001, // +0x00 movz x1, #0x900, lsl #16 // MMIO address
    0xd280_0820, // +0x04 mov x0, #0x41
    0xa900_0020, // +0x08 stp x0, x0, [x1] // pair: no valid syndrome
    0x1100_0442, // +0x0c add w2, w2, #1
    0x1100_0442, // +0x10 add w2, w2, #1
    0xa940_2428, // +0x14 ldp x8, x9, [x1] // pair load
    0xb800_4420, // +0x18 str w0, [x1], #4 // post-index writeback
    0x1100_0442, // +0x1c add w2, w2, #1
];

/// brk
pub const BRK: &[u32] = &[
    0xd503_201f, // +0x00 nop
    0xd503_201f, // +0x04 nop
    0xd420_0000, // +0x08 brk #0 // software breakpoint
    0xd503_201f, // +0x0c nop
];

/// hw_nops
pub const HW_NOPS: &[u32] = &[
    0xd503_201f, // +0x00 nop
    0xd503_201f, // +0x04 nop
    0xd503_201f, // +0x08 nop // breakpoint here (+0x08)
    0xd503_201f, // +0x0c nop
];

/// watch_store
pub const WATCH_STORE: &[u32] = &[
    0xd2a8_0201, // +0x00 movz x1, #0x4010, lsl #16 // DATA
    0xd280_0aa0, // +0x04 mov x0, #0x55
    0xb940_0022, // +0x08 ldr w2, [x1] // load: a store watchpoint ignores it
    0xb900_0020, // +0x0c str w0, [x1] // store: hits
    0x1100_0442, // +0x10 add w2, w2, #1
];

/// watch_bytes
pub const WATCH_BYTES: &[u32] = &[
    0xd2a8_0201, // +0x00 movz x1, #0x4010, lsl #16 // DATA
    0xd280_0cc0, // +0x04 mov x0, #0x66
    0x3900_0020, // +0x08 strb w0, [x1] // byte 0: not watched
    0x3900_0420, // +0x0c strb w0, [x1, #1] // byte 1: watched
];

/// watch_load
pub const WATCH_LOAD: &[u32] = &[
    0xd2a8_0201, // +0x00 movz x1, #0x4010, lsl #16 // DATA
    0xd280_0ee0, // +0x04 mov x0, #0x77
    0xb900_0020, // +0x08 str w0, [x1] // store: a load watchpoint ignores it
    0xb940_0022, // +0x0c ldr w2, [x1] // load: hits
];

/// watch_mask
pub const WATCH_MASK: &[u32] = &[
    0xd2a8_0201, // +0x00 movz x1, #0x4010, lsl #16 // DATA
    0xd280_1100, // +0x04 mov x0, #0x88
    0xf900_1020, // +0x08 str x0, [x1, #32] // outside the 32-byte range
    0xf900_0c20, // +0x0c str x0, [x1, #24] // inside: hits
];

/// svc_setup
pub const SVC_SETUP: &[u32] = &[
    0xd2a8_0001, // +0x00 movz x1, #0x4000, lsl #16 // RAM
    0x9120_0021, // +0x04 add x1, x1, #0x800 // vector table
    0xd518_c001, // +0x08 msr vbar_el1, x1
    0xd503_3fdf, // +0x0c isb
    0xd280_000a, // +0x10 mov x10, #0
    0xd400_0241, // +0x14 svc #0x12 // to VBAR + 0x200
    0x9100_0442, // +0x18 add x2, x2, #1 // resumes here
];

/// brk_setup
pub const BRK_SETUP: &[u32] = &[
    0xd2a8_0001, // +0x00 movz x1, #0x4000, lsl #16 // RAM
    0x9120_0021, // +0x04 add x1, x1, #0x800 // vector table
    0xd518_c001, // +0x08 msr vbar_el1, x1
    0xd503_3fdf, // +0x0c isb
    0xd420_00a0, // +0x10 brk #5 // the guest's own breakpoint: its handler skips it
    0x9100_0442, // +0x14 add x2, x2, #1
];

/// sync_handler
pub const SYNC_HANDLER: &[u32] = &[
    0xd538_520a, // +0x00 mrs x10, esr_el1 // syndrome
    0xd538_402b, // +0x04 mrs x11, elr_el1 // return address
    0xd35a_fd4c, // +0x08 lsr x12, x10, #26 // exception class
    0xf100_f19f, // +0x0c cmp x12, #0x3c // BRK64?
    0x5400_0041, // +0x10 b.ne 1f
    0x9100_116b, // +0x14 add x11, x11, #4 // skip the BRK
    0xd518_402b, // +0x18 1: msr elr_el1, x11
    0xd69f_03e0, // +0x1c eret
];

/// system_off
pub const SYSTEM_OFF: &[u32] = &[
    0x5280_0100, // +0x00 mov w0, #0x8
    0x72b0_8000, // +0x04 movk w0, #0x8400, lsl #16 // w0 = 0x84000008 SYSTEM_OFF
    0xd400_0002, // +0x08 hvc #0
];

/// gic_timer_setup: vectors, GICv3 (INTID 27 enabled, group 1 by default), PMR, group 1 on, and the
/// virtual timer due at once (CVAL 0); PSTATE.I stays set
pub const GIC_TIMER_SETUP: &[u32] = &[
    0xd2a8_0001, // +0x00 movz x1, #0x4000, lsl #16 // RAM
    0x9120_0021, // +0x04 add x1, x1, #0x800 // vector table
    0xd518_c001, // +0x08 msr vbar_el1, x1
    0xd280_0020, // +0x0c mov x0, #1
    0xd518_cca0, // +0x10 msr icc_sre_el1, x0 // SRE (RAO/WI)
    0xd503_3fdf, // +0x14 isb
    0xd2a1_0001, // +0x18 movz x1, #0x800, lsl #16 // GICD
    0x5280_0240, // +0x1c mov w0, #0x12 // ARE | EnableGrp1
    0xb900_0020, // +0x20 str w0, [x1] // GICD_CTLR: in-kernel MMIO
    0xd2a1_0161, // +0x24 movz x1, #0x80b, lsl #16 // SGI_base of redistributor 0
    0x52a1_0000, // +0x28 mov w0, #0x8000000 // INTID 27: the virtual timer
    0xb901_0020, // +0x2c str w0, [x1, #0x100] // GICR_ISENABLER0
    0xd280_1e00, // +0x30 mov x0, #0xf0
    0xd518_4600, // +0x34 msr icc_pmr_el1, x0 // priority mask
    0xd280_0020, // +0x38 mov x0, #1
    0xd518_cce0, // +0x3c msr icc_igrpen1_el1, x0 // group 1 interrupts on
    0xd51b_e35f, // +0x40 msr cntv_cval_el0, xzr // compare value 0: due at once
    0xd51b_e320, // +0x44 msr cntv_ctl_el0, x0 // ENABLE
    0xd503_3fdf, // +0x48 isb
    0xd280_0009, // +0x4c mov x9, #0 // interrupts taken
];

/// irq_unmask: unmask with the timer due, then an SGI to this vCPU with IRQs unmasked
pub const IRQ_UNMASK: &[u32] = &[
    0xd503_42ff, // +0x00 msr daifclr, #2 // unmask IRQs: the due timer interrupt is taken next
    0x9100_0442, // +0x04 add x2, x2, #1 // resumes here
    0xd2a0_6000, // +0x08 movz x0, #0x300, lsl #16 // SGI INTID 3 (bits 27:24)
    0xb240_0000, // +0x0c orr x0, x0, #1 // target list: Aff0 = 0 (this vCPU)
    0xd518_cba0, // +0x10 msr icc_sgi1r_el1, x0 // SGI 3 to this vCPU: taken at once
    0x9100_0442, // +0x14 add x2, x2, #1 // resumes here
    0xd538_c10d, // +0x18 mrs x13, isr_el1 // nothing pending any more
];

/// irq_masked: the timer interrupt pending while PSTATE.I is set
pub const IRQ_MASKED: &[u32] = &[
    0xd538_c10d, // +0x00 mrs x13, isr_el1 // I (bit 7): an IRQ is pending
    0x9100_0442, // +0x04 add x2, x2, #1 // no interrupt taken
    0x9100_0442, // +0x08 add x2, x2, #1 // no interrupt taken
];

/// irq_wfi: WFI with the timer interrupt pending and PSTATE.I set (no low-power state, so no trap:
/// it completes in the guest), then unmask
pub const IRQ_WFI: &[u32] = &[
    0xd503_207f, // +0x00 wfi // an interrupt is pending: completes at once
    0xd538_c10d, // +0x04 mrs x13, isr_el1 // I (bit 7): still pending
    0xd503_42ff, // +0x08 msr daifclr, #2 // unmask: taken next
    0x9100_0442, // +0x0c add x2, x2, #1 // resumes here
];

/// irq_handler: at VBAR_EL1 + 0x280 (current EL with SP_ELx, IRQ)
pub const IRQ_HANDLER: &[u32] = &[
    0xd538_cc0a, // +0x00 mrs x10, icc_iar1_el1 // acknowledge: INTID
    0xd51b_e33f, // +0x04 msr cntv_ctl_el0, xzr // timer off: its level drops
    0xd503_3fdf, // +0x08 isb
    0xd518_cc2a, // +0x0c msr icc_eoir1_el1, x10 // priority drop and deactivation
    0x9100_0529, // +0x10 add x9, x9, #1 // interrupts taken
    0xd538_402b, // +0x14 mrs x11, elr_el1 // where it interrupted
    0xd538_400c, // +0x18 mrs x12, spsr_el1 // the interrupted PSTATE
    0xd69f_03e0, // +0x1c eret
];

/// watch_pair: a 16-byte store pair whose second half is watched
pub const WATCH_PAIR: &[u32] = &[
    0xd2a8_0201, // +0x00 movz x1, #0x4010, lsl #16 // DATA
    0xd280_1320, // +0x04 mov x0, #0x99
    0xf900_043f, // +0x08 str xzr, [x1, #8] // second doubleword: hits
    0xa900_0020, // +0x0c stp x0, x0, [x1] // pair: the watched half is the second
    0x1100_0442, // +0x10 add w2, w2, #1
];

/// watch_ldp: a load pair whose second half is watched by a load watchpoint
pub const WATCH_LDP: &[u32] = &[
    0xd2a8_0201, // +0x00 movz x1, #0x4010, lsl #16 // DATA
    0xd280_0ee0, // +0x04 mov x0, #0x77
    0xf900_0420, // +0x08 str x0, [x1, #8] // store: a load watchpoint ignores it
    0xa940_1023, // +0x0c ldp x3, x4, [x1] // pair load: the second doubleword is watched
];

/// watch_half: a halfword store covering the one watched byte (byte 7)
pub const WATCH_HALF: &[u32] = &[
    0xd2a8_0201, // +0x00 movz x1, #0x4010, lsl #16 // DATA
    0xd295_79a0, // +0x04 mov x0, #0xabcd
    0x7900_0820, // +0x08 strh w0, [x1, #4] // bytes 4-5: not watched
    0x7900_0c20, // +0x0c strh w0, [x1, #6] // bytes 6-7: byte 7 is watched
];

/// smc_calls: SMCCC calls over both conduits (Arm DEN 0028). The SMC answers differ by host
/// kernel: 6.1 returns NOT_SUPPORTED for every SMC, 6.4+ handles an SMC with immediate 0 like
/// the HVC (PSCI and SMCCC calls answered in the kernel).
pub const SMC_CALLS: &[u32] = &[
    0x52b0_8000, // +0x00 movz w0, #0x8400, lsl #16 // PSCI_VERSION
    0xd400_0003, // +0x04 smc #0 // over the SMC conduit
    0xaa00_03ea, // +0x08 mov x10, x0
    0x52b0_0000, // +0x0c movz w0, #0x8000, lsl #16 // SMCCC_VERSION
    0xd400_0003, // +0x10 smc #0
    0xaa00_03eb, // +0x14 mov x11, x0
    0x52b0_8000, // +0x18 movz w0, #0x8400, lsl #16 // PSCI_VERSION
    0xd400_0023, // +0x1c smc #1 // nonzero immediate: reserved, NOT_SUPPORTED
    0xaa00_03ec, // +0x20 mov x12, x0
    0x52b0_8000, // +0x24 movz w0, #0x8400, lsl #16 // PSCI_VERSION
    0xd400_0002, // +0x28 hvc #0 // over the HVC conduit
    0xaa00_03ed, // +0x2c mov x13, x0
];
