// echo: console input through the PL011's receive interrupt (common/echo.inc). Routes the
// UART's SPI (INTID 33) to this CPU through the GICv3 and unmasks the UART's receive
// interrupts, keeping PSTATE.I set: WFI wakes on the pending interrupt, no handler runs.
// Then reads bytes until a newline, echoing each, waiting in WFI while the receive FIFO is
// empty, and prints "sum=<decimal sum of the bytes, newline included>" and "PASS echo".
// No timer is armed: under --icount every vCPU is then idle with nothing armed, and kvmdbg
// waits for host input and admits it at that clock (docs/architecture.md).

    .include "platform.inc"
    .include "gic.inc"
    .include "echo.inc"

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
    uart_rx_irq_setup                       // x20 = PL011 base, receive interrupt to CPU 0
    echo_line                               // x19 = sum of the line
    .global report
report:
    print_sum msg_sum                       // "sum=<x19>" (echo.inc)
    b       pass                            // "PASS echo" and power off
    .size main, . - main
