//! Interpreter tests: each snippet is assembled with `aarch64-linux-gnu-as` (see
//! `testutil::asm`), runs from RAM base and ends at `brk #0x7ff`.

use super::exception::Exc;
use super::*;
use crate::a64::esr::ec;
use crate::backend::model::testutil::{asm, cpu_with, RAM};

const END: u64 = 0x7ff;
const DATA: u64 = RAM + 0x10000;

/// Runs until the first stop.
fn run(cpu: &mut Cpu) -> Stop {
    for _ in 0..100_000 {
        if let Err(s) = cpu.step() {
            return s;
        }
    }
    panic!("no stop after 100000 instructions (pc {:#x})", cpu.st.pc);
}

/// Assembles `src`, runs it to `brk #0x7ff`, returns the CPU.
fn exec(src: &str) -> Option<Cpu> {
    let words = asm(&format!("{src}\nbrk #0x7ff"))?;
    let (mut cpu, _mem) = cpu_with(&words);
    match run(&mut cpu) {
        Stop::Exception(Exc {
            ec: ec::BRK64,
            iss: END,
            ..
        }) => Some(cpu),
        other => panic!("unexpected stop {other:?} at pc {:#x}", cpu.st.pc),
    }
}

fn nzcv(cpu: &Cpu) -> u64 {
    cpu.st.nzcv()
}

#[test]
fn add_sub_flags_edge_cases() {
    let Some(c) =
        exec("movz w1, #0x7fff, lsl #16\n movk w1, #0xffff\n mov w2, #1\n adds w0, w1, w2")
    else {
        return;
    };
    assert_eq!(c.st.x[0], 0x8000_0000);
    assert_eq!(nzcv(&c), 0b1001, "signed overflow: N and V");
    let c = exec("mov x1, #0\n mov x2, #1\n subs x0, x1, x2").unwrap();
    assert_eq!(c.st.x[0], u64::MAX);
    assert_eq!(nzcv(&c), 0b1000, "borrow: C clear");
    let c = exec("mov x1, #5\n cmp x1, #5").unwrap();
    assert_eq!(nzcv(&c), 0b0110, "equal: Z and C");
    let c = exec("mov w1, #0x80000000\n cmp w1, #1").unwrap();
    assert_eq!(nzcv(&c), 0b0011, "INT_MIN - 1: C and V");
    let c = exec("mov x1, #-1\n adds x0, x1, #1").unwrap();
    assert_eq!((c.st.x[0], nzcv(&c)), (0, 0b0110), "carry out to zero");
    let c = exec("mov x1, #-1\n mov x2, #0\n cmp x2, #0\n adcs x0, x1, xzr").unwrap();
    assert_eq!((c.st.x[0], nzcv(&c)), (0, 0b0110), "adcs with carry in");
    let c = exec("mov x1, #3\n cmp x1, #4\n sbc x0, x1, xzr").unwrap();
    assert_eq!(c.st.x[0], 2, "sbc with borrow");
    let c = exec("mov w1, #0xffffffff\n add x0, x2, w1, sxtw #2").unwrap();
    assert_eq!(c.st.x[0], (-4i64) as u64, "extended register");
    let c = exec("mov x1, #0x1000\n mov sp, x1\n sub sp, sp, #16\n mov x0, sp").unwrap();
    assert_eq!(c.st.x[0], 0xff0, "SP as operand and destination");
}

