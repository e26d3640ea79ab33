// timer: the virtual generic timer interrupting through the GICv3, as a bare-metal OS sets it
// up on QEMU virt (gic-version=3) or under KVM's vGICv3.
//
// 1. GIC: ICC_SRE_EL1.SRE = 1 (system-register interface), GICD_CTLR = ARE | EnableGrp1 (wait
//    for RWP = 0), this CPU's redistributor found by GICR_TYPER affinity, GICR_WAKER
//    ProcessorSleep cleared (wait for ChildrenAsleep = 0), INTID 27 (virtual timer PPI) made
//    group 1 with priority 0xa0 and enabled; ICC_PMR_EL1 = 0xff, ICC_BPR1_EL1 = 0 (the
//    minimum), ICC_IGRPEN1_EL1 = 1.
// 2. Masked: with PSTATE.I set, the timer is armed 1 ms ahead; CNTV_CTL_EL0.ISTATUS must rise,
//    GICR_ISPENDR0 must show INTID 27 pending and ICC_HPPIR1_EL1 name it, and no interrupt may
//    be taken until DAIFClr #2; right after it (and an ISB) exactly one has been taken (its
//    handler stops the timer), from EL1h with only I clear in SPSR_EL1.
// 3. Periodic: the timer is armed 1 ms ahead and the handler re-arms CNTV_TVAL_EL0 1 ms ahead
//    until TOTAL_IRQS interrupts were taken, then disables the timer. Main waits with WFI
//    *while PSTATE.I is set* (WFI wakes on a pending interrupt even when it is masked, Arm ARM
//    D1.6.2 "Wait for Interrupt"), then unmasks to take it. At least (TOTAL_IRQS - 1) periods
//    must have passed, the running priority must be idle (0xff) again and no spurious INTID
//    may have been seen.
// The handler acknowledges with ICC_IAR1_EL1 (must be 27), records ICC_RPR_EL1 (0xa0 while
// handling), re-arms or disables the timer (so the level-sensitive PPI drops) and ends with
// ICC_EOIR1_EL1 (EOImode 0: priority drop and deactivation). Nothing depends on how fast the
// guest runs between interrupts (slow UART output under KVM, a descheduled vCPU thread).
// Registers: GICv3 architecture specification (IHI 0069) chapter 12; timer: Arm ARM D11.

    .include "platform.inc"
    .include "gic.inc"
    .include "macros.inc"

    .equ TOTAL_IRQS,    6                   // one in step 2, five periodic ticks in step 3
    .equ TIMER_PRIO,    0xa0                // a priority every implementation keeps (5+ bits)
    .equ WAIT_SECONDS,  2                   // bound on every wait
    .equ MAX_REDIST,    8                   // redistributor frames searched (MAX_CPUS)
    .equ SPSR_CHECKED,  0x3df               // DAIF (9:6) and M[4:0]
    .equ SPSR_I_CLEAR,  0x345               // D, A, F set, I clear, EL1h

    .section .rodata
    .global fw_name
fw_name:
    .asciz "timer"

    .bss
    .balign 8
irq_count:      .quad 0                     // timer interrupts handled
spurious_count: .quad 0                     // ICC_IAR1_EL1 reads of 1023
irq_rpr:        .quad 0                     // ICC_RPR_EL1 in the last handler run
irq_spsr:       .quad 0                     // SPSR_EL1 of the first interrupt
period:         .quad 0                     // counter ticks per millisecond

    .text
// ---- Vector table: only "current EL with SP_ELx, IRQ" (0x280) is expected; every other entry
// hands over to the matching default entry, which reports it and fails. ----
    .macro forward_entry offset
    .balign 0x80
    b       default_vectors + \offset       // unexpected: report via the default table
    .endm

    .balign 0x800
timer_vectors:
    .irp off, 0x000, 0x080, 0x100, 0x180, 0x200
    forward_entry \off
    .endr
    .balign 0x80
    b       irq_handler                     // 0x280: current EL, SP_ELx, IRQ
    .irp off, 0x300, 0x380, 0x400, 0x480, 0x500, 0x580, 0x600, 0x680, 0x700, 0x780
    forward_entry \off
    .endr

