// uart.S: polled output on the PL011 at UART_BASE: uart_init, putc, puts, puthex, putdec.
//
// Register contract: every routine clobbers at most x0-x7 (AAPCS64 argument/scratch registers)
// and preserves x8-x30 and SP. Only putdec touches the stack. Not reentrant: on SMP, callers
// serialise with spinlock.S.

    .include "platform.inc"

    .text

// uart_init: set UARTCR = UARTEN | TXE | RXE. QEMU transmits without it; a real PL011 and
// a faithful model need UARTEN and TXE set (PL011 TRM 3.3.8). Clobbers x1, x2.
    .global uart_init
    .type uart_init, %function
uart_init:
    movz    x1, #(UART_BASE >> 16), lsl #16 // x1 = PL011 base
    mov     w2, #UARTCR_ENABLE              // UARTEN | TXE | RXE
    str     w2, [x1, #UARTCR]               // write UARTCR (32-bit access)
    ret                                     // done
    .size uart_init, . - uart_init

// putc: w0 = byte to send. Waits while UARTFR.TXFF is set, then writes UARTDR.
// Clobbers x1, x2.
    .global putc
    .type putc, %function
putc:
    movz    x1, #(UART_BASE >> 16), lsl #16 // x1 = PL011 base
1:  ldr     w2, [x1, #UARTFR]               // read the flag register
    tbnz    w2, #UARTFR_TXFF_BIT, 1b        // transmit FIFO full: poll again
    and     w2, w0, #0xff                   // only the byte is data
    str     w2, [x1, #UARTDR]               // transmit it (32-bit access)
    ret                                     // done
    .size putc, . - putc

// puts: x0 = NUL-terminated string. Clobbers x0-x4.
    .global puts
    .type puts, %function
puts:
    mov     x3, x0                          // x3 = cursor
    mov     x4, x30                         // keep the return address (putc leaves x4 alone)
1:  ldrb    w0, [x3], #1                    // next byte, advance cursor
    cbz     w0, 2f                          // NUL: finished
    bl      putc                            // send it
    b       1b                              // and the next
2:  ret     x4                              // return to the caller
    .size puts, . - puts

// puthex: x0 = value; prints "0x" and 16 lowercase hex digits. Clobbers x0-x6.
    .global puthex
    .type puthex, %function
puthex:
    mov     x5, x30                         // keep the return address
    mov     x3, x0                          // x3 = value
    mov     w0, #'0'                        // prefix "0x"
    bl      putc                            // '0'
    mov     w0, #'x'                        // ...
    bl      putc                            // 'x'
    mov     x4, #60                         // shift of the most significant nibble
1:  lsr     x0, x3, x4                      // bring the nibble down
    and     x0, x0, #0xf                    // isolate it
    add     x6, x0, #'0'                    // digit if < 10
    add     x0, x0, #('a' - 10)             // letter if >= 10
    cmp     x6, #'9'                        // was it a decimal digit?
    csel    x0, x6, x0, ls                  // pick digit or letter
    bl      putc                            // print it
    subs    x4, x4, #4                      // next nibble
    b.ge    1b                              // until shift < 0
    ret     x5                              // return to the caller
    .size puthex, . - puthex

// putdec: x0 = unsigned value; prints it in decimal. Clobbers x0-x7; uses 48 bytes of stack.
    .global putdec
    .type putdec, %function
putdec:
    stp     x29, x30, [sp, #-48]!           // frame; bytes sp+16..sp+47 are the digit buffer
    mov     x29, sp                         // frame pointer
    mov     x3, x0                          // x3 = value still to print
    add     x4, sp, #48                     // x4 = one past the buffer end
    strb    wzr, [x4, #-1]!                 // terminating NUL
    mov     x5, #10                         // divisor
1:  udiv    x6, x3, x5                      // quotient
    msub    x7, x6, x5, x3                  // remainder = value - quotient * 10
    add     w7, w7, #'0'                    // to ASCII
    strb    w7, [x4, #-1]!                  // store digits from the right
    mov     x3, x6                          // continue with the quotient
    cbnz    x3, 1b                          // until nothing is left (prints "0" for 0)
    mov     x0, x4                          // first digit
    bl      puts                            // print the digits
    ldp     x29, x30, [sp], #48             // drop the frame
    ret                                     // done
    .size putdec, . - putdec
