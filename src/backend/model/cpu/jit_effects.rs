//! What a call-threaded op may do that the JIT's generated code must account for
//! (`jit_gen.rs`): whether its handler may write guest RAM, so that the block's words are
//! compared with RAM again after the call (`Gen::check_words`) only when they may have
//! changed.
//!
//! Owns [`may_write_ram`]. Pure decoding of the A64 encoding groups (Arm ARM C4.1, "A64
//! instruction set encoding"): no code generation, no CPU state.

/// Whether the handler of `word` (an op inside a block: of the branch, exception generation
/// and system group only the words of `decode::in_line`) may write
/// guest RAM. Only loads and stores (op0 = x1x0, Arm ARM C4.1.88) access memory; of those,
/// the forms below are loads, which never write it, and every other one is taken to write
/// (stores, atomics, exclusives, compare-and-swap, and any form not recognised here). Data
/// processing (integer, FP and Advanced SIMD) reads and writes registers only.
pub fn may_write_ram(word: u32) -> bool {
    use super::decode::in_line;
    let bit = |n: u32| (word >> n) & 1;
    if bit(27) == 0 || bit(25) != 0 {
        // Not a load or store. Of the system group only the words of `decode::in_line` run
        // inside blocks: its hints, barriers and MRS (op0 = 0, 2, 3) access no memory, its
        // SYS words (op0 = 1: DC ZVA) may write; any other is taken to write all the same.
        let op0 = (word >> 19) & 3;
        return (word >> 22) == 0b11_0101_0100 && (!in_line(word) || op0 == 1);
    }
    !is_load(word)
}

