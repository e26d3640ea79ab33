//! System instructions with deterministic results (Arm ARM C5.2 "A64 system instructions",
//! C5.3 system register encodings): hints and barriers, MSR DAIFSet/DAIFClr, MRS/MSR of
//! NZCV, DAIF, CurrentEL, TPIDR_EL0/EL1, TPIDRRO_EL0, FPCR (rounding/FZ/DN/AHP bits only) and
//! FPSR (cumulative flags only). ID registers are left out: they describe each CPU.

use super::gen::Gen;

/// MRS Xt, (op0=3, op1, CRn, CRm, op2): 1101010100 1 1 1 op1 CRn CRm op2 Rt.
fn mrs(op1: u32, crn: u32, crm: u32, op2: u32, rt: u32) -> u32 {
    0xd538_0000 | op1 << 16 | crn << 12 | crm << 8 | op2 << 5 | rt
}

/// MSR (op0=3, ...), Xt: as MRS with L (bit 21) clear.
fn msr(op1: u32, crn: u32, crm: u32, op2: u32, rt: u32) -> u32 {
    mrs(op1, crn, crm, op2, rt) & !(1 << 21)
}

/// (op1, CRn, CRm, op2, writable) of the registers used.
const REGS: [(u32, u32, u32, u32, bool); 6] = [
    (3, 4, 2, 0, true),  // NZCV
    (3, 4, 2, 1, false), // DAIF (written only through DAIFSet/DAIFClr here)
    (0, 4, 2, 2, false), // CurrentEL
    (3, 13, 0, 2, true), // TPIDR_EL0
    (0, 13, 0, 4, true), // TPIDR_EL1
    (3, 13, 0, 3, true), // TPIDRRO_EL0
];

pub fn system(g: &mut Gen) {
    match g.rng.below(6) {
        0 => {
            let w = g.rng.pick(&[
                0xd503_201fu32, // nop
                0xd503_3bbf,    // dmb ish
                0xd503_3f9f,    // dsb sy
                0xd503_3fdf,    // isb
            ]);
            // YIELD is left out: QEMU 7.2's gdb single-step runs one more instruction after
            // it (TCG ends the block with EXCP_YIELD), so the two cannot be compared.
            g.emit(w);
        }
        1 => {
            let imm = g.rng.below(16) as u32;
            let op2 = g.rng.pick(&[6u32, 7]); // DAIFSet, DAIFClr
            g.emit(0xd503_401f | imm << 8 | op2 << 5); // msr daifset/daifclr, #imm
        }
        2 | 3 => {
            let (op1, crn, crm, op2, writable) = g.rng.pick(&REGS);
            if writable && g.rng.bit() == 1 {
                let rt = g.src();
                g.emit(msr(op1, crn, crm, op2, rt));
            } else {
                let rt = g.dst_or_zr();
                g.emit(mrs(op1, crn, crm, op2, rt));
            }
        }
        _ => {
            // FPCR (3,4,4,0) bits 26:22 (AHP, DN, FZ, RMode) or FPSR (3,4,4,1) bits 27, 7, 4:0.
            let (op2, mask) = g.rng.pick(&[(0u32, 0x07c0_0000u64), (1, 0x0800_009f)]);
            let rt = g.dst();
            let v = g.rng.next() & mask;
            super::gen::mov64(g, rt, v);
            g.emit(msr(3, 4, 4, op2, rt));
            let rd = g.dst_or_zr();
            g.emit(mrs(3, 4, 4, op2, rd));
        }
    }
}
