// exceptions: synchronous exceptions taken to and returned from the guest's own EL1 handler.
// Installs `exc_vectors` in VBAR_EL1, then takes
//   svc #0x42  ESR = EC 0x15 | IL | ISS 0x42, ELR = the instruction after the svc
//   brk #0x7   ESR = EC 0x3c | IL | ISS 0x7,  ELR = the brk itself (handler adds 4)
//   udf #0     ESR = EC 0x00 | IL,            ELR = the udf itself (handler adds 4)
// each from a different PSTATE (NZCV, and DAIF for the brk) and checks ESR_EL1, ELR_EL1,
// SPSR_EL1 (fields NZCV, DAIF, M), that ERET restored NZCV/DAIF, and that x0-x5 survived.
// Then ERET to EL0 (MMU off: EL0 may run the image), where
//   svc #0x43  ESR = EC 0x15 | IL | ISS 0x43, ELR = after the svc, SPSR.M = EL0t
// is taken through the lower-EL vector (0x400); the handler ends the EL0 excursion by
// returning to EL1h at el0_back.
// Syndrome values: Arm ARM DDI 0487, ESR_EL1 (EC encodings, ISS for SVC/BRK); preferred return
// addresses: Arm ARM D1.10 ("Exception entry": SVC returns past itself, BRK/UNDEFINED to the
// instruction).

    .include "platform.inc"
    .include "macros.inc"

    .equ SPSR_CHECKED,  0xf00003df          // NZCV (31:28), DAIF (9:6), M[4:0]
    .equ ESR_SVC_42,    (EC_SVC64 << ESR_EC_SHIFT) | ESR_IL | 0x42   // 0x56000042
    .equ ESR_BRK_7,     (EC_BRK64 << ESR_EC_SHIFT) | ESR_IL | 0x7    // 0xf2000007
    .equ ESR_UDF,       (EC_UNKNOWN << ESR_EC_SHIFT) | ESR_IL        // 0x02000000
    .equ ESR_SVC_43,    (EC_SVC64 << ESR_EC_SHIFT) | ESR_IL | 0x43   // 0x56000043
    .equ SPSR_TO_EL0,   0x600003c0          // Z, C set; D, A, I, F set; M = EL0t (0b0000)
    .equ SPSR_M_EL_SP,  0xf                 // SPSR M[3:0]: 0 = EL0t
    .equ SPSR_EL1H_DAIF, 0x3c5              // EL1h with D, A, I, F set
    .equ MAX_TRAPS,     8                   // more traps than this means a handler loop

    .section .rodata
    .global fw_name
fw_name:
    .asciz "exceptions"

// What the handler saw in its last trap.
    .bss
    .balign 8
trap_count: .quad 0
trap_esr:   .quad 0
trap_elr:   .quad 0
trap_spsr:  .quad 0

    .text
// ---- Vector table: only "current EL with SP_ELx, synchronous" (offset 0x200) and "lower EL
// using AArch64, synchronous" (0x400) are expected; every other entry hands over to the
// matching default entry, which reports it and fails. ----
    .macro forward_entry offset
    .balign 0x80
    b       default_vectors + \offset       // unexpected: report via the default table
    .endm

    .balign 0x800
exc_vectors:
    .irp off, 0x000, 0x080, 0x100, 0x180
    forward_entry \off
    .endr
    .balign 0x80
    b       sync_handler                    // 0x200: current EL, SP_ELx, synchronous
    .irp off, 0x280, 0x300, 0x380
    forward_entry \off
    .endr
    .balign 0x80
    b       sync_handler                    // 0x400: lower EL, AArch64, synchronous
    .irp off, 0x480, 0x500, 0x580, 0x600, 0x680, 0x700, 0x780
    forward_entry \off
    .endr

