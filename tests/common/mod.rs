//! Helpers shared by integration tests: a GDB remote-protocol client, a QEMU launcher and
//! an ELF writer for bare-metal test images. Each test crate uses a subset.
#![allow(dead_code)]

pub mod elf;
pub mod qemu;
pub mod rsp;