#[test]
fn logical_move_bitfield_extract() {
    let Some(c) = exec(
        "ldr x0, =0x00ff00ff00ff00ff\n orr x1, xzr, #0x5555555555555555\n ands x2, x0, #0xff00\n \
         movz x3, #0x1234, lsl #48\n movk x3, #0x5678\n movn w4, #0\n \
         eor x5, x0, x1, lsl #4\n bic x6, x0, x1\n orn w7, wzr, w0",
    ) else {
        return;
    };
    assert_eq!(c.st.x[0], 0x00ff_00ff_00ff_00ff);
    assert_eq!(c.st.x[1], 0x5555_5555_5555_5555);
    assert_eq!(c.st.x[2], 0);
    assert_eq!(nzcv(&c), 0b0100);
    assert_eq!(c.st.x[3], 0x1234_0000_0000_5678);
    assert_eq!(c.st.x[4], 0xffff_ffff);
    assert_eq!(c.st.x[5], 0x00ff_00ff_00ff_00ff ^ 0x5555_5555_5555_5550);
    assert_eq!(c.st.x[6], 0x00aa_00aa_00aa_00aa);
    assert_eq!(c.st.x[7], 0xff00_ff00);
    let c = exec(
        "mov x0, #0xf0f0\n ubfx x1, x0, #4, #8\n sbfx x2, x0, #4, #8\n mov x3, #-1\n bfi x3, xzr, #8, #16\n \
         lsr x4, x0, #4\n asr x5, x3, #60\n lsl w6, w0, #20\n sxtb x7, w0\n uxth w8, w3\n \
         ldr x9, =0x1122334455667788\n ldr x10, =0x99aabbccddeeff00\n extr x11, x9, x10, #16\n ror w12, w9, #8",
    )
    .unwrap();
    assert_eq!(c.st.x[1], 0x0f);
    assert_eq!(c.st.x[2], 0x0f);
    assert_eq!(c.st.x[3], 0xffff_ffff_ff00_00ff);
    assert_eq!(c.st.x[4], 0xf0f);
    assert_eq!(c.st.x[5], u64::MAX);
    assert_eq!(c.st.x[6], 0x0f00_0000);
    assert_eq!(c.st.x[7], 0xffff_ffff_ffff_fff0);
    assert_eq!(c.st.x[8], 0x00ff);
    assert_eq!(c.st.x[11], 0x7788_99aa_bbcc_ddee);
    assert_eq!(c.st.x[12], 0x8855_6677);
}

#[test]
fn multiply_divide_bit_ops() {
    let Some(c) = exec(
        "mov x0, #7\n mov x1, #-3\n mul x2, x0, x1\n madd x3, x0, x0, x1\n msub x4, x0, x0, x1\n \
         smull x5, w0, w1\n umull x6, w0, w1\n smulh x7, x1, x1\n umulh x8, x1, x1\n \
         udiv x9, x0, xzr\n sdiv x10, x1, x0\n ldr x11, =0x8000000000000000\n mov x12, #-1\n sdiv x13, x11, x12\n \
         mov w14, #-7\n mov w15, #2\n sdiv w16, w14, w15\n udiv w17, w14, w15",
    ) else {
        return;
    };
    assert_eq!(c.st.x[2], (-21i64) as u64);
    assert_eq!(c.st.x[3], 46);
    assert_eq!(c.st.x[4], (-52i64) as u64);
    assert_eq!(c.st.x[5], (-21i64) as u64);
    assert_eq!(c.st.x[6], 7 * 0xffff_fffd);
    assert_eq!(c.st.x[7], 0);
    assert_eq!(c.st.x[8], 0xffff_ffff_ffff_fffa);
    assert_eq!(c.st.x[9], 0, "divide by zero gives 0");
    assert_eq!(c.st.x[10], 0);
    assert_eq!(c.st.x[13], 0x8000_0000_0000_0000, "INT_MIN / -1 wraps");
    assert_eq!(c.st.x[16], 0xffff_fffd);
    assert_eq!(c.st.x[17], 0x7fff_fffc);
    let c = exec(
        "mov x0, #0x00f0\n clz x1, x0\n clz w2, wzr\n mov x3, #-1\n cls x4, x3\n rbit w5, w0\n \
         ldr x6, =0x0102030405060708\n rev x7, x6\n rev16 x8, x6\n rev32 x9, x6\n rev w10, w6\n \
         mov x11, #3\n mov x12, #1\n lslv x13, x12, x11\n mov x14, #-16\n asrv x15, x14, x12\n rorv w16, w12, w12",
    )
    .unwrap();
    assert_eq!(c.st.x[1], 56);
    assert_eq!(c.st.x[2], 32);
    assert_eq!(c.st.x[4], 63);
    assert_eq!(c.st.x[5], 0x0f00_0000);
    assert_eq!(c.st.x[7], 0x0807_0605_0403_0201);
    assert_eq!(c.st.x[8], 0x0201_0403_0605_0807);
    assert_eq!(c.st.x[9], 0x0403_0201_0807_0605);
    assert_eq!(c.st.x[10], 0x0807_0605);
    assert_eq!(c.st.x[13], 8);
    assert_eq!(c.st.x[15], (-8i64) as u64);
    assert_eq!(c.st.x[16], 0x8000_0000);
}

