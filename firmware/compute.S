// compute: a compute-bound loop for the model-versus-QEMU benchmark (scripts/bench-model.sh):
// 2^21 iterations of multiply-accumulate, indexed stores and loads and a compare-and-branch
// (8 instructions each, about 16.8 million in all), then a check against the closed forms
// sum(i^2) = (N-1)N(2N-1)/6 and sum(i) = N(N-1)/2, "PASS compute" and power off.

    .include "platform.inc"
    .include "macros.inc"

    .equ ITERATIONS, 1 << 21                // N

    .section .rodata
    .global fw_name
fw_name:
    .asciz "compute"

    .bss
    .balign 16
ring:
    .space  256 * 8                         // a small ring the loop stores to and loads from

    .text
    .global main
    .type main, %function
main:
    say     "compute: 2^21 iterations\n"
    mov     x1, #0                          // i
    mov     x2, #0                          // sum of i^2
    mov     x7, #0                          // sum of i (through memory)
    mov     x3, #ITERATIONS                 // N
    adrp    x4, ring                        // the ring
    add     x4, x4, :lo12:ring              // ...
1:  madd    x2, x1, x1, x2                  // sum += i * i
    and     x5, x1, #0xff                   // slot = i mod 256
    str     x1, [x4, x5, lsl #3]            // ring[slot] = i
    ldr     x6, [x4, x5, lsl #3]            // read it back
    add     x7, x7, x6                      // sum of i
    add     x1, x1, #1                      // next i
    cmp     x1, x3                          // done?
    b.lo    1b                              // no: loop
    expect  x2, 0x2aaaa8aaaab00000, sum-of-squares // (N-1)N(2N-1)/6 for N = 2^21
    expect  x7, 0x1fffff00000, sum              // N(N-1)/2
    b       pass                            // "PASS compute", power off
    .size main, . - main