// Records ESR/ELR/SPSR, skips BRK and UDF (ELR += 4), leaves SVC's ELR alone, returns with
// ERET; an SVC from EL0 returns to EL1h at el0_back instead. Preserves every general-purpose
// register.
sync_handler:
    stp     x0, x1, [sp, #-48]!             // save the registers used here
    stp     x2, x3, [sp, #16]               // ...
    stp     x4, x5, [sp, #32]               // ...
    mrs     x0, esr_el1                     // syndrome
    mrs     x1, elr_el1                     // return address
    mrs     x2, spsr_el1                    // interrupted PSTATE
    adrp    x3, trap_count                  // trap record
    add     x3, x3, :lo12:trap_count        // ...
    ldr     x4, [x3]                        // count so far
    add     x4, x4, #1                      // one more
    str     x4, [x3]                        // trap_count
    stp     x0, x1, [x3, #8]                // trap_esr, trap_elr
    str     x2, [x3, #24]                   // trap_spsr
    cmp     x4, #MAX_TRAPS                  // runaway (a handler that never advances)?
    b.hi    runaway                         // yes: fail
    ubfx    x5, x0, #ESR_EC_SHIFT, #6       // EC
    cmp     x5, #EC_SVC64                   // SVC: ELR already points past it
    b.eq    3f                              // return as is, unless from EL0
    cmp     x5, #EC_BRK64                   // BRK: ELR points at it
    b.eq    2f                              // skip it
    cbz     x5, 2f                          // unknown (UDF): skip it too
    mov     x1, x0                          // anything else: FAIL value = ESR
    adrp    x0, reason_ec                   // FAIL reason
    add     x0, x0, :lo12:reason_ec         // ...
    b       fail                            // verdict
3:  tst     x2, #SPSR_M_EL_SP               // SPSR.M[3:0] = 0: the SVC came from EL0t
    b.ne    1f                              // from EL1: return past it
    adr     x1, el0_back                    // from EL0: the excursion ends at el0_back
    msr     elr_el1, x1                     // return address
    mov     x1, #SPSR_EL1H_DAIF             // in EL1h, interrupts masked
    msr     spsr_el1, x1                    // return state
    b       1f                              // restore and return
2:  add     x1, x1, #4                      // step over the 4-byte instruction
    msr     elr_el1, x1                     // new return address
1:  ldp     x4, x5, [sp, #32]               // restore
    ldp     x2, x3, [sp, #16]               // ...
    ldp     x0, x1, [sp], #48               // ...
    eret                                    // back, PSTATE from SPSR_EL1
runaway:
    mov     x1, x0                          // FAIL value = last ESR
    adrp    x0, reason_runaway              // FAIL reason
    add     x0, x0, :lo12:reason_runaway    // ...
    b       fail                            // verdict

// set_sentinels: x0..x5 = 0x5e00..0x5e05 (checked after each trap). Clobbers only x0-x5.
set_sentinels:
    mov     x0, #0x5e00                     // sentinel 0
    mov     x1, #0x5e01                     // sentinel 1
    mov     x2, #0x5e02                     // sentinel 2
    mov     x3, #0x5e03                     // sentinel 3
    mov     x4, #0x5e04                     // sentinel 4
    mov     x5, #0x5e05                     // sentinel 5
    ret                                     // done

    .macro check_sentinels what
    expect  x0, 0x5e00, \what-x0
    expect  x1, 0x5e01, \what-x1
    expect  x2, 0x5e02, \what-x2
    expect  x3, 0x5e03, \what-x3
    expect  x4, 0x5e04, \what-x4
    expect  x5, 0x5e05, \what-x5
    .endm

// check_trap COUNT, ESR, ELR, SPSR, WHAT: compare the trap record with the expectation.
    .macro check_trap count, esr, elr, spsr, what
    adrp    x9, trap_count                  // trap record
    add     x9, x9, :lo12:trap_count        // ...
    ldr     x10, [x9]                       // trap_count
    expect  x10, \count, \what-count
    ldr     x10, [x9, #8]                   // trap_esr
    expect  x10, \esr, \what-esr
    ldr     x10, [x9, #16]                  // trap_elr
    expect  x10, \elr, \what-elr
    ldr     x10, [x9, #24]                  // trap_spsr
    ldr     x11, =SPSR_CHECKED              // fields that must match
    and     x10, x10, x11                   // keep them
    expect  x10, \spsr, \what-spsr
    .endm

    .global main
    .type main, %function
main:
    say     "exceptions: installing vector table\n"
    adrp    x9, exc_vectors                 // 2 KiB-aligned table
    add     x9, x9, :lo12:exc_vectors       // ...
    msr     vbar_el1, x9                    // install it
    isb                                     // in effect from here

    say     "exceptions: svc #0x42\n"
    mov     x9, #0xa0000000                 // N and C set
    msr     nzcv, x9                        // flags before the trap
    bl      set_sentinels                   // x0-x5 known
svc_insn:
    svc     #0x42                           // trap: EC 0x15, ISS 0x42
svc_return:
    mrs     x12, nzcv                       // flags after ERET (from SPSR)
    check_sentinels svc
    expect  x12, 0xa0000000, svc-nzcv-after
    check_trap 1, ESR_SVC_42, svc_return, 0xa00003c5, svc

    say     "exceptions: brk #0x7\n"
    msr     daifclr, #3                     // unmask IRQ and FIQ (none is pending)
    mov     x9, #0x50000000                 // Z and V set
    msr     nzcv, x9                        // flags before the trap
    bl      set_sentinels                   // x0-x5 known
brk_insn:
    brk     #0x7                            // trap: EC 0x3c, ISS 0x7
    mrs     x12, nzcv                       // flags after ERET
    mrs     x13, daif                       // mask bits after ERET
    msr     daifset, #3                     // mask IRQ and FIQ again
    check_sentinels brk
    expect  x12, 0x50000000, brk-nzcv-after
    expect  x13, 0x300, brk-daif-after
    check_trap 2, ESR_BRK_7, brk_insn, 0x50000305, brk

    say     "exceptions: udf #0\n"
    mov     x9, #0x30000000                 // C and V set
    msr     nzcv, x9                        // flags before the trap
    bl      set_sentinels                   // x0-x5 known
udf_insn:
    udf     #0                              // permanently undefined: EC 0x00
    mrs     x12, nzcv                       // flags after ERET
    check_sentinels udf
    expect  x12, 0x30000000, udf-nzcv-after
    check_trap 3, ESR_UDF, udf_insn, 0x300003c5, udf

    say     "exceptions: svc, brk, udf handled\n"

    say     "exceptions: svc #0x43 from el0\n"
    adr     x9, el0_code                    // EL0 entry point
    msr     elr_el1, x9                     // ERET target
    ldr     x9, =SPSR_TO_EL0                // EL0t, flags Z and C, DAIF masked
    msr     spsr_el1, x9                    // ERET state
    eret                                    // to EL0
    .global el0_back
el0_back:                                   // back in EL1h from the handler
    check_trap 4, ESR_SVC_43, el0_svc_return, SPSR_TO_EL0, el0-svc
    say     "exceptions: svc from el0 handled\n"
    b       pass                            // "PASS exceptions", power off
    .size main, . - main

// Runs at EL0: one SVC; the handler returns to EL1 (el0_back), never here.
    .global el0_code
el0_code:
    .global el0_svc_insn
el0_svc_insn:
    svc     #0x43                           // trap from EL0: EC 0x15, ISS 0x43
    .global el0_svc_return
el0_svc_return:
    b       .                               // not reached

    .section .rodata
reason_ec:
    .asciz "unexpected-ec"
reason_runaway:
    .asciz "runaway-traps"