/// The load forms (Arm ARM C4.1.88 and its subsections).
fn is_load(word: u32) -> bool {
    let bit = |n: u32| (word >> n) & 1;
    let opc = (word >> 22) & 3;
    let simd = bit(26) == 1;
    // Load/store register (unsigned immediate, unscaled, pre/post-indexed, unprivileged,
    // register offset): size:V:opc. With V = 1 opc<0> is L; with V = 0 every opc but 00 is
    // a load or a prefetch (PRFM, size = 11 and opc = 10, writes nothing).
    let register_load = if simd { opc & 1 == 1 } else { opc != 0 };
    match (word >> 27) & 7 {
        0b111 => {
            let immediate = bit(24) == 1 || bit(21) == 0;
            let register_offset = bit(21) == 1 && (word >> 10) & 3 == 0b10;
            // bit 24 = 0, bit 21 = 1, bits 11:10 other than 10: atomic memory operations
            // and pointer-authenticated loads: taken to write.
            (immediate || register_offset) && register_load
        }
        // Load/store pair (no-allocate, post-indexed, offset, pre-indexed): L is bit 22.
        0b101 => bit(22) == 1,
        // Load register (literal) and PRFM (literal): bit 24 = 0 (bit 24 = 1 is the
        // memory-copy and tag group: taken to write).
        0b011 => bit(24) == 0,
        // Advanced SIMD load/store multiple and single structures (bits 31 = 0, 29:25 =
        // 00110): L is bit 22. Exclusives and ordered accesses (bits 29:24 = 001000) are
        // taken to write.
        0b001 => bit(31) == 0 && (word >> 25) & 0x1f == 0b00110 && bit(22) == 1,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use vm_memory::{Bytes, GuestAddress};

    use super::may_write_ram;
    use crate::backend::model::cpu::decode::decode;
    use crate::backend::model::cpu::decode::tests::{
        new_cpu, random_state, warm_data_tlb, window, WIN, WIN_LEN,
    };
    use crate::backend::model::testutil::ram;
    use crate::test_rng::Rng;

    /// Soundness against the handlers themselves: random load/store words (op0 = x1x0)
    /// run on random states over RAM of random bytes; whenever RAM changed, the word must be
    /// one that may write.
    #[test]
    fn every_word_whose_handler_wrote_ram_is_classified_as_writing() {
        let mut r = Rng(0x6566_6665_6374_7321);
        let mem = ram();
        let bytes: Vec<u8> = (0..WIN_LEN).map(|_| r.next() as u8).collect();
        mem.write_slice(&bytes, GuestAddress(WIN)).expect("window");
        let (mut wrote, mut loads_ran) = (0, 0);
        for case in 0..30_000 {
            let mut cpu = new_cpu(&mem);
            random_state(&mut r, &mut cpu);
            cpu.dbg.cfg.enable = false;
            if r.below(2) == 0 {
                warm_data_tlb(&mut cpu);
            }
            // op0 = x1x0 (bit 27 set, bit 25 clear); in half the cases a base register
            // (bits 9:5) that holds a pointer into the window more often.
            let mut word = (r.next() as u32 | 1 << 27) & !(1 << 25);
            if r.below(2) == 0 {
                word = (word & !(31 << 5)) | (r.below(8) as u32) << 5;
            }
            let d = decode(word);
            cpu.next_pc = cpu.st.pc.wrapping_add(4);
            let ok = (d.handler)(&mut cpu, word, d.aux).is_ok();
            if window(&mem) != bytes {
                wrote += 1;
                assert!(
                    may_write_ram(word),
                    "case {case}: {word:#010x} wrote RAM but is classified as a load"
                );
                mem.write_slice(&bytes, GuestAddress(WIN)).expect("window");
            } else if ok && !may_write_ram(word) {
                loads_ran += 1;
            }
        }
        assert!(wrote > 500, "only {wrote} words wrote RAM");
        assert!(loads_ran > 2_000, "only {loads_ran} loads completed");
    }

    #[test]
    fn loads_never_write_and_everything_else_that_accesses_memory_may() {
        let loads = [
            0xf940_0020u32, // ldr x0, [x1]
            0x3940_0101,    // ldrb w1, [x8]
            0x3840_1402,    // ldrb w2, [x0], #1
            0xb862_7882,    // ldr w2, [x4, x2, lsl #2]
            0x38c0_0020,    // ldursb w0, [x1]
            0xf880_0020,    // prfum pldl1keep, [x1]  (a prefetch: writes nothing)
            0xa940_7bfd,    // ldp x29, x30, [sp]
            0xa8c1_7bfd,    // ldp x29, x30, [sp], #16
            0x3dc0_0001,    // ldr q1, [x0]
            0xfd40_0020,    // ldr d0, [x1]
            0x5800_0040,    // ldr x0, #8  (literal)
            0x4ddf_c822,    // ld1r {v2.4s}, [x1], #4
            0x4c40_7000,    // ld1 {v0.16b}, [x0]
            0x6d40_07e0,    // ldp d0, d1, [sp]
        ];
        let writes = [
            0xf900_0020u32, // str x0, [x1]
            0x3822_68c7,    // strb w7, [x6, x2]
            0x3800_1422,    // strb w2, [x1], #1
            0xa9bf_7bfd,    // stp x29, x30, [sp, #-16]!
            0x3c81_04e0,    // str q0, [x7], #16
            0x3d80_0001,    // str q1, [x0]
            0x4c00_7000,    // st1 {v0.16b}, [x0]
            0xf820_0020,    // ldadd x0, x0, [x1]  (an atomic: writes)
            0xc85f_7c20,    // ldxr x0, [x1]  (exclusive group: taken to write)
            0xc800_7c20,    // stxr w0, x0, [x1]
            0xc8a0_7c20,    // cas x0, x0, [x1]
            0xd50b_7420,    // dc zva, x0  (system group)
            0xd503_3fdf,    // isb  (ends blocks: taken to write)
            0xd50b_7428,    // dc zva, x8  (in line, and writes)
        ];
        let others = [
            0x9100_0400u32, // add x0, x0, #1
            0x4ea1_9440,    // mla v0.4s, v2.4s, v1.4s
            0x1e22_0820,    // fmul s0, s1, s2
            0x9b03_7c61,    // mul x1, x3, x3
            0xd503_233f,    // paciasp  (in line: a hint)
            0xd538_4100,    // mrs x0, sp_el0  (in line)
        ];
        for w in loads {
            assert!(!may_write_ram(w), "{w:#010x} is a load");
        }
        for w in writes {
            assert!(may_write_ram(w), "{w:#010x} may write");
        }
        for w in others {
            assert!(!may_write_ram(w), "{w:#010x} does not access memory");
        }
    }
}
