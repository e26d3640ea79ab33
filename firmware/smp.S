// smp: bring up the secondary CPUs with PSCI CPU_ON and check each one runs.
//
// The boot CPU turns its MMU on (exclusives need Normal memory, see spinlock.S), then calls
// CPU_ON for MPIDR Aff0 = 1, 2, ... until PSCI answers INVALID_PARAMETERS (no such CPU) or
// MAX_CPUS CPUs exist; any other error fails. Each secondary starts at `secondary_entry` with
// x0 = its index (the CPU_ON context id), takes its own stack, turns its MMU on, records its
// MPIDR_EL1, prints "cpu N alive" under `print_lock`, increments `alive_count` and calls
// CPU_OFF. The boot CPU waits (at most WAIT_SECONDS of CNTVCT_EL0) for every started CPU to
// be counted and then to be OFF according to AFFINITY_INFO, checks the recorded MPIDRs, and
// prints "smp: cpus online: N" and "PASS smp".
// PSCI calls: Arm DEN 0022 sections 5.4 (CPU_OFF), 5.5 (CPU_ON), 5.7 (AFFINITY_INFO).

    .include "platform.inc"
    .include "macros.inc"
    .include "cpus.inc"

    .equ WAIT_SECONDS, 5                    // bound on every wait for the other CPUs
    .equ MPIDR_AFF_MASK, 0xff00ffffff       // Aff3 (39:32), Aff2, Aff1, Aff0 (Arm ARM MPIDR_EL1)

    .section .rodata
    .global fw_name
fw_name:
    .asciz "smp"

    .bss
    .balign 64
print_lock:
    .word   0                               // spinlock around UART output once secondaries run
    .balign 64
alive_count:
    .word   0                               // secondaries that reported in
    .balign 64
alive_mpidr:
    .space  MAX_CPUS * 8                    // MPIDR_EL1 recorded by CPU i at index i

    .text

// locked_fail: x0 = reason, x1 = value. Takes print_lock so the verdict line stays whole.
locked_fail:
    mov     x24, x0                         // keep the reason (spin_lock clobbers x0-x2)
    mov     x25, x1                         // keep the value
    adrp    x0, print_lock                  // the lock
    add     x0, x0, :lo12:print_lock        // ...
    bl      spin_lock                       // hold it; never released: we power off
    mov     x0, x24                         // reason
    mov     x1, x25                         // value
    b       fail                            // verdict

// deadline, expired: waits bounded by WAIT_SECONDS (macros.inc).
    deadline_routines WAIT_SECONDS

    .global main
    .type main, %function
main:
    bl      mmu_enable                      // RAM becomes Normal memory (exclusives work)
    say     "smp: MMU on, starting secondaries\n"
    start_cpus wait_alive                   // x20 = secondaries started (cpus.inc)
    cpu_on_error locked_fail                // a CPU_ON error fails

wait_alive:
    bl      deadline                        // x0 = deadline
    mov     x21, x0                         // keep it
    adrp    x22, alive_count                // the counter
    add     x22, x22, :lo12:alive_count     // ...
1:  ldar    w9, [x22]                       // secondaries counted so far (acquire)
    cmp     x9, x20                         // all started ones?
    b.eq    check_mpidrs                    // yes
    mov     x0, x21                         // deadline
    bl      expired                         // passed?
    b.lo    1b                              // not yet: poll again
    mov     x1, x9                          // FAIL value: how many reported
    adrp    x0, reason_alive                // FAIL reason
    add     x0, x0, :lo12:reason_alive      // ...
    b       locked_fail                     // verdict

check_mpidrs:
    adrp    x22, alive_mpidr                // recorded MPIDRs
    add     x22, x22, :lo12:alive_mpidr     // ...
    ldr     x23, =MPIDR_AFF_MASK            // affinity fields
    mov     x19, #1                         // first secondary
1:  cmp     x19, x20                        // past the last one?
    b.hi    wait_off                        // yes: all checked
    ldr     x9, [x22, x19, lsl #3]          // MPIDR recorded by CPU x19
    and     x10, x9, x23                    // its affinity
    cmp     x10, x19                        // Aff0 = index, Aff1-3 = 0?
    b.ne    2f                              // no: fail
    add     x19, x19, #1                    // next
    b       1b                              // ...
2:  mov     x1, x9                          // FAIL value: the MPIDR seen
    adrp    x0, reason_mpidr                // FAIL reason
    add     x0, x0, :lo12:reason_mpidr      // ...
    b       locked_fail                     // verdict

wait_off:
    mov     x19, #1                         // first secondary
1:  cmp     x19, x20                        // past the last one?
    b.hi    report                          // yes: every secondary is off
    wait_cpu_off x19, x21, locked_fail      // until it is OFF (cpus.inc)
    add     x19, x19, #1                    // next secondary
    b       1b                              // ...

report:
    say     "smp: cpus online: "
    add     x0, x20, #1                     // secondaries + the boot CPU
    bl      putdec                          // print the count
    say     "\n"
    b       pass                            // "PASS smp", power off
    .size main, . - main

// Secondary CPUs start here (PSCI CPU_ON): EL1h, MMU off, x0 = context id = CPU index.
    .global secondary_entry
    .type secondary_entry, %function
secondary_entry:
    mov     x19, x0                         // x19 = my index
    cmp     x19, #MAX_CPUS                  // an index we have a stack for?
    b.hs    park                            // no: stop here (the boot CPU times out)
    bl      cpu_stack_top                   // x0 = my stack top (x0 = index on entry)
    mov     sp, x0                          // my stack
    adrp    x0, default_vectors             // report unexpected exceptions
    add     x0, x0, :lo12:default_vectors   // ...
    msr     vbar_el1, x0                    // install the default table
    isb                                     // in effect from here
    bl      mmu_enable                      // same identity map as the boot CPU
    mrs     x20, mpidr_el1                  // who am I really
    adrp    x21, alive_mpidr                // record it
    add     x21, x21, :lo12:alive_mpidr     // ...
    str     x20, [x21, x19, lsl #3]         // alive_mpidr[index] = MPIDR_EL1
    adrp    x0, print_lock                  // serialise output
    add     x0, x0, :lo12:print_lock        // ...
    bl      spin_lock                       // take the lock
    say     "cpu "
    mov     x0, x19                         // my index
    bl      putdec                          // print it
    say     " alive\n"
    adrp    x0, print_lock                  // done printing
    add     x0, x0, :lo12:print_lock        // ...
    bl      spin_unlock                     // release the lock
    adrp    x0, alive_count                 // tell the boot CPU (after the MPIDR store:
    add     x0, x0, :lo12:alive_count       //  the increment has release semantics)
    mov     w1, #1                          // one more
    bl      atomic_add32                    // alive_count += 1
    movz    w0, #(PSCI_CPU_OFF >> 16), lsl #16 // CPU_OFF id, high half
    movk    w0, #(PSCI_CPU_OFF & 0xffff)    // low half
    bl      psci_call                       // does not return on success
park:
    wfe                                     // CPU_OFF failed (boot CPU will time out)
    b       park                            // forever
    .size secondary_entry, . - secondary_entry

    .section .rodata
reason_cpu_on:
    .asciz "cpu-on-error"
reason_alive:
    .asciz "timeout-waiting-alive"
reason_mpidr:
    .asciz "wrong-mpidr"
reason_off:
    .asciz "cpu-not-off"
