//! Lockstep co-simulation of the model CPU against QEMU: the random program generator and
//! the lockstep driver. Shared by tests/cosim.rs and tests/cosim_regressions.rs.
#![allow(dead_code)]

pub mod disasm;
pub mod gen;
pub mod gen_alu;
pub mod gen_branch;
pub mod gen_fp;
pub mod gen_mem;
pub mod gen_simd;
pub mod gen_simd_int;
pub mod gen_simd_more;
pub mod gen_sys;
pub mod lockstep;
pub mod mmu;
pub mod qemu_side;
