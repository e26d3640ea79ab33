// mmu.S: `mmu_enable` turns on the EL1&0 stage-1 MMU with a flat (identity) map, so that
// RAM is Normal write-back cacheable memory (needed for load/store exclusives, see
// spinlock.S) and the device region stays Device-nGnRnE. Every CPU that calls it uses the same
// read-only table; the map is identity, so code keeps running at the same addresses.
//
// Translation regime (Arm ARM D8 "The AArch64 Virtual Memory System Architecture"):
//   4 KiB granule, TCR_EL1.T0SZ = 32 (4 GiB input range) so the walk starts at level 1 with a
//   4-entry table of 1 GiB blocks; TTBR1 walks disabled (EPD1).
//   [0x0000_0000, 0x4000_0000): Device-nGnRnE, execute-never  (UART, GIC, ... of QEMU virt)
//   [0x4000_0000, 0x8000_0000): Normal WB, Inner Shareable    (RAM)
//   above: unmapped (translation fault).

    .text
    .global mmu_enable
    .type mmu_enable, %function
// Clobbers x0.
mmu_enable:
    mov     x0, #0xff00                     // MAIR_EL1: Attr0 = 0x00 Device-nGnRnE, Attr1 = 0xff Normal WB RW-allocate
    msr     mair_el1, x0                    // set memory attributes
    movz    x0, #0x3520                     // TCR_EL1: T0SZ=32 | IRGN0=WB (bit 8) | ORGN0=WB (bit 10) | SH0=Inner (bits 13:12)
    movk    x0, #0x80, lsl #16              // | EPD1 (bit 23): no TTBR1 walks; TG0=4K, IPS=4 GiB (0)
    msr     tcr_el1, x0                     // set translation control
    adrp    x0, identity_l1                 // level-1 table (4 KiB aligned, so adrp is exact)
    msr     ttbr0_el1, x0                   // set the table base, ASID 0
    isb                                     // the new regime registers are in effect
    tlbi    vmalle1                         // drop any stale EL1 translations
    dsb     nsh                             // wait for the invalidation
    isb                                     // and synchronise the instruction stream
    mrs     x0, sctlr_el1                   // current system control
    orr     x0, x0, #(1 << 0)               // M: MMU on
    orr     x0, x0, #(1 << 2)               // C: data caching on
    orr     x0, x0, #(1 << 12)              // I: instruction caching on
    msr     sctlr_el1, x0                   // enable
    isb                                     // take effect before the next instruction
    ret                                     // identity map: same return address
    .size mmu_enable, . - mmu_enable

    .section .rodata.pagetable, "a"
    .balign 4096
identity_l1:
    // Block descriptor bits (Arm ARM D8.3 "Translation table descriptor formats"):
    // [1:0]=0b01 block, [4:2] AttrIndx, [9:8] SH, [10] AF, [53] PXN, [54] UXN.
    .quad   0x0060000000000401              // 0x0000_0000: block | AttrIndx 0 (device) | AF | PXN | UXN
    .quad   0x0000000040000705              // 0x4000_0000: block | AttrIndx 1 (normal) | SH inner | AF
    .quad   0                               // 0x8000_0000: invalid
    .quad   0                               // 0xC000_0000: invalid
