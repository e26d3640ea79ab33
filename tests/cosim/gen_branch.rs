//! Forward branches of every kind (Arm ARM C4.1.89 "Branches, Exception Generating and
//! System instructions"): B, BL, B.cond, CBZ/CBNZ, TBZ/TBNZ, BR/BLR/RET via an ADR-loaded
//! X25. Each skips 0-4 filler instructions, so taken and not-taken paths both reach the
//! epilogue and no loop can form.

use super::gen::Gen;
use super::gen_alu;

/// Simple ALU instructions used as skipped-over filler.
fn filler(g: &mut Gen, n: u32) {
    for _ in 0..n {
        match g.rng.below(3) {
            0 => gen_alu::add_sub_imm(g),
            1 => gen_alu::logical_shifted(g),
            _ => gen_alu::move_wide(g),
        }
    }
}

/// Emits one branch over `skip` filler instructions.
pub fn branch(g: &mut Gen) {
    let skip = g.rng.below(5) as u32;
    let off = skip + 1; // in words, from the branch to the instruction after the filler
    let w = match g.rng.below(8) {
        0 => 0x1400_0000 | off,                                   // b
        1 => 0x9400_0000 | off,                                   // bl (writes X30)
        2 | 3 => 0x5400_0000 | off << 5 | g.rng.below(16) as u32, // b.cond
        4 => {
            // cbz/cbnz: sf 011010 op imm19 Rt
            let rt = if g.rng.below(4) == 0 { 31 } else { g.src() };
            g.rng.bit() << 31 | 0x3400_0000 | g.rng.bit() << 24 | off << 5 | rt
        }
        5 => {
            // tbz/tbnz: b5 011011 op b40 imm14 Rt
            let bit = g.rng.below(64) as u32;
            (bit >> 5) << 31
                | 0x3600_0000
                | g.rng.bit() << 24
                | (bit & 31) << 19
                | off << 5
                | g.src()
        }
        _ => {
            // adr x25, target; br/blr/ret x25: target = adr + 8 + 4 * skip.
            let imm = 8 + 4 * skip;
            g.emit((imm & 3) << 29 | 0x1000_0000 | (imm >> 2) << 5 | 25); // adr x25, #imm
            g.rng.pick(&[0xd61f_0000u32, 0xd63f_0000, 0xd65f_0000]) | 25 << 5 // br/blr/ret x25
        }
    };
    g.emit(w);
    filler(g, skip);
}
