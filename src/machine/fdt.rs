//! The flattened device tree describing the machine, built with `vm-fdt`.
//!
//! Node names, compatibles and properties follow what QEMU's `virt` board generates
//! (`hw/arm/virt.c`: `create_fdt`, `fdt_add_cpu_nodes`, `fdt_add_psci_node`, `create_gic`,
//! `fdt_add_timer_nodes`, `create_uart`) and the bindings in the Linux tree
//! (Documentation/devicetree/bindings: arm/psci.yaml, interrupt-controller/arm,gic-v3.yaml,
//! timer/arm,arch_timer.yaml, serial/arm,pl011.yaml).

use vm_fdt::{Error as FdtError, FdtWriter};

type FdtResult<T> = std::result::Result<T, FdtError>;

use super::error::{MachineError, Result};
use super::layout::*;

const PHANDLE_GIC: u32 = 1;
const PHANDLE_CLK: u32 = 2;
/// GIC interrupt specifier cells (arm,gic-v3.yaml): type (0 = SPI, 1 = PPI), number, flags.
const GIC_SPI: u32 = 0;
const GIC_PPI: u32 = 1;
/// IRQ_TYPE_LEVEL_HIGH (include/dt-bindings/interrupt-controller/irq.h).
const IRQ_LEVEL_HIGH: u32 = 4;
/// The PL011's reference clock on the `virt` board: 24 MHz (`create_fdt` "apb-pclk").
const UART_CLOCK_HZ: u32 = 24_000_000;

/// What the device tree describes.
#[derive(Clone, Debug, Default)]
pub struct FdtConfig {
    pub ram_size: u64,
    pub vcpus: usize,
    /// `/chosen/bootargs`.
    pub bootargs: Option<String>,
    /// `/chosen/linux,initrd-start` and `linux,initrd-end` (two cells each).
    pub initrd: Option<std::ops::Range<u64>>,
}

/// Builds the DTB.
pub fn build(cfg: &FdtConfig) -> Result<Vec<u8>> {
    build_inner(cfg).map_err(|e| MachineError::Fdt(e.to_string()))
}

fn build_inner(cfg: &FdtConfig) -> FdtResult<Vec<u8>> {
    let mut f = FdtWriter::new()?;
    let root = f.begin_node("")?;
    f.property_string("compatible", "linux,dummy-virt")?;
    f.property_u32("#address-cells", 2)?;
    f.property_u32("#size-cells", 2)?;
    f.property_u32("interrupt-parent", PHANDLE_GIC)?;
    f.property_string("model", "kvmdbg virt-compatible machine")?;

    chosen(&mut f, cfg)?;

    let memory = f.begin_node(&format!("memory@{RAM_BASE:x}"))?;
    f.property_string("device_type", "memory")?;
    f.property_array_u64("reg", &[RAM_BASE, cfg.ram_size])?;
    f.end_node(memory)?;

    cpus(&mut f, cfg.vcpus)?;

    let psci = f.begin_node("psci")?;
    f.property_string_list("compatible", vec!["arm,psci-0.2".into(), "arm,psci".into()])?;
    f.property_string("method", "hvc")?;
    f.end_node(psci)?;

    gic(&mut f, cfg.vcpus)?;
    timer(&mut f)?;
    uart(&mut f)?;
    f.end_node(root)?;
    f.finish()
}

/// `/chosen` (Documentation/devicetree/bindings/chosen.txt in the Linux tree, and the
/// Devicetree Specification 3.6): the console for `earlycon` without arguments and the
/// kernel's, the command line, the initrd range.
fn chosen(f: &mut FdtWriter, cfg: &FdtConfig) -> FdtResult<()> {
    let node = f.begin_node("chosen")?;
    f.property_string("stdout-path", &format!("/pl011@{UART_BASE:x}"))?;
    if let Some(args) = &cfg.bootargs {
        f.property_string("bootargs", args)?;
    }
    if let Some(r) = &cfg.initrd {
        f.property_u64("linux,initrd-start", r.start)?;
        f.property_u64("linux,initrd-end", r.end)?;
    }
    f.end_node(node)
}

