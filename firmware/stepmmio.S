// stepmmio: the corners of single-stepping over emulated MMIO, one labelled block each, for the
// step-over-MMIO regression suite (tests/step_over_mmio.rs). Run straight through, each block
// checks its own results, then "PASS stepmmio". A debugger steps from c_<corner> to
// c_<corner>_end and compares every stop with QEMU's.
// Device: the PL011 (registers that read back what was written, and the fixed ID registers).

    .include "platform.inc"
    .include "macros.inc"

    // PL011 interrupt FIFO level select (6 bits RW; PL011 TRM DDI 0183 table 3-1), which only
    // this firmware uses (kept out of platform.inc so the prebuilt demo's bytes do not change).
    .equ UARTIFLS, 0x034

    .section .rodata
    .global fw_name
fw_name:
    .asciz "stepmmio"

    .data
    .balign 16
    .global watched_word
watched_word:
    .quad   0                               // the hardware-watchpoint corner watches this
    .global neighbour_word
neighbour_word:
    .quad   0                               // ...and stores here must not trigger it
    .global spin_count
spin_count:
    .quad   0                               // rounds of vCPU 1's MMIO loop

    .text
    .global main
    .type main, %function
main:
    mov     x28, x30                        // keep the return address (never used: pass)
    adrp    x0, step_vectors                // this firmware's trap table
    add     x0, x0, :lo12:step_vectors      // ...
    msr     vbar_el1, x0                    // install it
    isb                                     // make it take effect
    movz    x1, #(UART_BASE >> 16), lsl #16 // x1 = the PL011 (every corner's device base)
    mov     x0, #0x2d                       // a value for the stores ('-', IMSC bits)

    .global c_sizes
