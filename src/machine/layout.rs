//! The guest physical memory map, compatible with QEMU's `virt` board for what kvmdbg models.
//!
//! Source of every address: QEMU `hw/arm/virt.c`, table `base_memmap[]` (VIRT_GIC_DIST,
//! VIRT_GIC_REDIST, VIRT_UART, VIRT_MEM). Owns addresses and sizes only.

use crate::backend::GicLayout;

/// Start of RAM (`base_memmap[VIRT_MEM]`).
pub const RAM_BASE: u64 = 0x4000_0000;
/// Default RAM size: 128 MiB (QEMU's default `-m` for `virt`).
pub const DEFAULT_RAM_SIZE: u64 = 128 << 20;
/// Largest RAM we accept: the `virt` board's low RAM window ends at 256 GiB (`VIRT_MEM` size
/// 255 GiB); far more than a debugger session needs.
pub const MAX_RAM_SIZE: u64 = 255 << 30;
/// Smallest RAM we accept: room for a firmware image, its stack and the DTB.
pub const MIN_RAM_SIZE: u64 = 1 << 20;

/// PL011 UART (`base_memmap[VIRT_UART]`), one 4 KiB page.
pub const UART_BASE: u64 = 0x0900_0000;
pub const UART_SIZE: u64 = 0x1000;
/// The UART's SPI number in the `virt` board (`a15irqmap[VIRT_UART]` = 1).
pub const UART_SPI: u32 = 1;
/// INTID of SPI 0: SPIs are INTIDs 32-1019 (GICv3 architecture specification, IHI 0069,
/// 2.2.1 "INTIDs"); the device tree numbers SPIs from 0.
pub const SPI_BASE: u32 = 32;

/// GICv3 distributor (`base_memmap[VIRT_GIC_DIST]`), 64 KiB.
pub const GIC_DIST_BASE: u64 = 0x0800_0000;
pub const GIC_DIST_SIZE: u64 = 0x1_0000;
/// GICv3 redistributors (`base_memmap[VIRT_GIC_REDIST]`), 2 x 64 KiB frames per vCPU (GICv3
/// architecture specification, 12.10 "The GIC Redistributor register map"); the board reserves
/// 0xF6_0000 bytes, room for 123 vCPUs.
pub const GIC_REDIST_BASE: u64 = 0x080A_0000;
pub const GIC_REDIST_FRAME: u64 = 0x2_0000;
pub const GIC_REDIST_REGION: u64 = 0xF6_0000;

/// The most vCPUs the redistributor region can hold.
pub const MAX_VCPUS: usize = (GIC_REDIST_REGION / GIC_REDIST_FRAME) as usize;

/// Architected timer PPIs as the `virt` board wires them (`hw/arm/virt.c` `create_gic`,
/// ARCH_TIMER_*_IRQ): secure 13, non-secure physical 14, virtual 11, hypervisor 10.
pub const TIMER_PPIS: [u32; 4] = [13, 14, 11, 10];

/// The GIC layout handed to backends for `vcpus` vCPUs.
pub fn gic_layout(vcpus: usize) -> GicLayout {
    GicLayout {
        dist_base: GIC_DIST_BASE,
        redist_base: GIC_REDIST_BASE,
        redist_size: GIC_REDIST_FRAME * vcpus as u64,
    }
}
