// longrun: about one second of guest execution under the deterministic clock, for the
// recording benchmark (scripts/bench-record.sh, docs/benchmarks.md "Recording"): 2^24
// iterations of a four-instruction loop that adds to and stores a counter in RAM (67.1
// million instructions; at the clock's 62.5 MHz, 1.07 s), then "PASS longrun" and power off.
// `loop_start` runs once before the loop and `loop_end` once after it (breakpoint targets).

    .equ ITERATIONS, 1 << 24                // loop iterations

    .section .rodata
    .global fw_name
fw_name:
    .asciz "longrun"

    .data
    .balign 8
    .global counter
counter:
    .quad   0                               // stored to by every iteration

    .text
    .global main
    .type main, %function
main:
    adrp    x1, counter                     // x1 = &counter
    add     x1, x1, :lo12:counter           // ...
    mov     x0, #0                          // x0 = running total
    mov     x2, #ITERATIONS                 // x2 = iterations left
    .global loop_start
loop_start:
    nop                                     // executed once, before the loop
1:  add     x0, x0, x2                      // total += iterations left
    str     x0, [x1]                        // counter = total
    subs    x2, x2, #1                      // one iteration done
    b.ne    1b                              // until none left
    .global loop_end
loop_end:
    nop                                     // executed once, after the loop
    b       pass                            // "PASS longrun" and power off
    .size main, . - main
