// vectors.S: `default_vectors`, the trap table start.S installs in VBAR_EL1. Any exception
// reaching it is unexpected: it prints the vector offset, ESR_EL1, ELR_EL1 and FAR_EL1 and
// ends with "FAIL <fw_name> unexpected-exception <ESR_EL1>". A nested exception while doing
// that (e.g. the UART itself faulting) powers off silently instead of recursing.
//
// Layout (Arm ARM D1.10.2 "Exception vectors"): 16 entries of 0x80 bytes, table aligned to
// 2 KiB; entry offset = 0x200 * source (SP0, SPx, lower AArch64, lower AArch32) + 0x80 * type
// (sync, IRQ, FIQ, SError).

    .text

    .macro default_entry offset
    .balign 0x80
    mov     x21, #\offset                   // remember which entry was taken
    b       unexpected_exception            // report it
    .endm

    .balign 0x800
    .global default_vectors
default_vectors:
    .irp off, 0x000, 0x080, 0x100, 0x180, 0x200, 0x280, 0x300, 0x380, 0x400, 0x480, 0x500, 0x580, 0x600, 0x680, 0x700, 0x780
    default_entry \off
    .endr

unexpected_exception:
    adrp    x22, in_unexpected              // recursion guard
    add     x22, x22, :lo12:in_unexpected   // ...
    ldrb    w23, [x22]                      // already reporting one?
    cbnz    w23, system_off                 // yes: give up quietly
    mov     w23, #1                         // mark "reporting"
    strb    w23, [x22]                      // ...
    adrp    x0, msg_unexpected              // "unexpected exception: vector "
    add     x0, x0, :lo12:msg_unexpected    // ...
    bl      puts                            // print it
    mov     x0, x21                         // vector offset
    bl      puthex                          // print it
    adrp    x0, msg_esr                     // " esr "
    add     x0, x0, :lo12:msg_esr           // ...
    bl      puts                            // print it
    mrs     x0, esr_el1                     // syndrome
    bl      puthex                          // print it
    adrp    x0, msg_elr                     // " elr "
    add     x0, x0, :lo12:msg_elr           // ...
    bl      puts                            // print it
    mrs     x0, elr_el1                     // faulting/return address
    bl      puthex                          // print it
    adrp    x0, msg_far                     // " far "
    add     x0, x0, :lo12:msg_far           // ...
    bl      puts                            // print it
    mrs     x0, far_el1                     // fault address (UNKNOWN for non-aborts)
    bl      puthex                          // print it
    mov     w0, #'\n'                       // end the line
    bl      putc                            // print it
    adrp    x0, reason_unexpected           // FAIL reason
    add     x0, x0, :lo12:reason_unexpected // ...
    mrs     x1, esr_el1                     // FAIL value: the syndrome
    b       fail                            // verdict and power off

    .section .rodata.vectors, "a"
msg_unexpected:
    .asciz "unexpected exception: vector "
msg_esr:
    .asciz " esr "
msg_elr:
    .asciz " elr "
msg_far:
    .asciz " far "
reason_unexpected:
    .asciz "unexpected-exception"

    .section .bss.vectors, "aw", %nobits
in_unexpected:
    .byte   0
