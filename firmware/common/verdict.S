// verdict.S: the one verdict line every firmware ends with, then PSCI SYSTEM_OFF.
//
//   pass:  prints "PASS <fw_name>\n"
//   fail:  x0 = reason (NUL-terminated, no spaces), x1 = value;
//          prints "FAIL <fw_name> <reason> 0x<16 hex digits>\n"
// Each firmware defines the global string `fw_name`. Neither routine returns.

    .text
    .global pass
    .type pass, %function
pass:
    adrp    x0, msg_pass                    // "PASS "
    add     x0, x0, :lo12:msg_pass          // ...
    bl      puts                            // print it
    adrp    x0, fw_name                     // the firmware's name
    add     x0, x0, :lo12:fw_name           // ...
    bl      puts                            // print it
    mov     w0, #'\n'                       // end of the verdict line
    bl      putc                            // print it
    b       system_off                      // power off
    .size pass, . - pass

    .global fail
    .type fail, %function
fail:
    mov     x19, x0                         // keep the reason (puts clobbers x0-x4)
    mov     x20, x1                         // keep the value
    adrp    x0, msg_fail                    // "FAIL "
    add     x0, x0, :lo12:msg_fail          // ...
    bl      puts                            // print it
    adrp    x0, fw_name                     // the firmware's name
    add     x0, x0, :lo12:fw_name           // ...
    bl      puts                            // print it
    mov     w0, #' '                        // separator
    bl      putc                            // print it
    mov     x0, x19                         // reason
    bl      puts                            // print it
    mov     w0, #' '                        // separator
    bl      putc                            // print it
    mov     x0, x20                         // value
    bl      puthex                          // print it as hex
    mov     w0, #'\n'                       // end of the verdict line
    bl      putc                            // print it
    b       system_off                      // power off
    .size fail, . - fail

    .section .rodata.verdict, "a"
msg_pass:
    .asciz "PASS "
msg_fail:
    .asciz "FAIL "
