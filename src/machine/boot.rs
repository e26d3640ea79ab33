//! What a guest is booted with besides its image: the initrd, the command line and the
//! device tree, and where each goes in RAM.
//!
//! Layout (Documentation/arch/arm64/booting.rst): the image first (`loader`: a kernel Image at
//! a 2 MiB aligned base plus `text_offset`, `image_size` bytes reserved; ELF segments at their
//! physical addresses; a raw binary at the start of RAM), the initrd after it at the next
//! 2 MiB boundary (booting.rst: it must share a 1 GiB aligned window of up to 32 GiB with the
//! kernel, which the lowest free address satisfies for any initrd that fits), the DTB at the
//! top of RAM, 4 KiB aligned (booting.rst: 8-byte aligned, at most 2 MiB). A kernel without
//! `image_size` (before v3.17) wants as much free memory as possible after it: its initrd
//! goes just below the DTB instead. Nothing may overlap; anything that does not fit is an
//! error before a vCPU exists.
//!
//! `/chosen` carries `bootargs` (`--append`), `linux,initrd-start` and `linux,initrd-end`
//! (Documentation/devicetree/bindings: the `chosen` node; the Linux reader is
//! drivers/of/fdt.c `early_init_dt_check_for_initrd`, which takes one or two cells), and in
//! the generated tree `stdout-path` naming the PL011 (so `earlycon` without arguments finds
//! it). A user's DTB (`--dtb`) is kept as it is except for those `/chosen` properties.
//!
//! Must not depend on backends.

use std::ops::Range;
use std::sync::Arc;

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::error::{MachineError, Result};
use super::fdt;
use super::fdt_tree::Tree;
use super::layout::RAM_BASE;
use super::loader::{self, LoadedImage};
use super::memory::ram_end;

/// Longest kernel command line, terminating NUL included: arm64's `COMMAND_LINE_SIZE`
/// (arch/arm64/include/uapi/asm/setup.h); Linux silently truncates longer `bootargs`.
pub const COMMAND_LINE_SIZE: usize = 2048;
/// Largest DTB the arm64 boot protocol accepts (booting.rst "2. Setup the device tree").
pub const MAX_DTB_SIZE: usize = 2 << 20;
/// The initrd starts at a 2 MiB boundary (the block size the kernel maps it with; any
/// alignment would do for Linux, which rounds to pages itself).
pub const INITRD_ALIGN: u64 = 2 << 20;
/// The DTB's alignment: one page (booting.rst asks for 8 bytes).
const DTB_ALIGN: u64 = 0x1000;

/// What the guest boots with besides its image.
#[derive(Clone, Default)]
pub struct BootConfig {
    /// The initrd / initramfs, passed as is (compressed or not: the kernel unpacks it).
    pub initrd: Option<Arc<[u8]>>,
    /// The kernel command line (`/chosen/bootargs`).
    pub cmdline: Option<String>,
    /// A DTB to boot with instead of the generated one (`/chosen` is still filled in).
    pub dtb: Option<Arc<[u8]>>,
}

/// Where everything went.
#[derive(Clone, Debug)]
pub struct BootLayout {
    pub image: LoadedImage,
    /// Guest-physical range of the initrd.
    pub initrd: Option<Range<u64>>,
    /// The DTB as written to RAM.
    pub dtb: Vec<u8>,
    pub dtb_addr: u64,
}

/// What the generated device tree describes.
#[derive(Clone, Copy, Debug)]
pub struct MachineShape {
    pub vcpus: usize,
    pub ram_size: u64,
}

fn align_up(v: u64, a: u64) -> Option<u64> {
    Some(v.checked_add(a - 1)? & !(a - 1))
}

/// Checks the command line against what the kernel accepts.
pub fn check_cmdline(cmdline: &str) -> Result<()> {
    if cmdline.len() + 1 > COMMAND_LINE_SIZE {
        return Err(MachineError::CmdlineTooLong {
            len: cmdline.len(),
            max: COMMAND_LINE_SIZE - 1,
        });
    }
    if cmdline.contains('\0') {
        return Err(MachineError::BadCmdline(
            "contains a NUL byte (bootargs is one C string)".into(),
        ));
    }
    Ok(())
}

