// hello: the smallest firmware. Prints a greeting, then "PASS hello", then powers off.
// Exercises only the boot path (_start), 32-bit UART stores/loads and PSCI SYSTEM_OFF.

    .section .rodata
    .global fw_name
fw_name:
    .asciz "hello"
greeting:
    .asciz "Hello from kvmdbg firmware\n"

    .text
    .global main
    .type main, %function
main:
    adrp    x0, greeting                    // the greeting
    add     x0, x0, :lo12:greeting          // ...
    bl      puts                            // print it
    b       pass                            // "PASS hello" and power off
    .size main, . - main
