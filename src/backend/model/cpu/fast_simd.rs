//! Handlers for the decoded-instruction cache (`decode.rs`): the Advanced SIMD integer
//! three-same arithmetic vectorised loops spend their time in (ADD, SUB, MUL, MLA, MLS on
//! vectors of 8-, 16-, 32- or 64-bit lanes), lane by lane on the 128-bit register, with the
//! lane size and Q pre-decoded in `aux`.
//!
//! The reference is `simd_int.rs` (`Cpu::simd_three_same`): the same SIMD&FP access check
//! first, the same modular lane arithmetic, the same write of a 64-bit result (upper half
//! cleared). The decoder routes only the allocated encodings here (Arm ARM C4.1.95
//! "Advanced SIMD three same": no 64-bit lanes for MUL/MLA/MLS, no 1D form, PMUL stays with
//! the reference); `decode_tests.rs` runs both on random words and states.

use super::alu::ones;
use super::{Cpu, Stop};

/// The operations (const generic parameter of [`three_same`]).
pub const ADD: u8 = 0;
pub const SUB: u8 = 1;
pub const MUL: u8 = 2;
pub const MLA: u8 = 3;
pub const MLS: u8 = 4;

/// `aux` of [`three_same`]: the lane size in bits, and bit 8 set for a 128-bit (Q) form.
pub fn aux(esize: u32, q: bool) -> u64 {
    esize as u64 | (q as u64) << 8
}

/// ADD/SUB/MUL/MLA/MLS (vector): `OP` on each lane of Vn and Vm (and Vd for MLA/MLS).
pub fn three_same<const OP: u8>(c: &mut Cpu, i: u32, aux: u64) -> Result<(), Stop> {
    c.fp_check()?;
    let esize = (aux & 0xff) as u32;
    let q = aux & 0x100 != 0;
    let (n, m, d) = (c.vreg(i >> 5), c.vreg(i >> 16), c.vreg(i));
    let lanes = if q { 128 / esize } else { 64 / esize };
    let mask = ones(esize);
    let mut r = 0u128;
    for k in 0..lanes {
        let sh = k * esize;
        let (a, b, acc) = ((n >> sh) as u64, (m >> sh) as u64, (d >> sh) as u64);
        let v = match OP {
            ADD => a.wrapping_add(b),
            SUB => a.wrapping_sub(b),
            MUL => a.wrapping_mul(b),
            MLA => acc.wrapping_add(a.wrapping_mul(b)),
            _ => acc.wrapping_sub(a.wrapping_mul(b)),
        };
        r |= ((v & mask) as u128) << sh;
    }
    c.set_vreg(i, r, q);
    Ok(())
}
