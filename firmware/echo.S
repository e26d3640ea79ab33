// echo: console input through the PL011's receive interrupt. Routes the UART's SPI (INTID
// 33) to this CPU through the GICv3 (distributor: ARE, EnableGrp1, group 1, priority,
// level-sensitive, IROUTER = affinity 0, enable; the first redistributor frame, CPU 0's on
// the virt board, woken; ICC_SRE_EL1.SRE, ICC_PMR_EL1, ICC_IGRPEN1_EL1) and unmasks
// UARTIMSC.RXIM|RTIM, keeping PSTATE.I set: WFI wakes on the pending interrupt, no handler
// runs. Then reads bytes until a newline, echoing each, waiting in WFI while the receive FIFO
// is empty, and prints "sum=<decimal sum of the bytes, newline included>" and "PASS echo".
// No timer is armed: under --icount every vCPU is then idle with nothing armed, and kvmdbg
// waits for host input and admits it at that clock (docs/architecture.md).
// Registers: GICv3 architecture specification (IHI 0069) chapter 12; UARTFR.RXFE bit 4,
// UARTIMSC RXIM bit 4 and RTIM bit 6 (PL011 TRM DDI 0183, 3.3.3 and 3.3.10).

    .include "platform.inc"
    .include "gic.inc"

    .section .rodata
    .global fw_name
fw_name:
    .asciz "echo"
msg_sum:
    .asciz "\nsum="

    .text
    .global main
    .type main, %function
main:
    mrs     x0, icc_sre_el1                 // system-register interface enable
    orr     x0, x0, #1                      // SRE = 1
    msr     icc_sre_el1, x0                 // ...
    isb                                     // in effect for the ICC accesses below
    ldr     x1, =GICD_BASE                  // distributor
    mov     w0, #(GICD_CTLR_ARE | GICD_CTLR_GRP1) // affinity routing, group 1 on
    str     w0, [x1, #GICD_CTLR]            // GICD_CTLR
1:  ldr     w0, [x1, #GICD_CTLR]            // register write pending?
    tbnz    w0, #31, 1b                     // RWP: wait for the write to take effect
    mov     w0, #(1 << (UART_INTID - 32))   // INTID 33 in the second word
    str     w0, [x1, #GICD_IGROUPR + 4]     // group 1 (the only other INTIDs there stay 0)
    mov     w0, #0xa0                       // a priority above the mask below
    strb    w0, [x1, #GICD_IPRIORITYR + UART_INTID] // one byte per INTID
    ldr     w0, [x1, #GICD_ICFGR + 8]       // INTIDs 32-47 (KVM resets SPIs edge-triggered)
    bic     w0, w0, #(2 << (2 * (UART_INTID - 32))) // INTID 33 level-sensitive, as the DTB says
    str     w0, [x1, #GICD_ICFGR + 8]       // ...
    mov     x0, #0                          // Aff3.Aff2.Aff1.Aff0 = 0.0.0.0, IRM = 0
    str     x0, [x1, #GICD_IROUTER + 8 * UART_INTID] // route to CPU 0
    mov     w0, #(1 << (UART_INTID - 32))   // enable INTID 33
    str     w0, [x1, #GICD_ISENABLER + 4]   // set-enable (0 bits have no effect)
    ldr     x1, =GICR_BASE                  // CPU 0's redistributor: the first frame
    ldr     w0, [x1, #GICR_WAKER]           // wake it
    bic     w0, w0, #GICR_WAKER_SLEEP       // ProcessorSleep = 0
    str     w0, [x1, #GICR_WAKER]           // ...
2:  ldr     w0, [x1, #GICR_WAKER]           // ChildrenAsleep still set?
    tbnz    w0, #2, 2b                      // wait until awake
    mov     x0, #0xff                       // priority mask: let every priority through
    msr     icc_pmr_el1, x0                 // ICC_PMR_EL1
    mov     x0, #1                          // group 1 interrupts on
    msr     icc_igrpen1_el1, x0             // ICC_IGRPEN1_EL1
    isb                                     // CPU interface set up
    movz    x20, #(UART_BASE >> 16), lsl #16 // x20 = PL011 base
    mov     w0, #0x50                       // RXIM | RTIM
    str     w0, [x20, #UARTIMSC]            // unmask receive interrupts (UART enabled)
    mov     x19, #0                         // running sum of the bytes
wait_byte:
    ldr     w0, [x20, #UARTFR]              // flag register
    tbz     w0, #4, got_byte                // RXFE clear: a byte is waiting
    wfi                                     // nothing yet: wait for the UART's interrupt
    b       wait_byte                       // and look again
    .global got_byte
got_byte:
    ldr     w0, [x20, #UARTDR]              // take the byte
    and     w0, w0, #0xff                   // data bits only
    add     x19, x19, x0                    // add it to the sum
    cmp     w0, #'\n'                       // end of the line?
    b.eq    report                          // yes: report
    bl      putc                            // echo it
    b       wait_byte                       // next byte
    .global report
report:
    adrp    x0, msg_sum                     // "\nsum="
    add     x0, x0, :lo12:msg_sum           // ...
    bl      puts                            // print it
    mov     x0, x19                         // the sum
    bl      putdec                          // in decimal
    mov     w0, #'\n'                       // end the line
    bl      putc                            // print it
    b       pass                            // "PASS echo" and power off
    .size main, . - main
