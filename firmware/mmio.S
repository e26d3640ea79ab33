// mmio: MMIO loads and stores of every size and addressing form against the PL011, checking
// each value read back and each written-back base register. Under KVM most of these forms
// (pairs, writeback, sign-extension of wide results) arrive without a valid syndrome (ISV=0),
// so the VMM must decode the instruction itself.
//
// Only the PL011 behaviour listed in firmware/README.md ("PL011 access semantics") is relied
// on: 32-bit and narrower accesses at a register's own offset, 64-bit accesses at 8-aligned
// offsets acting as two 32-bit accesses (low word at the lower address), the RW registers
// IMSC/ILPR/IBRD/FBRD/LCR_H keeping values within the TRM field widths, and the ID registers.
// Values stay within the PL011 TRM (DDI 0183) widths and QEMU's masks (IBRD/FBRD <= 0x3f).
//
// Registers: x27 = UART base, x26 = UART base + 0xfe0 (PeriphID0), x25 = UART base + 0xff0
// (PCellID0), x19-x23 = original IMSC/ILPR/IBRD/FBRD/LCR_H, restored at the end.

    .include "platform.inc"
    .include "macros.inc"

    .section .rodata
    .global fw_name
fw_name:
    .asciz "mmio"

// ID register values (PL011 TRM 3.3.14-3.3.21; QEMU hw/char/pl011.c pl011_id_arm)
id_values:
    .byte   0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1

    .text
    .global main
    .type main, %function
