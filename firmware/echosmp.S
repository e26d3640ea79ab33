// echosmp: console input on an SMP machine while the other CPUs run. CPU 0 routes the UART's
// receive interrupt to itself (common/echo.inc), starts every other CPU with PSCI CPU_ON
// (MPIDR Aff0 = 1, 2, ... until INVALID_PARAMETERS, at most MAX_CPUS; any other error
// fails; common/cpus.inc), then echoes one line as `echo` does, waiting in WFI while the
// receive FIFO is empty. Each secondary counts to SPIN_COUNT in its own slot of `spin_counts` (plain stores,
// nothing shared: no exclusives, so the MMU stays off) and calls CPU_OFF: under --icount the
// secondaries run for several quanta while CPU 0 waits for input, and afterwards every CPU is
// idle or off. At the newline CPU 0 waits (at most WAIT_SECONDS per CPU) until AFFINITY_INFO
// says each secondary is OFF, checks each one's count, and prints "sum=<decimal sum of the
// line, newline included>", "cpus=<CPUs in all>" and "PASS echosmp".
// PSCI calls: Arm DEN 0022 sections 5.4 (CPU_OFF), 5.5 (CPU_ON), 5.7 (AFFINITY_INFO).

    .include "platform.inc"
    .include "gic.inc"
    .include "echo.inc"
    .include "macros.inc"
    .include "cpus.inc"

    .equ WAIT_SECONDS, 5                    // bound on the wait for each secondary
    .equ SPIN_COUNT, 20000                  // each secondary's count: 4 instructions a step

    .section .rodata
    .global fw_name
fw_name:
    .asciz "echosmp"
msg_sum:
    .asciz "\nsum="
msg_cpus:
    .asciz "cpus="
reason_cpu_on:
    .asciz "cpu-on-error"
reason_off:
    .asciz "cpu-not-off"
reason_count:
    .asciz "wrong-count"

    .bss
    .balign 8
    .global spin_counts
spin_counts:
    .space  MAX_CPUS * 8                    // the count of CPU i at index i

    .text

// deadline, expired: waits bounded by WAIT_SECONDS (macros.inc).
    deadline_routines WAIT_SECONDS

    .global main
    .type main, %function
main:
    start_cpus started                      // x19 = CPUs in all (cpus.inc)
    cpu_on_error fail                       // a CPU_ON error fails
    .global started
started:
    mov     x21, x19                        // x21 = CPUs in all
    uart_rx_irq_setup                       // x20 = PL011 base, receive interrupt to CPU 0
    echo_line                               // x19 = sum of the line (x21 kept)
    mov     x22, #1                         // first secondary
wait_off:
    cmp     x22, x21                        // past the last one?
    b.hs    report                          // yes: every secondary is off
    wait_cpu_off x22, x23, fail             // until it is OFF (cpus.inc)
    adrp    x9, spin_counts                 // the counts
    add     x9, x9, :lo12:spin_counts       // ...
    ldr     x1, [x9, x22, lsl #3]           // this CPU's
    ldr     x10, =SPIN_COUNT                // what it must have reached
    cmp     x1, x10                         // reached?
    b.ne    3f                              // no: fail with the count seen
    add     x22, x22, #1                    // next secondary
    b       wait_off                        // ...
3:  adrp    x0, reason_count                // FAIL reason (x1 = the count)
    add     x0, x0, :lo12:reason_count      // ...
    b       fail                            // verdict
    .global report
report:
    print_sum msg_sum                       // "sum=<x19>" (echo.inc)
    adrp    x0, msg_cpus                    // "cpus="
    add     x0, x0, :lo12:msg_cpus          // ...
    bl      puts                            // print it
    mov     x0, x21                         // CPUs in all
    bl      putdec                          // in decimal
    mov     w0, #'\n'                       // end the line
    bl      putc                            // print it
    b       pass                            // "PASS echosmp" and power off

    .size main, . - main

// Secondary CPUs start here (PSCI CPU_ON): EL1h, MMU off, x0 = context id = CPU index
// (below MAX_CPUS: main starts no more). No stack is needed.
    .global secondary_entry
    .type secondary_entry, %function
secondary_entry:
    adrp    x1, spin_counts                 // the counts
    add     x1, x1, :lo12:spin_counts       // ...
    add     x1, x1, x0, lsl #3              // x1 = my slot
    ldr     x3, =SPIN_COUNT                 // x3 = where to stop
    mov     x2, #0                          // x2 = my count
    .global spin_loop
spin_loop:
    add     x2, x2, #1                      // one more
    str     x2, [x1]                        // published in my slot
    cmp     x2, x3                          // there yet?
    b.lo    spin_loop                       // no: again
    movz    w0, #(PSCI_CPU_OFF >> 16), lsl #16 // CPU_OFF id, high half
    movk    w0, #(PSCI_CPU_OFF & 0xffff)    // low half
    hvc     #0                              // power off; does not return on success
park:
    wfe                                     // CPU_OFF failed (CPU 0 times out)
    b       park                            // forever
    .size secondary_entry, . - secondary_entry