#[test]
fn conditional_select_and_compare() {
    let Some(c) = exec(
        "mov x0, #1\n mov x1, #2\n cmp x0, x1\n csel x2, x0, x1, lt\n csinc x3, x0, x1, ge\n \
         csinv x4, x0, x1, ge\n csneg x5, x0, x1, ge\n cset w6, ne\n \
         ccmp x0, #1, #0b0010, eq\n cset w7, eq\n cmp x0, x0\n ccmp x0, #2, #0b0000, eq\n cset w8, lt\n \
         ccmn x0, #1, #0b1111, eq",
    ) else {
        return;
    };
    assert_eq!(c.st.x[2], 1);
    assert_eq!(c.st.x[3], 3);
    assert_eq!(c.st.x[4], !2u64);
    assert_eq!(c.st.x[5], (-2i64) as u64);
    assert_eq!(c.st.x[6], 1);
    assert_eq!(
        c.st.x[7], 0,
        "ccmp with failing condition loads #nzcv (C only)"
    );
    assert_eq!(c.st.x[8], 1, "ccmp compares 1 with 2");
    assert_eq!(nzcv(&c), 0b1111, "ccmn with failing condition");
}

#[test]
fn branches() {
    let Some(c) = exec(
        "mov x0, #0\n b 1f\n mov x0, #99\n1: bl 2f\n add x0, x0, #1\n b 3f\n2: add x0, x0, #10\n ret\n\
         3: cbz x0, 4f\n cbnz x0, 5f\n4: mov x0, #77\n5: mov x1, #0b100\n tbz x1, #2, 4b\n tbnz x1, #2, 6f\n mov x0, #55\n\
         6: adr x2, 7f\n blr x2\n b 8f\n7: add x0, x0, #100\n br x30\n8: cmp x0, #111\n b.ne 4b\n adrp x3, 8b",
    ) else {
        return;
    };
    assert_eq!(c.st.x[0], 111);
    assert_eq!(c.st.x[3], RAM, "adrp gives the 4 KiB page");
}

#[test]
fn load_store_addressing_modes() {
    let Some(c) = exec(&format!(
        "ldr x1, ={DATA:#x}\n ldr x2, =0x1122334455667788\n str x2, [x1]\n ldr w3, [x1, #4]\n \
         ldrb w4, [x1, #1]\n ldrsb x5, [x1]\n ldrsh w6, [x1, #2]\n ldrsw x7, [x1, #4]\n \
         str x2, [x1, #16]!\n ldr x8, [x1], #-8\n mov x9, #2\n mov x19, #1\n ldr x10, [x1, x19, lsl #3]\n \
         mov w11, #-1\n ldur w12, [x1, #12]\n strh w11, [x1, w9, sxtw]\n ldrh w13, [x1, #2]\n \
         ldr x14, 1f\n b 2f\n .balign 8\n1: .quad 0xdeadbeefcafef00d\n2: ldr w15, 1b\n ldrsw x16, 1b\n \
         sttr w2, [x1, #32]\n ldtr x17, [x1, #32]\n ldursh x18, [x1, #32]"
    )) else {
        return;
    };
    assert_eq!(c.st.x[3], 0x1122_3344);
    assert_eq!(c.st.x[4], 0x77);
    assert_eq!(c.st.x[5], 0xffff_ffff_ffff_ff88);
    assert_eq!(c.st.x[6], 0x0000_5566);
    assert_eq!(c.st.x[7], 0x1122_3344);
    assert_eq!(c.st.x[8], 0x1122_3344_5566_7788, "pre-index wrote at +16");
    assert_eq!(c.st.x[1], DATA + 8, "post-index writeback");
    assert_eq!(c.st.x[10], 0x1122_3344_5566_7788, "register offset, lsl #3");
    assert_eq!(c.st.x[12], 0x1122_3344, "unscaled");
    assert_eq!(c.st.x[13], 0xffff, "register offset, sxtw");
    assert_eq!(c.st.x[14], 0xdead_beef_cafe_f00d);
    assert_eq!(c.st.x[15], 0xcafe_f00d);
    assert_eq!(c.st.x[16], 0xffff_ffff_cafe_f00d);
    assert_eq!(c.st.x[17], 0x5566_7788, "sttr/ldtr");
    assert_eq!(c.st.x[18], 0x7788);
}