// irq_handler: acknowledge, count, re-arm or stop the timer, end of interrupt. Preserves every
// general-purpose register (NZCV comes back from SPSR_EL1 with ERET).
irq_handler:
    stp     x0, x1, [sp, #-32]!             // save the registers used here
    stp     x2, x3, [sp, #16]               // ...
    mrs     x0, icc_iar1_el1                // acknowledge: x0 = INTID
    cmp     x0, #GIC_SPURIOUS               // nothing pending after all?
    b.eq    irq_spurious                    // count it, no EOI for 1023
    cmp     x0, #VTIMER_INTID               // the virtual timer?
    b.ne    irq_bad_intid                   // no: fail
    adrp    x2, irq_count                   // handler record
    add     x2, x2, :lo12:irq_count         // ...
    mrs     x1, icc_rpr_el1                 // running priority while handling
    str     x1, [x2, #16]                   // irq_rpr
    ldr     x1, [x2]                        // interrupts so far
    cbnz    x1, 1f                          // the first one: keep its SPSR
    mrs     x3, spsr_el1                    // interrupted PSTATE
    str     x3, [x2, #24]                   // irq_spsr
1:  add     x1, x1, #1                      // one more
    str     x1, [x2]                        // irq_count
    cmp     x1, #TOTAL_IRQS                 // all done?
    b.hs    2f                              // yes: stop the timer
    cmp     x1, #1                          // the one of step 2?
    b.eq    2f                              // stop the timer: step 3 arms it again
    ldr     x3, [x2, #32]                   // period (1 ms of counter ticks)
    msr     cntv_tval_el0, x3               // next tick 1 ms from now (ISTATUS drops)
    b       3f                              // end of interrupt
2:  msr     cntv_ctl_el0, xzr               // ENABLE = 0: the timer output drops
3:  isb                                     // timer output updated before the EOI
    msr     icc_eoir1_el1, x0               // priority drop and deactivate INTID 27
    ldp     x2, x3, [sp, #16]               // restore
    ldp     x0, x1, [sp], #32               // ...
    eret                                    // back to the interrupted code
irq_spurious:
    adrp    x2, spurious_count              // spurious counter
    add     x2, x2, :lo12:spurious_count    // ...
    ldr     x1, [x2]                        // so far
    add     x1, x1, #1                      // one more
    str     x1, [x2]                        // ...
    ldp     x2, x3, [sp, #16]               // restore
    ldp     x0, x1, [sp], #32               // ...
    eret                                    // back
irq_bad_intid:
    mov     x1, x0                          // FAIL value: the INTID
    adrp    x0, reason_intid                // FAIL reason
    add     x0, x0, :lo12:reason_intid      // ...
    b       fail                            // verdict

// deadline, expired: waits bounded by WAIT_SECONDS (macros.inc).
    deadline_routines WAIT_SECONDS

// timeout: x0 = reason; fails with the counter value as the FAIL value.
timeout:
    isb                                     // read the counter in program order
    mrs     x1, cntvct_el0                  // FAIL value: now
    b       fail                            // verdict

// find_redist: -> x0 = RD_base of this CPU's redistributor: the frame whose GICR_TYPER
// affinity (Aff3.Aff2.Aff1.Aff0 in bits 63:32) equals MPIDR_EL1's. Clobbers x1-x5.
find_redist:
    mrs     x1, mpidr_el1                   // this CPU's affinity
    and     x2, x1, #0xffffff               // Aff2.Aff1.Aff0 (bits 23:0)
    ubfx    x3, x1, #32, #8                 // Aff3 (bits 39:32)
    orr     x2, x2, x3, lsl #24             // GICR_TYPER layout: Aff3 in bits 31:24
    ldr     x0, =GICR_BASE                  // first redistributor
    mov     x4, #MAX_REDIST                 // frames left to search
1:  ldr     w5, [x0, #GICR_TYPER + 4]       // Affinity_Value (GICR_TYPER bits 63:32)
    cmp     w5, w2                          // ours?
    b.eq    2f                              // yes
    ldr     w5, [x0, #GICR_TYPER]           // low word: Last
    tbnz    w5, #4, 3f                      // last frame and not found
    add     x0, x0, #GICR_STRIDE            // next frame
    subs    x4, x4, #1                      // one fewer left
    b.ne    1b                              // keep looking
3:  adrp    x0, reason_no_redist            // FAIL reason
    add     x0, x0, :lo12:reason_no_redist  // ...
    mov     x1, x2                          // FAIL value: the affinity looked for
    b       fail                            // verdict
2:  ret                                     // x0 = RD_base

// gic_init: step 1. -> x21 = RD_base, x22 = SGI_base. Clobbers x0-x6, x16, x20.
gic_init:
    mov     x6, x30                         // keep the return address
    mrs     x0, icc_sre_el1                 // system-register interface enable
    orr     x0, x0, #1                      // SRE = 1
    msr     icc_sre_el1, x0                 // (RAO/WI where it is fixed)
    isb                                     // in effect for the ICC accesses below
    mrs     x0, icc_sre_el1                 // read back
    and     x0, x0, #1                      // SRE
    expect  x0, 1, sre
    ldr     x20, =GICD_BASE                 // distributor
    mov     w0, #(GICD_CTLR_ARE | GICD_CTLR_GRP1) // affinity routing, group 1 on
    str     w0, [x20, #GICD_CTLR]           // GICD_CTLR
    bl      deadline                        // x0 = give-up time
    mov     x2, x0                          // ...
1:  ldr     w3, [x20, #GICD_CTLR]           // RWP still set?
    tbz     w3, #31, 2f                     // no: the write took effect
    mov     x0, x2                          // deadline
    bl      expired                         // passed?
    b.lo    1b                              // no: poll again
    adrp    x0, reason_rwp                  // FAIL reason
    add     x0, x0, :lo12:reason_rwp        // ...
    b       timeout                         // verdict
2:  and     w3, w3, #GICD_CTLR_GRP1         // EnableGrp1 kept?
    expect  x3, GICD_CTLR_GRP1, gicd-ctlr
    bl      find_redist                     // x0 = RD_base
    mov     x21, x0                         // x21 = RD_base
    add     x22, x0, #GICR_SGI_OFFSET       // x22 = SGI_base
    ldr     w0, [x21, #GICR_WAKER]          // wake the redistributor
    bic     w0, w0, #GICR_WAKER_SLEEP       // ProcessorSleep = 0
    str     w0, [x21, #GICR_WAKER]          // ...
    bl      deadline                        // x0 = give-up time
    mov     x2, x0                          // ...
3:  ldr     w3, [x21, #GICR_WAKER]          // ChildrenAsleep still set?
    tbz     w3, #2, 4f                      // no: awake
    mov     x0, x2                          // deadline
    bl      expired                         // passed?
    b.lo    3b                              // no: poll again
    adrp    x0, reason_waker                // FAIL reason
    add     x0, x0, :lo12:reason_waker      // ...
    b       timeout                         // verdict
4:  ldr     w0, [x22, #GICR_IGROUPR0]       // groups of INTIDs 0-31
    orr     w0, w0, #(1 << VTIMER_INTID)    // INTID 27: group 1
    str     w0, [x22, #GICR_IGROUPR0]       // ...
    ldr     w0, [x22, #GICR_IGROUPR0]       // read back
    ubfx    w0, w0, #VTIMER_INTID, #1       // INTID 27's group
    expect  x0, 1, igroupr0
    mov     w0, #TIMER_PRIO                 // its priority
    strb    w0, [x22, #GICR_IPRIORITYR + VTIMER_INTID] // one byte per INTID
    ldrb    w0, [x22, #GICR_IPRIORITYR + VTIMER_INTID] // read back
    expect  x0, TIMER_PRIO, ipriorityr
    mov     w0, #(1 << VTIMER_INTID)        // enable INTID 27
    str     w0, [x22, #GICR_ISENABLER0]     // set-enable (writing 0 bits has no effect)
    ldr     w0, [x22, #GICR_ISENABLER0]     // read back the enables
    ubfx    w0, w0, #VTIMER_INTID, #1       // INTID 27's
    expect  x0, 1, isenabler0
    mov     x0, #0xff                       // lowest priority mask: let everything through
    msr     icc_pmr_el1, x0                 // ...
    msr     icc_bpr1_el1, xzr               // binary point: the minimum
    mov     x0, #1                          // group 1 interrupts on
    msr     icc_igrpen1_el1, x0             // ...
    isb                                     // in effect from here
    mrs     x0, icc_igrpen1_el1             // read back
    expect  x0, 1, igrpen1
    ret     x6                              // done

// masked_pending: step 2. Clobbers x0-x5, x16, x24.
masked_pending:
    mov     x5, x30                         // keep the return address
    msr     daifset, #2                     // PSTATE.I = 1 (already set at boot)
    adrp    x3, irq_count                   // handler record
    add     x3, x3, :lo12:irq_count         // ...
    ldr     x0, [x3, #32]                   // period
    msr     cntv_tval_el0, x0               // fire 1 ms from now
    mov     x0, #CNT_CTL_ENABLE             // enabled, not masked
    msr     cntv_ctl_el0, x0                // ...
    isb                                     // timer armed
    bl      deadline                        // x0 = give-up time
    mov     x24, x0                         // ...
1:  mrs     x0, cntv_ctl_el0                // timer condition met?
    tbnz    x0, #2, 2f                      // ISTATUS: yes
    mov     x0, x24                         // deadline
    bl      expired                         // passed?
    b.lo    1b                              // no: poll again
    adrp    x0, reason_istatus              // FAIL reason
    add     x0, x0, :lo12:reason_istatus    // ...
    b       timeout                         // verdict
2:  ldr     w0, [x22, #GICR_ISPENDR0]       // pending INTIDs 0-31
    tbnz    w0, #VTIMER_INTID, 3f           // INTID 27 pending: go on
    mov     x0, x24                         // deadline
    bl      expired                         // passed?
    b.lo    2b                              // no: poll again
    adrp    x0, reason_ispendr              // FAIL reason
    add     x0, x0, :lo12:reason_ispendr    // ...
    b       timeout                         // verdict
3:  mrs     x0, icc_hppir1_el1              // highest priority pending group 1 INTID
    expect  x0, VTIMER_INTID, hppir1
    ldr     x0, [x3]                        // irq_count
    expect  x0, 0, taken-while-masked
    .global c_irq_unmask                    // (tests/step_over_mmio_irq.rs steps from here)
c_irq_unmask:
    msr     daifclr, #2                     // PSTATE.I = 0: the interrupt is taken
    isb                                     // at the latest here
    .global c_irq_unmask_end
c_irq_unmask_end:
    ldr     x0, [x3]                        // irq_count
    expect  x0, 1, not-taken-when-unmasked
    ldr     x0, [x3, #24]                   // irq_spsr
    mov     x1, #SPSR_CHECKED               // DAIF and mode
    and     x0, x0, x1                      // ...
    expect  x0, SPSR_I_CLEAR, irq-spsr
    ldr     x0, [x3, #16]                   // irq_rpr
    expect  x0, TIMER_PRIO, rpr-in-handler
    msr     daifset, #2                     // masked again for step 3's checks
    ret     x5                              // done

// periodic: step 3. Clobbers x0-x5, x16, x24, x25.
periodic:
    mov     x5, x30                         // keep the return address
    adrp    x3, irq_count                   // handler record
    add     x3, x3, :lo12:irq_count         // ...
    isb                                     // read the counter in program order
    mrs     x25, cntvct_el0                 // x25 = start
    ldr     x0, [x3, #32]                   // period
    msr     cntv_tval_el0, x0               // first tick 1 ms from now
    mov     x0, #CNT_CTL_ENABLE             // enabled, not masked
    msr     cntv_ctl_el0, x0                // ...
    isb                                     // timer armed
    bl      deadline                        // x0 = give-up time
    mov     x24, x0                         // ...
1:  msr     daifset, #2                     // mask: check and sleep without a race
    ldr     x0, [x3]                        // irq_count
    cmp     x0, #TOTAL_IRQS                 // all taken?
    b.hs    2f                              // yes
    mov     x0, x24                         // deadline
    bl      expired                         // passed?
    b.hs    3f                              // yes: fail
    .global c_wfi                           // (tests/step_over_mmio_irq.rs steps from here)
c_wfi:
    wfi                                     // sleep until an interrupt is pending (masked)
    msr     daifclr, #2                     // unmask: take it
    isb                                     // ...
    .global c_wfi_end
c_wfi_end:
    b       1b                              // check again
3:  adrp    x0, reason_ticks                // FAIL reason
    add     x0, x0, :lo12:reason_ticks      // ...
    b       timeout                         // verdict
2:  isb                                     // read the counter in program order
    mrs     x0, cntvct_el0                  // now
    sub     x0, x0, x25                     // elapsed counter ticks
    ldr     x1, [x3, #32]                   // period
    mov     x2, #(TOTAL_IRQS - 1)           // periods that must have passed
    mul     x1, x1, x2                      // least elapsed time
    cmp     x0, x1                          // enough?
    b.hs    4f                              // yes
    mov     x1, x0                          // FAIL value: elapsed ticks
    adrp    x0, reason_too_fast             // FAIL reason
    add     x0, x0, :lo12:reason_too_fast   // ...
    b       fail                            // verdict
4:  mrs     x0, cntv_ctl_el0                // the handler stopped the timer
    and     x0, x0, #CNT_CTL_ENABLE         // ENABLE (ISTATUS is UNKNOWN when disabled)
    expect  x0, 0, timer-still-enabled
    mrs     x0, icc_rpr_el1                 // running priority: idle again
    expect  x0, 0xff, rpr-not-idle
    ldr     x0, [x3, #16]                   // irq_rpr of the last interrupt
    expect  x0, TIMER_PRIO, rpr-in-handler
    ldr     x0, [x3, #8]                    // spurious_count
    expect  x0, 0, spurious
    ret     x5                              // done

    .global main
    .type main, %function
main:
    say     "timer: GICv3 and virtual timer setup\n"
    adrp    x0, timer_vectors               // this firmware's table (2 KiB aligned)
    add     x0, x0, :lo12:timer_vectors     // ...
    msr     vbar_el1, x0                    // install it
    isb                                     // in effect from here
    mrs     x0, cntfrq_el0                  // counter ticks per second
    mov     x1, #1000                       // per millisecond
    udiv    x0, x0, x1                      // ...
    adrp    x1, period                      // keep it for the handler
    str     x0, [x1, :lo12:period]          // ...
    bl      gic_init                        // step 1
    say     "timer: INTID 27 pending while PSTATE.I is set\n"
    bl      masked_pending                  // step 2
    say     "timer: taken after DAIFClr\n"
    bl      periodic                        // step 3
    say     "timer: interrupts taken: "
    adrp    x0, irq_count                   // the count
    ldr     x0, [x0, :lo12:irq_count]       // ...
    bl      putdec                          // print it
    mov     w0, #'\n'                       // end the line
    bl      putc                            // ...
    b       pass                            // verdict

    .section .rodata.reasons, "a"
reason_intid:
    .asciz "unexpected-intid"
reason_no_redist:
    .asciz "no-redistributor"
reason_rwp:
    .asciz "gicd-rwp-timeout"
reason_waker:
    .asciz "gicr-waker-timeout"
reason_istatus:
    .asciz "istatus-timeout"
reason_ispendr:
    .asciz "not-pending-timeout"
reason_ticks:
    .asciz "tick-timeout"
reason_too_fast:
    .asciz "ticks-too-fast"
