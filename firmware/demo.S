// demo: the firmware `kvmdbg run` boots when given none (committed as prebuilt/demo.elf).
// Prints a banner, the exception level and CPU, the first Fibonacci numbers computed by a
// recursive function `fib` (something to break on, step through and backtrace in gdb) while
// counting iterations in the global `demo_counter` (something to watch), then "PASS demo".

    .include "platform.inc"
    .include "macros.inc"

    .cfi_sections .debug_frame              // unwind info for gdb only (not loaded)

    .section .rodata
    .global fw_name
fw_name:
    .asciz "demo"

    .data
    .balign 8
    .global demo_counter
demo_counter:
    .quad   0                               // loop iterations so far

    .text
    .global main
    .type main, %function
main:
    .cfi_startproc
    .cfi_undefined x30                      // outermost frame: _start does not return here
    say     "=== kvmdbg demo firmware ===\n"
    say     "running at EL"
    mrs     x0, CurrentEL                   // EL in bits 3:2
    lsr     x0, x0, #2                      // the EL number
    bl      putdec                          // print it
    say     " on cpu "
    mrs     x0, mpidr_el1                   // this CPU's affinity
    and     x0, x0, #0xff                   // Aff0
    bl      putdec                          // print it
    say     "\nfibonacci:"
    adrp    x20, demo_counter               // the iteration counter
    add     x20, x20, :lo12:demo_counter    // ...
    mov     x19, #0                         // n = 0
1:  say     " "
    mov     x0, x19                         // n
    bl      fib                             // fib(n)
    bl      putdec                          // print it
    ldr     x9, [x20]                       // demo_counter
    add     x9, x9, #1                      // one more iteration
    str     x9, [x20]                       // store it back
    add     x19, x19, #1                    // next n
    cmp     x19, #12                        // fib(0) .. fib(11)
    b.lo    1b                              // ...
    say     "\n"
    mov     x0, #11                         // check the last one
    bl      fib                             // fib(11)
    expect  x0, 89, fib-11
    ldr     x9, [x20]                       // the counter saw every iteration
    expect  x9, 12, demo-counter
    b       pass                            // "PASS demo", power off
    .cfi_endproc
    .size main, . - main

// fib: x0 = n -> x0 = fib(n), recursively (fib(0) = 0, fib(1) = 1). Clobbers x1.
    .global fib
    .type fib, %function
fib:
    .cfi_startproc
    cmp     x0, #2                          // base case n < 2: fib(n) = n
    b.lo    2f                              // return n
    stp     x29, x30, [sp, #-32]!           // frame
    .cfi_def_cfa_offset 32
    .cfi_offset x29, -32
    .cfi_offset x30, -24
    mov     x29, sp                         // frame pointer (for gdb backtraces)
    str     x19, [sp, #16]                  // keep the caller's x19
    mov     x19, x0                         // n
    sub     x0, x19, #1                     // n - 1
    bl      fib                             // fib(n - 1)
    str     x0, [sp, #24]                   // keep it
    sub     x0, x19, #2                     // n - 2
    bl      fib                             // fib(n - 2)
    ldr     x1, [sp, #24]                   // fib(n - 1)
    add     x0, x0, x1                      // fib(n) = fib(n - 1) + fib(n - 2)
    ldr     x19, [sp, #16]                  // restore x19
    ldp     x29, x30, [sp], #32             // drop the frame
    .cfi_def_cfa_offset 0
    .cfi_restore x29
    .cfi_restore x30
2:  ret                                     // result in x0
    .cfi_endproc
    .size fib, . - fib