#[test]
fn pairs_and_simd_registers() {
    let Some(c) = exec(&format!(
        "ldr x1, ={DATA:#x}\n mov x2, #1\n mov x3, #-2\n stp x2, x3, [x1, #16]!\n ldp x4, x5, [x1], #16\n \
         stp w3, w2, [x1]\n ldpsw x6, x7, [x1]\n ldp w8, w9, [x1]\n sub sp, x1, #64\n stp x2, x3, [sp, #-16]!\n \
         ldr x10, [sp, #8]\n mov x11, sp\n \
         mov x12, #0x300000\n msr cpacr_el1, x12\n isb\n \
         movi v0.16b, #0xab\n str q0, [x1, #32]\n ldr d1, [x1, #32]\n ldp q2, q3, [x1, #32]\n \
         fmov x13, d1\n fmov d4, x3\n ins v4.d[1], x2\n umov w14, v4.h[4]\n dup v5.4s, w2\n \
         mov x15, v5.d[1]\n eor v6.16b, v0.16b, v0.16b\n fmov x16, d6\n fmov s7, #1.0\n fmov w17, s7\n \
         ldr s8, [x1, #32]\n str h8, [x1, #64]\n ldrb w18, [x1, #64]\n smov x19, v0.b[0]\n \
         orr v9.16b, v4.16b, v5.16b\n mov x20, v9.d[0]"
    )) else {
        return;
    };
    assert_eq!((c.st.x[4], c.st.x[5]), (1, (-2i64) as u64));
    assert_eq!(c.st.x[1], DATA + 32, "pre then post writeback");
    assert_eq!(
        (c.st.x[6], c.st.x[7]),
        ((-2i64) as u64, 1),
        "ldpsw sign-extends"
    );
    assert_eq!((c.st.x[8], c.st.x[9]), (0xffff_fffe, 1));
    assert_eq!(c.st.x[10], (-2i64) as u64);
    assert_eq!(c.st.x[11], DATA - 48);
    assert_eq!(c.st.v[0], u128::from_le_bytes([0xab; 16]));
    assert_eq!(c.st.v[1], 0xabab_abab_abab_abab, "D load zeroes the top");
    assert_eq!(c.st.v[2], c.st.v[0]);
    assert_eq!(c.st.x[13], 0xabab_abab_abab_abab);
    assert_eq!(c.st.v[4], 1u128 << 64 | 0xffff_ffff_ffff_fffe);
    assert_eq!(c.st.x[14], 1);
    assert_eq!(c.st.x[15], 0x0000_0001_0000_0001);
    assert_eq!(c.st.x[16], 0);
    assert_eq!(c.st.x[17], 0x3f80_0000);
    assert_eq!(c.st.x[18], 0xab);
    assert_eq!(c.st.x[19], 0xffff_ffff_ffff_ffab);
    assert_eq!(c.st.x[20], 0xffff_ffff_ffff_ffff);
}