fn cpus(f: &mut FdtWriter, vcpus: usize) -> FdtResult<()> {
    let node = f.begin_node("cpus")?;
    f.property_u32("#address-cells", 1)?;
    f.property_u32("#size-cells", 0)?;
    for i in 0..vcpus {
        let cpu = f.begin_node(&format!("cpu@{i}"))?;
        f.property_string("device_type", "cpu")?;
        f.property_string("compatible", "arm,arm-v8")?;
        f.property_string("enable-method", "psci")?;
        // reg = MPIDR affinity: Aff0 = index (as KVM assigns for < 16 vCPUs).
        f.property_u32("reg", i as u32)?;
        f.end_node(cpu)?;
    }
    f.end_node(node)
}

fn gic(f: &mut FdtWriter, vcpus: usize) -> FdtResult<()> {
    let node = f.begin_node(&format!("intc@{GIC_DIST_BASE:x}"))?;
    f.property_string("compatible", "arm,gic-v3")?;
    f.property_u32("#interrupt-cells", 3)?;
    // No child nodes (no ITS). dtc's interrupt_provider check wants #address-cells on every
    // interrupt controller (interrupt-map parsing reads it); 0 as the binding allows.
    f.property_u32("#address-cells", 0)?;
    f.property_null("interrupt-controller")?;
    f.property_u32("#redistributor-regions", 1)?;
    f.property_array_u64(
        "reg",
        &[
            GIC_DIST_BASE,
            GIC_DIST_SIZE,
            GIC_REDIST_BASE,
            GIC_REDIST_FRAME * vcpus as u64,
        ],
    )?;
    f.property_phandle(PHANDLE_GIC)?;
    f.end_node(node)
}

fn timer(f: &mut FdtWriter) -> FdtResult<()> {
    let node = f.begin_node("timer")?;
    f.property_string("compatible", "arm,armv8-timer")?;
    f.property_null("always-on")?;
    let mut cells = Vec::new();
    for ppi in TIMER_PPIS {
        cells.extend_from_slice(&[GIC_PPI, ppi, IRQ_LEVEL_HIGH]);
    }
    f.property_array_u32("interrupts", &cells)?;
    f.end_node(node)
}

fn uart(f: &mut FdtWriter) -> FdtResult<()> {
    let clk = f.begin_node("apb-pclk")?;
    f.property_string("compatible", "fixed-clock")?;
    f.property_u32("#clock-cells", 0)?;
    f.property_u32("clock-frequency", UART_CLOCK_HZ)?;
    f.property_string("clock-output-names", "clk24mhz")?;
    f.property_phandle(PHANDLE_CLK)?;
    f.end_node(clk)?;

    let node = f.begin_node(&format!("pl011@{UART_BASE:x}"))?;
    f.property_string_list(
        "compatible",
        vec!["arm,pl011".into(), "arm,primecell".into()],
    )?;
    f.property_array_u64("reg", &[UART_BASE, UART_SIZE])?;
    f.property_array_u32("interrupts", &[GIC_SPI, UART_SPI, IRQ_LEVEL_HIGH])?;
    f.property_array_u32("clocks", &[PHANDLE_CLK, PHANDLE_CLK])?;
    f.property_string_list("clock-names", vec!["uartclk".into(), "apb_pclk".into()])?;
    f.end_node(node)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn dtb_has_header_and_describes_every_device() {
        let dtb = build(&FdtConfig {
            ram_size: 128 << 20,
            vcpus: 2,
            ..FdtConfig::default()
        })
        .unwrap();
        // FDT magic 0xd00dfeed, big-endian (Devicetree Specification 5.2).
        assert_eq!(&dtb[..4], &[0xd0, 0x0d, 0xfe, 0xed]);
        for s in [
            &b"memory@40000000"[..],
            b"cpu@1",
            b"arm,psci-0.2",
            b"arm,gic-v3",
            b"pl011@9000000",
            b"arm,armv8-timer",
        ] {
            assert!(contains(&dtb, s), "missing {}", String::from_utf8_lossy(s));
        }
        assert!(!contains(&dtb, b"cpu@2"));
    }
}
