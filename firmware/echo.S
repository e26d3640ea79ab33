// echo: console input under the deterministic clock. Reads bytes from the PL011 until a
// newline, echoing each one, waiting in WFI (no timer armed, no interrupt enabled) while the
// receive FIFO is empty; then prints "sum=<decimal sum of the bytes>" and "PASS echo".
// Under --icount every vCPU is then idle with nothing armed: kvmdbg blocks until host input
// arrives and admits it at that clock, which wakes the WFI (docs/architecture.md).
// Registers: UARTFR.RXFE is bit 4 (PL011 TRM DDI 0183, 3.3.3).

    .include "platform.inc"

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
    mov     x19, #0                         // running sum of the bytes
    movz    x20, #(UART_BASE >> 16), lsl #16 // x20 = PL011 base
1:  ldr     w0, [x20, #UARTFR]              // flag register
    tbz     w0, #4, 2f                      // RXFE clear: a byte is waiting
    wfi                                     // nothing yet: wait
    b       1b                              // and look again
    .global got_byte
got_byte:
2:  ldr     w0, [x20, #UARTDR]              // take the byte
    and     w0, w0, #0xff                   // data bits only
    add     x19, x19, x0                    // add it to the sum
    cmp     w0, #'\n'                       // end of the line?
    b.eq    3f                              // yes: report
    bl      putc                            // echo it
    b       1b                              // next byte
    .global report
report:
3:  adrp    x0, msg_sum                     // "\nsum="
    add     x0, x0, :lo12:msg_sum           // ...
    bl      puts                            // print it
    mov     x0, x19                         // the sum
    bl      putdec                          // in decimal
    mov     w0, #'\n'                       // end the line
    bl      putc                            // print it
    b       pass                            // "PASS echo" and power off
    .size main, . - main