#[test]
fn exclusives_and_atomics() {
    let Some(c) = exec(&format!(
        "ldr x1, ={DATA:#x}\n mov x2, #5\n str x2, [x1]\n \
         ldaxr x3, [x1]\n add x3, x3, #1\n stlxr w4, x3, [x1]\n \
         stxr w5, x3, [x1]\n \
         ldxr w6, [x1]\n str w2, [x1]\n stxr w7, w6, [x1]\n \
         mov x8, #5\n mov x9, #9\n casal x8, x9, [x1]\n ldr x10, [x1]\n \
         mov x11, #3\n ldadd x11, x12, [x1]\n ldr x13, [x1]\n \
         mov x14, #0xff\n swpal x14, x15, [x1]\n mov x16, #0xf\n ldclr x16, x17, [x1]\n ldr x18, [x1]\n \
         mov x19, #-1\n ldsmin x19, x20, [x1]\n ldr x21, [x1]\n \
         ldxp x22, x23, [x1]\n stxp w24, x2, x2, [x1]\n \
         mov x26, #7\n mov x27, #8\n mov x28, #5\n mov x29, #5\n casp x28, x29, x26, x27, [x1]\n ldp x25, x30, [x1]"
    )) else {
        return;
    };
    assert_eq!(c.st.x[4], 0, "stlxr after ldaxr succeeds");
    assert_eq!(c.st.x[5], 1, "stxr without a monitor fails");
    assert_eq!(
        c.st.x[7], 1,
        "store to the location changes the value: stxr fails"
    );
    assert_eq!(c.st.x[8], 5, "cas returns the old value");
    assert_eq!(c.st.x[10], 9, "cas with a match stores");
    assert_eq!((c.st.x[12], c.st.x[13]), (9, 12));
    assert_eq!((c.st.x[15], c.st.x[17], c.st.x[18]), (12, 0xff, 0xf0));
    assert_eq!((c.st.x[20], c.st.x[21]), (0xf0, u64::MAX));
    assert_eq!(c.st.x[24], 0, "stxp after ldxp succeeds");
    assert_eq!((c.st.x[28], c.st.x[29]), (5, 5), "casp old values");
    assert_eq!((c.st.x[25], c.st.x[30]), (7, 8), "casp stored the new pair");
}

/// Random instruction words from random register states never panic (debug builds check
/// arithmetic overflow) and every step ends in a completed instruction or a stop.
#[test]
fn random_words_never_panic() {
    let (mut cpu, mem) = cpu_with(&[0]);
    let mut rng = crate::test_rng::Rng(0x9e37_79b9_7f4a_7c15);
    let mut next = || rng.next();
    cpu.st.sys.cpacr = crate::backend::model::cpu::state::CPACR_FPEN_ALL;
    for n in 0..200_000u32 {
        let word = next() as u32;
        crate::backend::model::testutil::load(&mem, RAM, &[word]);
        for r in 0..31 {
            // Half the registers point into RAM so loads and stores reach memory.
            cpu.st.x[r] = if r % 2 == 0 {
                RAM + (next() & 0xffff)
            } else {
                next()
            };
        }
        cpu.st.sp_el1 = RAM + 0x8000 + (next() & 0xff0);
        cpu.st.pstate = if n % 7 == 0 { 0x3c0 } else { 0x3c5 } | (next() & 0xf000_0000);
        cpu.st.pc = RAM;
        cpu.st.v[(n % 32) as usize] = (next() as u128) << 64 | next() as u128;
        if n % 5 == 0 {
            // Random translation regimes over random tables (the code page may be unmapped).
            cpu.st.sys.sctlr |= crate::a64::fields::sctlr::M;
            cpu.st.sys.tcr = next();
            cpu.st.sys.ttbr0 = RAM + (next() & 0xf_f000);
            cpu.st.sys.ttbr1 = next();
            cpu.tlb.flush();
        }
        match cpu.step() {
            Ok(()) => {}
            Err(Stop::Exception(e)) => cpu.take_exception(&e),
            Err(_) => {}
        }
        // Keep the MMU off: random MSRs may have turned it on.
        cpu.st.sys.sctlr = state::SCTLR_RESET;
        cpu.st.sys.cpacr = crate::backend::model::cpu::state::CPACR_FPEN_ALL;
    }
}