main:
    say     "mmio: PL011 access test\n"
    movz    x27, #(UART_BASE >> 16), lsl #16 // x27 = PL011 base
    add     x26, x27, #UARTPERIPHID0        // x26 = PeriphID0 address
    add     x25, x27, #UARTPCELLID0         // x25 = PCellID0 address
    ldr     w19, [x27, #UARTIMSC]           // save IMSC
    ldr     w20, [x27, #UARTILPR]           // save ILPR
    ldr     w21, [x27, #UARTIBRD]           // save IBRD
    ldr     w22, [x27, #UARTFBRD]           // save FBRD
    ldr     w23, [x27, #UARTLCR_H]          // save LCR_H
    bl      id_registers_32
    bl      narrow_and_wide_loads
    bl      sign_extending_loads
    bl      rw_registers_32
    bl      narrow_stores
    bl      wide_stores
    bl      pairs
    bl      writeback_forms
    bl      register_offset_forms
    str     w19, [x27, #UARTIMSC]           // restore IMSC
    str     w20, [x27, #UARTILPR]           // restore ILPR
    str     w21, [x27, #UARTIBRD]           // restore IBRD
    str     w22, [x27, #UARTFBRD]           // restore FBRD
    str     w23, [x27, #UARTLCR_H]          // restore LCR_H
    b       pass                            // "PASS mmio", power off
    .size main, . - main

// The eight ID registers with 32-bit loads, register offset scaled by 4 (x26 + i*4).
id_registers_32:
    mov     x28, x30                        // keep the return address (say uses bl)
    adrp    x9, id_values                   // expected values
    add     x9, x9, :lo12:id_values         // ...
    mov     x10, #0                         // i = 0
1:  mov     x1, #-1                         // poison the destination
    ldr     w1, [x26, x10, lsl #2]          // 32-bit load of ID register i
    ldrb    w11, [x9, x10]                  // expected value (from RAM)
    cmp     x1, x11                         // equal, upper half zero?
    b.ne    2f                              // no: report
    add     x10, x10, #1                    // next register
    cmp     x10, #8                         // all eight?
    b.lo    1b                              // not yet
    say     "mmio: id registers (32-bit) ok\n"
    ret     x28                             // back to main
2:  orr     x1, x1, x10, lsl #56            // FAIL value: index in the top byte, value below
    adrp    x0, reason_id                   // FAIL reason
    add     x0, x0, :lo12:reason_id         // ...
    b       fail                            // verdict

// 8/16/64-bit loads of the ID registers (immediate offsets).
narrow_and_wide_loads:
    mov     x28, x30                        // keep the return address
    mov     x1, #-1                         // poison
    ldrb    w1, [x27, #(UARTPCELLID0 + 4)]  // 8-bit load of PCellID1
    expect  x1, 0xf0, ldrb-pcellid1
    mov     x1, #-1                         // poison
    ldrh    w1, [x27, #(UARTPCELLID0 + 12)] // 16-bit load of PCellID3
    expect  x1, 0xb1, ldrh-pcellid3
    mov     x1, #-1                         // poison
    ldr     x1, [x27, #UARTPCELLID0]        // 64-bit load: PCellID0 | PCellID1 << 32
    expect  x1, 0x000000f00000000d, ldr64-pcellid0
    ldr     x1, [x27, #UARTPERIPHID0]       // 64-bit load: PeriphID0 | PeriphID1 << 32
    expect  x1, 0x0000001000000011, ldr64-periphid0
    ldr     x1, [x27, #(UARTPERIPHID0 + 8)] // 64-bit load: PeriphID2 | PeriphID3 << 32
    expect  x1, 0x0000000000000014, ldr64-periphid2
    mov     x1, #-1                         // poison
    ldur    w1, [x25, #-4]                  // unscaled negative offset: PeriphID3 (0xfec)
    expect  x1, 0x00, ldur-periphid3
    say     "mmio: 8/16/64-bit loads ok\n"
    ret     x28                             // back to main

// ldrsb/ldrsh/ldrsw into W and X destinations.
sign_extending_loads:
    mov     x28, x30                        // keep the return address
    mov     x1, #-1                         // poison: a W load must clear bits 63:32
    ldrsb   w1, [x27, #(UARTPCELLID0 + 4)]  // PCellID1 = 0xf0 -> -16 as 32 bits
    expect  x1, 0x00000000fffffff0, ldrsb-w-pcellid1
    mov     x1, #0                          // poison the other way
    ldrsb   x1, [x27, #(UARTPCELLID0 + 4)]  // PCellID1 = 0xf0 -> -16 as 64 bits
    expect  x1, 0xfffffffffffffff0, ldrsb-x-pcellid1
    ldrsb   x1, [x27, #(UARTPCELLID0 + 12)] // PCellID3 = 0xb1 -> -79
    expect  x1, 0xffffffffffffffb1, ldrsb-x-pcellid3
    ldrsb   x1, [x27, #UARTPCELLID0]        // PCellID0 = 0x0d stays positive
    expect  x1, 0x0d, ldrsb-x-pcellid0
    mov     x1, #-1                         // poison
    ldrsh   w1, [x27, #(UARTPCELLID0 + 4)]  // 0x00f0 is positive as 16 bits
    expect  x1, 0xf0, ldrsh-w-pcellid1
    mov     x1, #-1                         // poison
    ldrsh   x1, [x27, #(UARTPCELLID0 + 12)] // 0x00b1 is positive as 16 bits
    expect  x1, 0xb1, ldrsh-x-pcellid3
    mov     x1, #-1                         // poison
    ldrsw   x1, [x27, #(UARTPCELLID0 + 4)]  // 0x000000f0 is positive as 32 bits
    expect  x1, 0xf0, ldrsw-pcellid1
    say     "mmio: sign-extending loads ok\n"
    ret     x28                             // back to main

// 32-bit stores and loads of the RW registers.
rw_registers_32:
    mov     x28, x30                        // keep the return address
    mov     w9, #0x2a5                      // IMSC test value (11-bit field)
    str     w9, [x27, #UARTIMSC]            // write IMSC
    mov     w9, #0x5c                       // ILPR test value (8-bit field)
    str     w9, [x27, #UARTILPR]            // write ILPR
    mov     w9, #0x2a                       // IBRD test value
    str     w9, [x27, #UARTIBRD]            // write IBRD
    mov     w9, #0x15                       // FBRD test value (6-bit field)
    str     w9, [x27, #UARTFBRD]            // write FBRD
    mov     w9, #0x70                       // LCR_H: WLEN=8 bits | FEN (BRK clear)
    str     w9, [x27, #UARTLCR_H]           // write LCR_H
    ldr     w1, [x27, #UARTIMSC]            // read IMSC back
    expect  x1, 0x2a5, imsc-32
    ldr     w1, [x27, #UARTILPR]            // read ILPR back
    expect  x1, 0x5c, ilpr-32
    ldr     w1, [x27, #UARTIBRD]            // read IBRD back
    expect  x1, 0x2a, ibrd-32
    ldr     w1, [x27, #UARTFBRD]            // read FBRD back
    expect  x1, 0x15, fbrd-32
    ldr     w1, [x27, #UARTLCR_H]           // read LCR_H back
    expect  x1, 0x70, lcrh-32
    say     "mmio: 32-bit register read/write ok\n"
    ret     x28                             // back to main

// 8/16-bit stores at a register's own offset replace the whole register (zero-extended).
narrow_stores:
    mov     x28, x30                        // keep the return address
    mov     w9, #0x7ff                      // all IMSC bits
    str     w9, [x27, #UARTIMSC]            // IMSC = 0x7ff
    mov     w9, #0x15a                      // only the low byte (0x5a) is stored
    strb    w9, [x27, #UARTIMSC]            // 8-bit store
    ldr     w1, [x27, #UARTIMSC]            // read back
    expect  x1, 0x5a, strb-imsc
    mov     w9, #0x7ff                      // all IMSC bits again
    str     w9, [x27, #UARTIMSC]            // IMSC = 0x7ff
    movz    w9, #0x0413                     // low half 0x0413 ...
    movk    w9, #0xffff, lsl #16            // ... high half must not be stored
    strh    w9, [x27, #UARTIMSC]            // 16-bit store
    ldr     w1, [x27, #UARTIMSC]            // read back
    expect  x1, 0x413, strh-imsc
    mov     x1, #-1                         // poison
    ldrh    w1, [x27, #UARTIMSC]            // 16-bit load of the same register
    expect  x1, 0x413, ldrh-imsc
    mov     x1, #-1                         // poison
    ldrb    w1, [x27, #UARTIMSC]            // 8-bit load: low byte
    expect  x1, 0x13, ldrb-imsc
    mov     w9, #0x3c                       // IBRD value
    strb    w9, [x27, #UARTIBRD]            // 8-bit store to IBRD
    ldr     w1, [x27, #UARTIBRD]            // read back
    expect  x1, 0x3c, strb-ibrd
    mov     w9, #0x0021                     // FBRD value
    strh    w9, [x27, #UARTFBRD]            // 16-bit store to FBRD
    ldrh    w1, [x27, #UARTFBRD]            // 16-bit read back
    expect  x1, 0x21, strh-fbrd
    say     "mmio: 8/16-bit stores ok\n"
    ret     x28                             // back to main

// 64-bit stores: the low word goes to the register at the address, the high word to the next.
wide_stores:
    mov     x28, x30                        // keep the return address
    movz    x9, #0x2b                       // FBRD = 0x2b (low word) ...
    movk    x9, #0x60, lsl #32              // ... LCR_H = 0x60 (high word)
    str     x9, [x27, #UARTFBRD]            // 64-bit store at 0x028
    ldr     w1, [x27, #UARTFBRD]            // FBRD alone
    expect  x1, 0x2b, str64-fbrd
    ldr     w1, [x27, #UARTLCR_H]           // LCR_H alone
    expect  x1, 0x60, str64-lcrh
    ldr     x1, [x27, #UARTFBRD]            // both again with one 64-bit load
    expect  x1, 0x000000600000002b, ldr64-fbrd-lcrh
    movz    x9, #0xa7                       // ILPR = 0xa7 (low word) ...
    movk    x9, #0x19, lsl #32              // ... IBRD = 0x19 (high word)
    str     x9, [x27, #UARTILPR]            // 64-bit store at 0x020
    ldr     w1, [x27, #UARTILPR]            // ILPR alone
    expect  x1, 0xa7, str64-ilpr
    ldr     w1, [x27, #UARTIBRD]            // IBRD alone
    expect  x1, 0x19, str64-ibrd
    say     "mmio: 64-bit stores ok\n"
    ret     x28                             // back to main

// ldp/stp of W and X registers, ldpsw.
pairs:
    mov     x28, x30                        // keep the return address
    mov     w9, #0x11                       // IBRD value
    mov     w10, #0x22                      // FBRD value
    stp     w9, w10, [x27, #UARTIBRD]       // 2 x 32-bit: IBRD, FBRD
    mov     x1, #-1                         // poison
    mov     x2, #-1                         // poison
    ldp     w1, w2, [x27, #UARTIBRD]        // read both back as a pair
    expect  x1, 0x11, ldpw-ibrd
    expect  x2, 0x22, ldpw-fbrd
    movz    x9, #0x3e                       // ILPR = 0x3e ...
    movk    x9, #0x07, lsl #32              // ... IBRD = 0x07
    movz    x10, #0x31                      // FBRD = 0x31 ...
    movk    x10, #0x62, lsl #32             // ... LCR_H = 0x62
    stp     x9, x10, [x27, #UARTILPR]       // 2 x 64-bit: ILPR, IBRD, FBRD, LCR_H
    ldr     w1, [x27, #UARTILPR]            // each register alone
    expect  x1, 0x3e, stpx-ilpr
    ldr     w1, [x27, #UARTIBRD]            // ...
    expect  x1, 0x07, stpx-ibrd
    ldr     w1, [x27, #UARTFBRD]            // ...
    expect  x1, 0x31, stpx-fbrd
    ldr     w1, [x27, #UARTLCR_H]           // ...
    expect  x1, 0x62, stpx-lcrh
    ldp     x1, x2, [x27, #UARTILPR]        // all four as a 64-bit pair
    expect  x1, 0x000000070000003e, ldpx-ilpr-ibrd
    expect  x2, 0x0000006200000031, ldpx-fbrd-lcrh
    ldp     x1, x2, [x25]                   // PCellID0..3 as a 64-bit pair
    expect  x1, 0x000000f00000000d, ldpx-pcellid0
    expect  x2, 0x000000b100000005, ldpx-pcellid2
    mov     x1, #-1                         // poison
    mov     x2, #-1                         // poison
    ldp     w1, w2, [x26, #8]               // PeriphID2, PeriphID3 as a 32-bit pair
    expect  x1, 0x14, ldpw-periphid2
    expect  x2, 0x00, ldpw-periphid3
    ldpsw   x1, x2, [x25, #4]               // PCellID1, PCellID2, sign-extended (positive)
    expect  x1, 0xf0, ldpsw-pcellid1
    expect  x2, 0x05, ldpsw-pcellid2
    say     "mmio: load/store pairs ok\n"
    ret     x28                             // back to main

// Pre-index ([Xn, #imm]!) and post-index ([Xn], #imm) forms: value and updated base.
writeback_forms:
    mov     x28, x30                        // keep the return address
    mov     x9, x27                         // base = UART
    mov     w10, #0x0d                      // IBRD value
    str     w10, [x9, #UARTIBRD]!           // pre-index 32-bit store: base += 0x24
    sub     x1, x9, x27                     // base offset now
    expect  x1, UARTIBRD, str-pre-base
    ldr     w1, [x27, #UARTIBRD]            // stored value
    expect  x1, 0x0d, str-pre-value
    mov     w10, #0x1e                      // IBRD value
    strh    w10, [x9], #8                   // post-index 16-bit store to IBRD (old base), base += 8
    sub     x1, x9, x27                     // base offset now (0x2c)
    expect  x1, UARTLCR_H, strh-post-base
    ldr     w1, [x27, #UARTIBRD]            // the post-index store went to IBRD (old base)
    expect  x1, 0x1e, strh-post-value
    mov     w10, #0x68                      // LCR_H value
    strb    w10, [x9], #-8                  // post-index 8-bit store to LCR_H, base -= 8
    sub     x1, x9, x27                     // base offset now (0x24)
    expect  x1, UARTIBRD, strb-post-base
    ldr     w1, [x27, #UARTLCR_H]           // stored value
    expect  x1, 0x68, strb-post-value
    mov     x1, #-1                         // poison
    ldr     w1, [x9, #(UARTLCR_H - UARTIBRD)]! // pre-index 32-bit load of LCR_H, base = 0x2c
    expect  x1, 0x68, ldr-pre-value
    sub     x1, x9, x27                     // base offset now
    expect  x1, UARTLCR_H, ldr-pre-base
    mov     x9, x26                         // base = PeriphID0
    ldrb    w1, [x9], #4                    // post-index 8-bit load: PeriphID0, base += 4
    expect  x1, 0x11, ldrb-post-value
    ldrh    w1, [x9], #4                    // post-index 16-bit load: PeriphID1, base += 4
    expect  x1, 0x10, ldrh-post-value
    sub     x1, x9, x26                     // base advanced by 8
    expect  x1, 8, ldr-post-base
    mov     x9, x25                         // base = PCellID0
    ldrsb   x1, [x9, #4]!                   // pre-index sign-extending load of PCellID1
    expect  x1, 0xfffffffffffffff0, ldrsb-pre-value
    sub     x1, x9, x25                     // base advanced by 4
    expect  x1, 4, ldrsb-pre-base
    ldr     x1, [x9, #-4]!                  // pre-index 64-bit load at PCellID0, base -= 4
    expect  x1, 0x000000f00000000d, ldr64-pre-value
    expect  x9, UART_BASE + UARTPCELLID0, ldr64-pre-base
    ldp     x1, x2, [x9], #-16              // post-index 64-bit pair at PCellID0, base -= 16
    expect  x1, 0x000000f00000000d, ldpx-post-value0
    expect  x2, 0x000000b100000005, ldpx-post-value1
    expect  x9, UART_BASE + UARTPERIPHID0, ldpx-post-base
    ldp     w1, w2, [x9, #8]!               // pre-index 32-bit pair: PeriphID2, PeriphID3
    expect  x1, 0x14, ldpw-pre-value0
    expect  x2, 0x00, ldpw-pre-value1
    expect  x9, UART_BASE + UARTPERIPHID0 + 8, ldpw-pre-base
    add     x9, x27, #UARTIBRD              // base = IBRD
    mov     w10, #0x33                      // IBRD value
    mov     w11, #0x0c                      // FBRD value
    stp     w10, w11, [x9], #8              // post-index 32-bit pair store, base += 8
    expect  x9, UART_BASE + UARTLCR_H, stpw-post-base
    ldp     w1, w2, [x27, #UARTIBRD]        // stored values
    expect  x1, 0x33, stpw-post-value0
    expect  x2, 0x0c, stpw-post-value1
    mov     x9, x27                         // base = UART
    movz    x10, #0x44                      // ILPR = 0x44 ...
    movk    x10, #0x3a, lsl #32             // ... IBRD = 0x3a
    movz    x11, #0x01                      // FBRD = 0x01 ...
    movk    x11, #0x74, lsl #32             // ... LCR_H = 0x74
    stp     x10, x11, [x9, #UARTILPR]!      // pre-index 64-bit pair store, base += 0x20
    expect  x9, UART_BASE + UARTILPR, stpx-pre-base
    ldp     x1, x2, [x27, #UARTILPR]        // stored values
    expect  x1, 0x0000003a00000044, stpx-pre-value0
    expect  x2, 0x0000007400000001, stpx-pre-value1
    say     "mmio: pre/post-index writeback ok\n"
    ret     x28                             // back to main

// Register-offset forms: [Xn, Xm], [Xn, Xm, LSL #s], [Xn, Wm, UXTW], [Xn, Wm, SXTW #s].
register_offset_forms:
    mov     x28, x30                        // keep the return address
    mov     x9, #(UARTPERIPHID0 + 8)        // offset of PeriphID2
    mov     x1, #-1                         // poison
    ldr     w1, [x27, x9]                   // 32-bit load, unscaled register offset
    expect  x1, 0x14, ldr-regoff
    mov     x9, #3                          // index of PCellID3
    ldr     w1, [x25, x9, lsl #2]           // 32-bit load, offset scaled by 4
    expect  x1, 0xb1, ldr-regoff-lsl2
    mov     w9, #4                          // byte offset of PCellID1
    ldrb    w1, [x25, w9, uxtw]             // 8-bit load, zero-extended 32-bit offset
    expect  x1, 0xf0, ldrb-regoff-uxtw
    mov     x9, #2                          // halfword index of PCellID1 (0xff4 = 0xff0 + 2*2)
    ldrsh   x1, [x25, x9, lsl #1]           // 16-bit sign-extending load, offset scaled by 2
    expect  x1, 0xf0, ldrsh-regoff-lsl1
    mov     x9, #(UARTPCELLID0 / 8)         // doubleword index of PCellID0
    ldr     x1, [x27, x9, lsl #3]           // 64-bit load, offset scaled by 8
    expect  x1, 0x000000f00000000d, ldr64-regoff-lsl3
    add     x10, x25, #8                    // base = PCellID2
    mov     w9, #-4                         // -4 as a 32-bit index: PCellID1
    mov     x1, #-1                         // poison
    ldrsb   w1, [x10, w9, sxtw]             // 8-bit sign-extending load, sign-extended offset
    expect  x1, 0x00000000fffffff0, ldrsb-regoff-sxtw
    add     x10, x27, #0x40                 // base = UART + 0x40
    mov     w9, #-2                         // -2 words from 0x40 = 0x38 (IMSC)
    mov     w11, #0x1c3                     // IMSC value
    str     w11, [x10, w9, sxtw #2]         // 32-bit store, sign-extended index scaled by 4
    ldr     w1, [x27, #UARTIMSC]            // stored value
    expect  x1, 0x1c3, str-regoff-sxtw
    mov     x9, #UARTFBRD                   // offset of FBRD
    mov     w11, #0x2f                      // FBRD value
    strb    w11, [x27, x9]                  // 8-bit store, unscaled register offset
    ldr     w1, [x27, #UARTFBRD]            // stored value
    expect  x1, 0x2f, strb-regoff
    mov     x9, #(UARTIBRD / 2)             // halfword index of IBRD
    mov     w11, #0x36                      // IBRD value
    strh    w11, [x27, x9, lsl #1]          // 16-bit store, offset scaled by 2
    ldr     w1, [x27, #UARTIBRD]            // stored value
    expect  x1, 0x36, strh-regoff-lsl1
    mov     x9, #(UARTFBRD / 8)             // doubleword index of FBRD
    movz    x11, #0x0b                      // FBRD = 0x0b ...
    movk    x11, #0x72, lsl #32             // ... LCR_H = 0x72
    str     x11, [x27, x9, lsl #3]          // 64-bit store, offset scaled by 8
    ldr     x1, [x27, #UARTFBRD]            // stored values
    expect  x1, 0x000000720000000b, str64-regoff-lsl3
    say     "mmio: register-offset forms ok\n"
    ret     x28                             // back to main

    .section .rodata
reason_id:
    .asciz "id-register"
