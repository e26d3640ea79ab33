// start.S: the entry point `_start` shared by every firmware, per-CPU stacks, and `main`'s
// calling convention.
//
// Boot state assumed (QEMU virt `-kernel X.elf`, and kvmdbg): EL1h, MMU and caches off,
// DAIF masked, PC = ELF entry. `_start` zeroes .bss, points SP at CPU 0's stack, installs
// the default trap table (vectors.S), enables the UART and calls `main` (which the firmware
// file defines and which must finish with `pass` or `fail` from verdict.S).

    .include "platform.inc"

    .section .text.start, "ax"
    .global _start
    .type _start, %function
_start:
    adrp    x9, __bss_start                 // x9 = page of .bss start
    add     x9, x9, :lo12:__bss_start       // x9 = .bss start (16-byte aligned by link.ld)
    adrp    x10, __bss_end                  // x10 = page of .bss end
    add     x10, x10, :lo12:__bss_end       // x10 = .bss end (16-byte aligned by link.ld)
1:  cmp     x9, x10                         // done zeroing?
    b.hs    2f                              // yes: leave the loop
    stp     xzr, xzr, [x9], #16             // zero 16 bytes, advance
    b       1b                              // next 16 bytes
2:  mov     x0, #0                          // CPU index 0 (the boot CPU)
    bl      cpu_stack_top                   // x0 = top of CPU 0's stack
    mov     sp, x0                          // SP_EL1 = that stack (EL1h uses SP_EL1)
    adrp    x0, default_vectors             // default trap table (2 KiB aligned)
    add     x0, x0, :lo12:default_vectors   // its full address
    msr     vbar_el1, x0                    // install it
    isb                                     // make VBAR_EL1 take effect
    bl      uart_init                       // enable the PL011 transmitter
    bl      main                            // run the firmware
    adrp    x0, msg_main_returned           // main must not return: report it
    add     x0, x0, :lo12:msg_main_returned // reason string
    mov     x1, #0                          // no value
    b       fail                            // prints FAIL and powers off
    .size _start, . - _start

// cpu_stack_top: x0 = CPU index (0..MAX_CPUS-1) -> x0 = initial SP for that CPU.
// Clobbers x1. The caller must pass an index below MAX_CPUS (nothing is checked here).
    .text
    .global cpu_stack_top
    .type cpu_stack_top, %function
cpu_stack_top:
    adrp    x1, cpu_stacks                  // page of the stack array
    add     x1, x1, :lo12:cpu_stacks        // stack array base
    add     x0, x0, #1                      // stack grows down: top of stack i = base + (i+1)*size
    add     x0, x1, x0, lsl #STACK_SHIFT    // x0 = base + (i+1) * STACK_SIZE
    ret                                     // return the top
    .size cpu_stack_top, . - cpu_stack_top

    .section .rodata.start, "a"
msg_main_returned:
    .asciz "main-returned"

    .section .bss.stacks, "aw", %nobits
    .balign 16
cpu_stacks:
    .space  MAX_CPUS * STACK_SIZE           // one stack per CPU
    .size cpu_stacks, . - cpu_stacks
