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
