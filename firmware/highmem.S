// highmem: runs from a high virtual address, like a kernel. Maps RAM a second time in the
// upper (TTBR1) half of the address space at HIGH_OFFSET + physical address, jumps there and
// works through that alias (code, data and stack), checking every store through the high
// alias is seen through the low (identity) one. Something for gdb to read, break on and
// translate at virtual addresses that are not physical ones (`monitor translate`, `x/`).
//
// Translation regime (Arm ARM D8 "The AArch64 Virtual Memory System Architecture"), 4 KiB
// granule on both halves:
//   TTBR0: T0SZ = 32, 4 GiB identity map, level-1 start: device below RAM, RAM normal WB.
//   TTBR1: T1SZ = 25, 39-bit upper range [0xffff_ff80_0000_0000, 2^64), level-1 start (512
//          entries of 1 GiB): entry 1 maps VA 0xffff_ff80_4000_0000 to PA 0x4000_0000.

    .include "platform.inc"
    .include "macros.inc"

    .equ HIGH_OFFSET, 0xffffff8000000000    // VA - PA of the TTBR1 alias (2^64 - 2^39)
    .equ MAGIC, 0x1234abcd5678ef90          // stored through the high alias

    .section .rodata
    .global fw_name
fw_name:
    .asciz "highmem"

    .data
    .balign 8
    .global high_value
high_value:
    .quad   0                               // written through the high alias

    .text
    .global main
    .type main, %function
main:
    say     "highmem: RAM aliased at 0xffffff8040000000\n"
    mov     x0, #0xff00                     // MAIR_EL1: Attr0 = 0x00 Device-nGnRnE, Attr1 = 0xff Normal WB
    msr     mair_el1, x0                    // set memory attributes
    movz    x0, #0x3520                     // TCR_EL1 low half: T0SZ=32 | IRGN0=WB | ORGN0=WB | SH0=Inner | TG0=4K
    movk    x0, #0xb519, lsl #16            // high half: T1SZ=25 | IRGN1=WB (24) | ORGN1=WB (26) | SH1=Inner (29:28) | TG1=4K (31:30=0b10); IPS=4 GiB
    msr     tcr_el1, x0                     // set translation control
    adrp    x0, low_l1                      // identity level-1 table
    msr     ttbr0_el1, x0                   // lower half, ASID 0
    adrp    x0, high_l1                     // alias level-1 table
    msr     ttbr1_el1, x0                   // upper half
    isb                                     // the regime registers are in effect
    tlbi    vmalle1                         // drop stale EL1 translations
    dsb     nsh                             // wait for the invalidation
    isb                                     // synchronise the instruction stream
    mrs     x0, sctlr_el1                   // current system control
    orr     x0, x0, #(1 << 0)               // M: MMU on
    orr     x0, x0, #(1 << 2)               // C: data caching on
    orr     x0, x0, #(1 << 12)              // I: instruction caching on
    msr     sctlr_el1, x0                   // enable
    isb                                     // take effect before the next instruction
    ldr     x19, =HIGH_OFFSET               // x19 = VA - PA of the alias
    add     sp, sp, x19                     // the stack through the alias
    adr     x0, high_main                   // low address of the high part
    add     x0, x0, x19                     // its alias
    br      x0                              // continue up there
    .size main, . - main

// Runs at HIGH_OFFSET + its link address; x19 = HIGH_OFFSET.
    .global high_main
    .type high_main, %function
high_main:
    adr     x0, high_main                   // PC-relative: where we run
    ldr     x1, =high_main                  // link (physical) address
    sub     x0, x0, x1                      // the offset we run at
    expect  x0, HIGH_OFFSET, not-high
    say     "highmem: running at the high alias\n"
    bl      high_work                       // store and count through the alias
    expect  x0, 3, work-count
    adr     x2, high_value                  // high alias of the variable
    sub     x2, x2, x19                     // its identity (low) address
    ldr     x3, [x2]                        // read through the low alias
    expect  x3, MAGIC + 3, low-alias-value
    b       pass                            // "PASS highmem", power off
    .size high_main, . - high_main

// high_work: writes MAGIC to high_value through the high alias, then adds 1 three times
// (something to watch and step through). Returns x0 = 3. Clobbers x1-x3.
    .global high_work
    .type high_work, %function
high_work:
    adr     x1, high_value                  // high alias (we run there)
    ldr     x2, =MAGIC                      // the value
    str     x2, [x1]                        // store it
    mov     x0, #0                          // count = 0
1:  ldr     x3, [x1]                        // current value
    add     x3, x3, #1                      // + 1
    str     x3, [x1]                        // back
    add     x0, x0, #1                      // count + 1
    cmp     x0, #3                          // three times
    b.lo    1b                              // ...
    ret                                     // x0 = 3
    .size high_work, . - high_work

    .section .rodata.pagetable, "a"
    .balign 4096
low_l1:
    // Block descriptor bits (Arm ARM D8.3 "Translation table descriptor formats"):
    // [1:0]=0b01 block, [4:2] AttrIndx, [9:8] SH, [10] AF, [53] PXN, [54] UXN.
    .quad   0x0060000000000401              // 0x0000_0000: block | AttrIndx 0 (device) | AF | PXN | UXN
    .quad   0x0000000040000705              // 0x4000_0000: block | AttrIndx 1 (normal) | SH inner | AF
    .quad   0                               // 0x8000_0000: invalid
    .quad   0                               // 0xC000_0000: invalid
    .balign 4096
high_l1:
    .quad   0                               // 0xffff_ff80_0000_0000: invalid
    .quad   0x0000000040000705              // 0xffff_ff80_4000_0000: RAM block | AttrIndx 1 | SH inner | AF
    .fill   510, 8, 0                       // the rest: invalid
