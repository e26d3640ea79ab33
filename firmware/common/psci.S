// psci.S: PSCI calls over HVC (SMC Calling Convention, Arm DEN 0028, conduit HVC #0 as QEMU
// virt and KVM advertise it for an EL1 guest).
//
// psci_call: x0 = function id, x1-x3 = arguments -> x0 = result. SMCCC v1.0 lets the callee
// clobber x0-x17, so callers must assume that.
// system_off: PSCI SYSTEM_OFF; never returns (spins in WFI if the call comes back).

    .include "platform.inc"

    .text
    .global psci_call
    .type psci_call, %function
psci_call:
    hvc     #0                              // call the hypervisor's PSCI; result in x0
    ret                                     // back to the caller
    .size psci_call, . - psci_call

    .global system_off
    .type system_off, %function
system_off:
    movz    w0, #(PSCI_SYSTEM_OFF >> 16), lsl #16   // SYSTEM_OFF id, high half (w0 zero-extends)
    movk    w0, #(PSCI_SYSTEM_OFF & 0xffff)         // low half
    hvc     #0                              // power off; does not return on success
1:  wfi                                     // the call failed: stay here
    b       1b                              // forever
    .size system_off, . - system_off
