//! Unit tests of `fp.rs` / `fp_conv.rs` on known IEEE results (values checked against
//! the host's IEEE arithmetic where it applies: round to nearest even, no FZ/DN).

use super::*;

fn f32b(x: f32) -> u64 {
    x.to_bits() as u64
}
fn f64b(x: f64) -> u64 {
    x.to_bits()
}

#[test]
fn basic_arithmetic_matches_ieee() {
    let mut f = Fp::new(0);
    let xs = [1.5f64, -3.25, 1e-310, 7.0e300, 0.1, -0.0, 3.0, 1.0 / 3.0];
    for &a in &xs {
        for &b in &xs {
            assert_eq!(
                f.add(f64b(a), f64b(b), Fmt::D, false),
                f64b(a + b),
                "{a} + {b}"
            );
            assert_eq!(
                f.add(f64b(a), f64b(b), Fmt::D, true),
                f64b(a - b),
                "{a} - {b}"
            );
            assert_eq!(
                f.mul(f64b(a), f64b(b), Fmt::D, false),
                f64b(a * b),
                "{a} * {b}"
            );
            if b != 0.0 {
                assert_eq!(f.div(f64b(a), f64b(b), Fmt::D), f64b(a / b), "{a} / {b}");
            }
            assert_eq!(
                f.mul_add(f64b(a), f64b(b), f64b(b), Fmt::D),
                f64b(b.mul_add(b, a))
            );
        }
        if a >= 0.0 {
            assert_eq!(f.sqrt(f64b(a), Fmt::D), f64b(a.sqrt()), "sqrt {a}");
        }
        let s = a as f32;
        assert_eq!(
            f.convert(f64b(a), Fmt::D, Fmt::S, Rounding::TieEven),
            f32b(s)
        );
    }
    assert_eq!(f.add(f32b(1.0), f32b(2.0), Fmt::S, false), f32b(3.0));
    assert_eq!(f.sqrt(f32b(2.0), Fmt::S), f32b(2f32.sqrt()));
}

#[test]
fn flags_and_special_values() {
    let mut f = Fp::new(0);
    assert_eq!(f.div(f64b(1.0), 0, Fmt::D), f64b(f64::INFINITY));
    assert_eq!(f.flags, DZC);
    let mut f = Fp::new(0);
    assert_eq!(
        f.mul(f64b(f64::INFINITY), 0, Fmt::D, false),
        0x7ff8_0000_0000_0000
    );
    assert_eq!(f.flags, IOC);
    let mut f = Fp::new(0);
    f.add(f64b(0.1), f64b(0.2), Fmt::D, false);
    assert_eq!(f.flags, IXC);
    let mut f = Fp::new(0);
    assert_eq!(
        f.mul(f64b(1e300), f64b(1e300), Fmt::D, false),
        f64b(f64::INFINITY)
    );
    assert_eq!(f.flags, OFC | IXC);
    // Signalling NaN quieted, IOC.
    let mut f = Fp::new(0);
    assert_eq!(f.add(0x7f80_0001, f32b(1.0), Fmt::S, false), 0x7fc0_0001);
    assert_eq!(f.flags, IOC);
    // FZ: a denormal input is zero (IDC), a tiny result is zero (UFC).
    let mut f = Fp::new(1 << 24);
    assert_eq!(f.add(1, 0, Fmt::S, false), 0);
    assert_eq!(f.flags, IDC);
    // Round towards minus infinity: x - x is -0.
    let mut f = Fp::new(2 << 22);
    assert_eq!(f.add(f64b(1.0), f64b(1.0), Fmt::D, true), f64b(-0.0));
}

#[test]
fn conversions_round_as_asked() {
    let mut f = Fp::new(0);
    assert_eq!(
        f.fp_to_fixed(f64b(-2.5), Fmt::D, 0, false, 32, Rounding::TieEven) as u32,
        -2i32 as u32
    );
    assert_eq!(
        f.fp_to_fixed(f64b(-2.5), Fmt::D, 0, false, 32, Rounding::TieAway) as u32,
        -3i32 as u32
    );
    assert_eq!(
        f.fp_to_fixed(f64b(2.5), Fmt::D, 0, true, 64, Rounding::PosInf),
        3
    );
    assert_eq!(
        f.fp_to_fixed(f64b(-1.0), Fmt::D, 0, true, 64, Rounding::Zero),
        0
    );
    assert_eq!(f.flags, IXC | IOC);
    assert_eq!(
        f.round_int(f64b(-0.3), Fmt::D, Rounding::TieEven, false),
        f64b(-0.0)
    );
    assert_eq!(
        f.round_int(f64b(2.5), Fmt::D, Rounding::TieEven, false),
        f64b(2.0)
    );
    assert_eq!(f.fixed_to_fp(-3, 1, Fmt::S, Rounding::TieEven), f32b(-1.5));
    assert_eq!(
        f.convert(f32b(1.0), Fmt::S, Fmt::H, Rounding::TieEven),
        0x3c00
    );
    assert_eq!(
        f.convert(0x3c00, Fmt::H, Fmt::D, Rounding::TieEven),
        f64b(1.0)
    );
}

#[test]
fn estimates_follow_the_arm_tables() {
    let mut f = Fp::new(0);
    // FRECPE(1.0) = FRSQRTE(1.0) = 0x3f7f8000 (0.998046875), FRSQRTE(4.0) = 0x3eff8000.
    assert_eq!(f.recip_estimate(f32b(1.0), Fmt::S), 0x3f7f_8000);
    assert_eq!(f.rsqrt_estimate(f32b(1.0), Fmt::S), 0x3f7f_8000);
    assert_eq!(f.rsqrt_estimate(f32b(4.0), Fmt::S), 0x3eff_8000);
    assert_eq!(f.step_fused(f32b(1.0), f32b(1.5), Fmt::S, false), f32b(0.5));
    // FRECPX(3.0): exponent field 0x80 inverted is 0x7f, fraction cleared: 1.0.
    assert_eq!(f.recpx(f32b(3.0), Fmt::S), f32b(1.0));
}