/// Loads the image, places the initrd and the DTB, and writes them into `mem`.
pub fn prepare(
    mem: &GuestMemoryMmap,
    firmware: &[u8],
    shape: MachineShape,
    boot: &BootConfig,
) -> Result<BootLayout> {
    if let Some(c) = &boot.cmdline {
        check_cmdline(c)?;
    }
    let user_dtb = boot.dtb.as_deref().map(parse_user_dtb).transpose()?;
    let image = loader::load(mem, firmware)?;
    let top = ram_end(mem);
    // The DTB's size does not depend on the initrd's address (fixed-size cells), so it is
    // built once with a provisional range, measured, then built again with the real one.
    let dtb_len = build_dtb(shape, boot, user_dtb.as_ref(), Some(0..0))?.len();
    let dtb_addr = top
        .checked_sub(align_up(dtb_len as u64, DTB_ALIGN).unwrap_or(u64::MAX))
        .filter(|&a| a >= image.end && a >= RAM_BASE)
        .ok_or(MachineError::NoRoomForDtb { size: dtb_len })?;
    let initrd = match &boot.initrd {
        None => None,
        Some(bytes) => Some(place_initrd(&image, bytes.len() as u64, dtb_addr)?),
    };
    let dtb = build_dtb(shape, boot, user_dtb.as_ref(), initrd.clone())?;
    debug_assert_eq!(dtb.len(), dtb_len);
    if let (Some(range), Some(bytes)) = (&initrd, &boot.initrd) {
        write(mem, range.start, bytes)?;
    }
    write(mem, dtb_addr, &dtb)?;
    Ok(BootLayout {
        image,
        initrd,
        dtb,
        dtb_addr,
    })
}

/// The initrd's range: after the image at the next 2 MiB boundary, or (legacy kernels without
/// `image_size`) just below the DTB; never overlapping either.
fn place_initrd(image: &LoadedImage, len: u64, dtb_addr: u64) -> Result<Range<u64>> {
    let too_large = || MachineError::InitrdTooLarge {
        size: len,
        room: dtb_addr.saturating_sub(align_up(image.end, INITRD_ALIGN).unwrap_or(u64::MAX)),
    };
    let legacy = image.linux.is_some_and(|h| h.image_size == 0);
    let start = if legacy {
        dtb_addr
            .checked_sub(len)
            .map(|s| s & !(INITRD_ALIGN - 1))
            .filter(|&s| s >= image.end)
            .ok_or_else(too_large)?
    } else {
        align_up(image.end, INITRD_ALIGN).ok_or_else(too_large)?
    };
    let end = start.checked_add(len).ok_or_else(too_large)?;
    if end > dtb_addr {
        return Err(too_large());
    }
    Ok(start..end)
}

fn parse_user_dtb(bytes: &[u8]) -> Result<Tree> {
    if bytes.len() > MAX_DTB_SIZE {
        return Err(MachineError::BadDtb(format!(
            "{} bytes; the arm64 boot protocol allows at most 2 MiB",
            bytes.len()
        )));
    }
    Tree::parse(bytes).map_err(|e| MachineError::BadDtb(e.to_string()))
}

/// The DTB to boot with: the generated one, or the user's with `/chosen` filled in.
fn build_dtb(
    shape: MachineShape,
    boot: &BootConfig,
    user: Option<&Tree>,
    initrd: Option<Range<u64>>,
) -> Result<Vec<u8>> {
    let initrd = if boot.initrd.is_some() { initrd } else { None };
    let dtb = match user {
        None => fdt::build(&fdt::FdtConfig {
            ram_size: shape.ram_size,
            vcpus: shape.vcpus,
            bootargs: boot.cmdline.clone(),
            initrd,
        })?,
        Some(tree) => {
            let mut tree = tree.clone();
            fill_chosen(&mut tree, boot.cmdline.as_deref(), initrd);
            tree.to_bytes()
        }
    };
    if dtb.len() > MAX_DTB_SIZE {
        return Err(MachineError::BadDtb(format!(
            "{} bytes with /chosen filled in; the arm64 boot protocol allows at most 2 MiB",
            dtb.len()
        )));
    }
    Ok(dtb)
}

/// Sets `/chosen` in a user's tree: `bootargs` when a command line was given (the tree's own
/// otherwise), the initrd range when there is one, and no stale initrd range when there is
/// none (it would describe memory kvmdbg did not fill).
pub fn fill_chosen(tree: &mut Tree, cmdline: Option<&str>, initrd: Option<Range<u64>>) {
    let chosen = tree.node_or_insert("/chosen");
    if let Some(c) = cmdline {
        let mut v = c.as_bytes().to_vec();
        v.push(0);
        chosen.set_prop("bootargs", v);
    }
    match initrd {
        Some(r) => {
            chosen.set_prop("linux,initrd-start", r.start.to_be_bytes().to_vec());
            chosen.set_prop("linux,initrd-end", r.end.to_be_bytes().to_vec());
        }
        None => {
            let a = chosen.remove_prop("linux,initrd-start");
            let b = chosen.remove_prop("linux,initrd-end");
            if a || b {
                log::warn!("--dtb: removed the DTB's /chosen initrd range (no --initrd given)");
            }
        }
    }
}

fn write(mem: &GuestMemoryMmap, addr: u64, data: &[u8]) -> Result<()> {
    mem.write_slice(data, GuestAddress(addr))
        .map_err(|e| MachineError::WriteRam {
            addr,
            len: data.len(),
            reason: e.to_string(),
        })
}

#[cfg(test)]
#[path = "boot_tests.rs"]
mod tests;