c_sizes:                                    // MMIO loads and stores of every size
    strb    w0, [x1, #UARTIMSC]             // 1-byte store
    strh    w0, [x1, #UARTIMSC]             // 2-byte store
    str     w0, [x1, #UARTIMSC]             // 4-byte store
    str     x0, [x1, #UARTIMSC]             // 8-byte store (IMSC and read-only RIS)
    ldrb    w2, [x1, #UARTPERIPHID0]        // 1-byte load: 0x11
    ldrh    w3, [x1, #UARTPERIPHID0 + 4]    // 2-byte load: 0x10
    ldr     w4, [x1, #UARTIMSC]             // 4-byte load: 0x2d
    ldr     x5, [x1, #UARTPCELLID0]         // 8-byte load: PCellID1:PCellID0 = 0xf0_0000_000d
    ldrsb   w6, [x1, #UARTPCELLID0 + 4]     // sign-extending into W: 0xfffffff0
    ldrsb   x7, [x1, #UARTPCELLID0 + 4]     // sign-extending into X: -16
    ldrsh   x8, [x1, #UARTPCELLID0 + 4]     // 0x00f0: stays positive
    .global c_sizes_end
c_sizes_end:
    expect  x2, 0x11, sizes-ldrb
    expect  x3, 0x10, sizes-ldrh
    expect  x4, 0x2d, sizes-ldr
    expect  x5, 0x000000f00000000d, sizes-ldr64
    expect  x6, 0xfffffff0, sizes-ldrsb-w
    expect  x7, 0xfffffffffffffff0, sizes-ldrsb-x
    expect  x8, 0xf0, sizes-ldrsh-x

    .global c_pairs
c_pairs:                                    // pairs: no valid syndrome, emulated by kvmdbg
    mov     w2, #0x21                       // IBRD value
    mov     w3, #0x05                       // FBRD value
    stp     w2, w3, [x1, #UARTIBRD]         // pair store to IBRD, FBRD
    ldp     w4, w5, [x1, #UARTIBRD]         // pair load back
    .global c_pairs_end
c_pairs_end:
    expect  x4, 0x21, pairs-ibrd
    expect  x5, 0x05, pairs-fbrd

    .global c_writeback
c_writeback:                                // pre- and post-index writeback to MMIO
    mov     x9, x1                          // a base to move
    str     w0, [x9, #UARTIMSC]!            // pre-index: x9 = UART + 0x38
    ldr     w2, [x9], #-UARTIMSC            // post-index: back to UART
    ldr     w3, [x9, #UARTIMSC]!            // pre-index load: x9 = UART + 0x38
    .global c_writeback_end
c_writeback_end:
    expect  x2, 0x2d, writeback-value
    expect  x3, 0x2d, writeback-pre-load
    expect  x9, UART_BASE + UARTIMSC, writeback-base

    .global c_own_base
c_own_base:                                 // a load into its own base register
    mov     x9, x1                          // base
    ldr     w9, [x9, #UARTPERIPHID0 + 8]    // x9 = PeriphID2 = 0x14
    .global c_own_base_end
c_own_base_end:
    expect  x9, 0x14, own-base

    .global c_back_to_back
c_back_to_back:                             // two MMIO instructions back to back
    mov     w2, #0x3c                       // a mask value
    str     w2, [x1, #UARTIMSC]             // store
    ldr     w3, [x1, #UARTIMSC]             // and at once load it back
    .global c_back_to_back_end
c_back_to_back_end:
    expect  x3, 0x3c, back-to-back

    .global c_after_branch
c_after_branch:                             // MMIO right after a taken branch
    b       1f                              // taken
    mov     x4, #1                          // skipped
1:  ldr     w4, [x1, #UARTPERIPHID0 + 4]    // MMIO load at the branch target: 0x10
    .global c_after_branch_end
c_after_branch_end:
    expect  x4, 0x10, after-branch

    .global c_before_bp
c_before_bp:                                // MMIO as the last instruction before a breakpoint
    ldr     w5, [x1, #UARTPCELLID0]         // MMIO load: 0x0d
    .global c_bp_target
c_bp_target:
    add     x5, x5, #1                      // a breakpoint goes here
    .global c_before_bp_end
c_before_bp_end:
    expect  x5, 0x0e, before-bp

    .global c_watch_neighbour
c_watch_neighbour:                          // MMIO under a watchpoint on a RAM neighbour
    adrp    x10, neighbour_word             // the unwatched neighbour
    add     x10, x10, :lo12:neighbour_word  // ...
    str     w0, [x1, #UARTIMSC]             // MMIO store
    str     x0, [x10]                       // RAM store next to the watched word
    ldr     w6, [x1, #UARTIMSC]             // MMIO load
    .global c_watch_neighbour_end
c_watch_neighbour_end:
    expect  x6, 0x2d, watch-neighbour

    .global c_hvc
c_hvc:                                      // an HVC (PSCI) handled by the hypervisor
    movz    w0, #(PSCI_VERSION >> 16), lsl #16 // PSCI_VERSION
    hvc     #0                              // x0 = the version
    .global c_hvc_end
c_hvc_end:
    mov     x2, #0                          // KVM zeroes x1-x3 on HVC, QEMU does not:
    mov     x3, #0                          // ...make them equal for the corners after this
    lsr     x0, x0, #16                     // major version
    cmp     x0, #1                          // at least 1.0 (KVM 6.1: 1.1; QEMU: 1.1)
    b.lo    bad_psci

    .global c_svc
c_svc:                                      // a step into SVC stops at the vector
    svc     #0x11                           // to step_vectors + 0x200, back after it
    .global c_svc_end
c_svc_end:
    expect  x10, 0x56000011, svc-esr

    .global c_guest_brk
c_guest_brk:                                // a guest-owned BRK, handled by the guest
    brk     #0x22                           // its handler skips it
    .global c_guest_brk_end
c_guest_brk_end:
    expect  x10, 0xf2000022, brk-esr

    mov     x10, #0                         // no syndrome seen yet
    mov     x0, #0x7777                     // a value an SMC handler would replace
    .global c_smc
c_smc:                                      // SMC: KVM 6.1 answers x0 = -1 (NOT_SUPPORTED) and
    smc     #0                              // ...skips it; without EL3 (QEMU) it is UNDEFINED:
    .global c_smc_end                       // ...step_sync records EC 0 and skips it
c_smc_end:
    cbz     x10, 1f                         // answered by the hypervisor?
    expect  x10, 0x02000000, smc-undefined-esr // no: UNDEFINED (EC 0x00, IL = 1)
    b       2f
1:  expect  x0, 0xffffffffffffffff, smc-not-supported // yes: SMCCC NOT_SUPPORTED
2:
    // A second vCPU doing MMIO in a loop while this one is stepped (kvmdbg --cpus 2): CPU_ON
    // for MPIDR Aff0 = 1 at mmio_spinner; with a single CPU, PSCI answers INVALID_PARAMETERS
    // and the corner runs on this vCPU alone.
    movz    w0, #(PSCI_CPU_ON >> 16), lsl #16 // CPU_ON (SMC64) id, high half
    movk    w0, #(PSCI_CPU_ON & 0xffff)     // low half
    mov     x1, #1                          // target: MPIDR Aff0 = 1
    adrp    x2, mmio_spinner                // entry point (flat: MMU off)
    add     x2, x2, :lo12:mmio_spinner      // ...
    mov     x3, #0                          // context id (unused)
    hvc     #0                              // x0 = PSCI status
    cbnz    w0, 4f                          // no second CPU: run the corner alone
    adrp    x9, spin_count                  // wait until the spinner has made one round
    add     x9, x9, :lo12:spin_count        // ...
3:  ldr     x10, [x9]                       // rounds so far
    cbz     x10, 3b                         // none yet: wait
4:  movz    x1, #(UART_BASE >> 16), lsl #16 // x1 = the PL011 again (PSCI zeroes x1 on KVM)
    mov     x9, #0                          // x9 pointed at spin_count (two vCPUs only),
    mov     x10, #0                         // ...x10 counted rounds, and the SMC corner left
    mov     x11, #0                         // ...x10/x11 differing between KVM and QEMU
    mov     x0, #0x15                       // a value for the stores
    .global c_smp
c_smp:                                      // MMIO while another vCPU does MMIO too
    str     w0, [x1, #UARTIMSC]             // MMIO store (syndrome: KVM completes it)
    ldr     w2, [x1, #UARTIMSC]             // MMIO load: 0x15
    stp     w0, w0, [x1, #UARTIBRD]         // pair: emulated by kvmdbg (IBRD, FBRD)
    ldp     w3, w4, [x1, #UARTIBRD]         // pair load: 0x15, 0x15
    add     x5, x2, x3                      // 0x2a: plain RAM-free arithmetic
    .global c_smp_end
c_smp_end:
    expect  x2, 0x15, smp-ldr
    expect  x3, 0x15, smp-ldp-first
    expect  x4, 0x15, smp-ldp-second
    expect  x5, 0x2a, smp-add
    b       pass                            // "PASS stepmmio", power off
bad_psci:
    mov     x1, x0
    adrp    x0, msg_psci
    add     x0, x0, :lo12:msg_psci
    b       fail
    .size main, . - main

// vCPU 1 (when it exists): MMIO loads and stores to a register no corner uses (UARTIFLS reads
// back what was written), and a count of rounds in RAM, forever.
    .global mmio_spinner
    .type mmio_spinner, %function
mmio_spinner:
    movz    x1, #(UART_BASE >> 16), lsl #16 // the PL011
    adrp    x2, spin_count                  // the round counter
    add     x2, x2, :lo12:spin_count        // ...
    .global spin_loop
spin_loop:
    ldr     w3, [x1, #UARTIFLS]             // MMIO load
    str     w3, [x1, #UARTIFLS]             // MMIO store of the same value
    ldr     x4, [x2]                        // rounds so far
    add     x4, x4, #1                      // one more
    str     x4, [x2]                        // RAM store
    b       spin_loop                       // forever
    .size mmio_spinner, . - mmio_spinner

// The trap table: synchronous exceptions from the current EL with SP_ELx record ESR_EL1 in
// x10 and return past the instruction for BRK (EC 0x3c); everything else uses the default
// handler, which reports it and fails.
    .balign 2048
    .global step_vectors
step_vectors:
    .rept 4
    .balign 0x80
    b       default_vectors                 // current EL with SP_EL0: unexpected
    .endr
    .balign 0x80
    .global step_sync
step_sync:
    mrs     x10, esr_el1                    // the syndrome
    mrs     x11, elr_el1                    // the return address
    lsr     x12, x10, #ESR_EC_SHIFT         // exception class
    cmp     x12, #0x3c                      // BRK64?
    ccmp    x12, #0x00, #4, ne              // ...or UNDEFINED (EC 0x00: SMC without EL3)?
    b.ne    1f
    add     x11, x11, #4                    // skip the BRK or the SMC
1:  msr     elr_el1, x11
    eret
    .rept 11
    .balign 0x80
    b       default_vectors                 // anything else: unexpected
    .endr

    .section .rodata
msg_psci:
    .asciz "psci-version"
