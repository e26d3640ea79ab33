//! A static arm64 Linux program for the kernel gdb session: it loops on the
//! `clock_gettime(CLOCK_MONOTONIC, BUF)` system call, so the kernel keeps writing a fresh
//! `struct timespec` into its buffer with `copy_to_user` (unprivileged `sttr` stores), until
//! the word at FLAG is non-zero, then exits with status 0. The program never writes BUF
//! itself, so every store to it is the kernel's. Hand-assembled, one comment per word;
//! system call numbers from the kernel's include/uapi/asm-generic/unistd.h, CLOCK_MONOTONIC
//! from include/uapi/linux/time.h, the calling convention (x8 = number, x0.. = arguments,
//! `svc #0`) from the syscall(2) manual page.

use crate::common::elf::{build, Segment};

/// Where the code and the data page are loaded: far from where busybox (or anything else in
/// the initramfs) is mapped, so a breakpoint or watchpoint there meets only this program.
pub const CODE: u64 = 0x20_0000_0000;
pub const DATA: u64 = 0x20_0001_0000;
/// The loop's first instruction (the `mov x0, #1` after the two-word prologue).
pub const LOOP: u64 = CODE + 8;
/// The `struct timespec` the kernel writes: `tv_sec` at BUF, `tv_nsec` at BUF + 8.
pub const BUF: u64 = DATA;
/// The word that ends the loop when non-zero (gdb writes it).
pub const FLAG: u64 = DATA + 0x100;

/// The program's instruction words.
const CODE_WORDS: [u32; 11] = [
    0xd2c0_0413, // movz x19, #0x20, lsl #32      x19 = DATA
    0xf2a0_0033, // movk x19, #0x1, lsl #16
    0xd280_0020, // loop: mov x0, #1              CLOCK_MONOTONIC
    0xaa13_03e1, // mov x1, x19                   &BUF
    0xd280_0e28, // mov x8, #113                  __NR_clock_gettime
    0xd400_0001, // svc #0
    0xb941_0262, // ldr w2, [x19, #0x100]         FLAG
    0x34ff_ff62, // cbz w2, loop
    0xd280_0000, // mov x0, #0                    exit status
    0xd280_0ba8, // mov x8, #93                   __NR_exit
    0xd400_0001, // svc #0
];

/// The program as an ELF executable (one page of code, one zeroed page of data).
pub fn program() -> Vec<u8> {
    let code: Vec<u8> = CODE_WORDS.iter().flat_map(|w| w.to_le_bytes()).collect();
    let data = vec![0u8; 0x1000];
    build(
        CODE,
        &[
            Segment {
                addr: CODE,
                data: &code,
            },
            Segment {
                addr: DATA,
                data: &data,
            },
        ],
    )
}
