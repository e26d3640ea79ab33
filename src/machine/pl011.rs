//! The PL011 UART at [`UART_BASE`](super::layout::UART_BASE): transmit to an output sink,
//! receive from the host's [`SerialInput`] through a FIFO with its interrupts, registers
//! readable and writable as QEMU's `virt` board models them.
//!
//! Register map, bits and reset values: Arm PrimeCell UART (PL011) Technical Reference Manual,
//! DDI 0183, 3.2 "Summary of registers" (UARTFR reset 0x90 with empty FIFOs, UARTCR 0x300,
//! UARTIFLS 0x12, UARTPeriphID0-3 = 0x11 0x10 0x14 0x00, UARTPCellID0-3 = 0x0d 0xf0 0x05 0xb1),
//! 3.3 "Register descriptions" (UARTFR RXFE bit 4, TXFF 5, RXFF 6, TXFE 7; UARTLCR_H FEN bit 4;
//! UARTCR UARTEN bit 0, RXE bit 9; UARTIFLS RXIFLSEL bits 5:3 = 1/8, 1/4, 1/2, 3/4, 7/8 full;
//! UARTIMSC/RIS/MIS/ICR RXIM bit 4, TXIM 5, RTIM 6) and 2.8 "Interrupts" (the receive
//! interrupt asserts when the FIFO reaches its trigger level and clears when reads take it
//! below; the receive timeout asserts while data waits in the FIFO and clears when it empties
//! or through UARTICR). Access-size behaviour follows QEMU (`hw/char/pl011.c`, 32-bit-only
//! implementation behind `memory.c` `access_with_adjusted_size`): an access of 1, 2 or 4 bytes
//! addresses the 32-bit register at `offset & !3` and transfers its low bytes; an 8-byte
//! access is two 32-bit accesses, low word first.
//!
//! The receive FIFO is 16 entries deep: the revision field of UARTPeriphID2 (bits 7:4) is 1,
//! and Linux's amba-pl011 driver (`get_fifosize_arm`) sizes the FIFO at 16 below revision 3.
//! Transmission is instant: the transmit FIFO is always empty.
//!
//! Input flow control: host bytes wait in the [`SerialInput`] backlog and enter the receive
//! FIFO only while it has room and the guest is ready to receive, so nothing is ever dropped
//! (a serial line with flow control). Ready means UARTEN and RXE set and either the guest never
//! wrote UARTIMSC (a polling guest: input flows once it enables the UART), or its last
//! UARTIMSC write unmasked a receive interrupt while the UART was enabled. That last rule
//! follows what Linux's amba-pl011 does when a port is opened (`pl011_startup`): it unmasks
//! the receive interrupts before enabling the UART, then enables it, reads the FIFO empty and
//! throws the bytes away (`pl011_enable_interrupts`), and only then writes UARTIMSC again;
//! input delivered before that last write would be lost, as it is on hardware or QEMU. A
//! guest that masks its receive interrupts (Linux while throttled) holds the sender back. A
//! guest that unmasks them only before enabling the UART and never writes UARTIMSC again
//! gets no input: write UARTIMSC after UARTCR. The interrupt output drives the GIC SPI the
//! device tree names, through the backend's [`IrqLine`].
//!
//! Under the deterministic clock the host's bytes reach the backlog only when the clock's
//! turn holder admits them (`serial_input.rs`), so they enter the FIFO at fixed clocks.
//!
//! Owns UART state only; must not depend on backends beyond the `IrqLine` handle.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::{Arc, Mutex};

use super::bus::MmioDevice;
pub use super::serial_input::SerialInput;
use crate::backend::IrqLine;

const DR: u64 = 0x000;
const RSR_ECR: u64 = 0x004;
const FR: u64 = 0x018;
const ILPR: u64 = 0x020;
const IBRD: u64 = 0x024;
const FBRD: u64 = 0x028;
const LCR_H: u64 = 0x02c;
const CR: u64 = 0x030;
const IFLS: u64 = 0x034;
const IMSC: u64 = 0x038;
const RIS: u64 = 0x03c;
const MIS: u64 = 0x040;
const ICR: u64 = 0x044;
const DMACR: u64 = 0x048;
const ID_BASE: u64 = 0xfe0;
const ID: [u32; 8] = [0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1];

const FR_RXFE: u32 = 1 << 4;
const FR_RXFF: u32 = 1 << 6;
const FR_TXFE: u32 = 1 << 7;
const LCR_FEN: u32 = 1 << 4;
const CR_UARTEN: u32 = 1 << 0;
const CR_RXE: u32 = 1 << 9;
/// Interrupt bits in RIS/MIS/IMSC/ICR: receive (RXRIS), transmit (TXRIS), receive timeout
/// (RTRIS); the 11 defined bits.
pub const INT_RX: u32 = 1 << 4;
pub const INT_TX: u32 = 1 << 5;
pub const INT_RT: u32 = 1 << 6;
const INT_ALL: u32 = 0x7ff;
/// Receive FIFO depth (see module docs).
pub const FIFO_DEPTH: usize = 16;

/// The interrupt output: an SPI of the VM's GIC.
pub struct IrqOut {
    pub line: Arc<dyn IrqLine>,
    pub intid: u32,
}

/// Everything a guest can observe of the UART (registers, the receive FIFO, the flow
/// control and interrupt-line state), for snapshots. The host's [`SerialInput`] backlog is
/// part of it only under the deterministic clock, where it holds admitted bytes
/// (`serial_input.rs`); without the clock it is input still to come.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pl011State {
    /// RSR, ILPR, IBRD, FBRD, LCR_H, CR, IFLS, IMSC, RIS, DMACR.
    pub regs: [u32; 10],
    pub rx: Vec<u8>,
    pub imsc_written: bool,
    pub rx_armed: bool,
    pub irq_level: bool,
    /// Admitted input the FIFO has not taken (deterministic clock only).
    pub admitted: Vec<u8>,
}

/// PL011 state.
pub struct Pl011 {
    out: Box<dyn Write + Send>,
    input: Option<Arc<SerialInput>>,
    irq: Option<IrqOut>,
    /// The level last driven on the interrupt line.
    irq_level: bool,
    rx: VecDeque<u8>,
    /// UARTIMSC was written since reset (see the module docs' flow control).
    imsc_written: bool,
    /// The last UARTIMSC write unmasked a receive interrupt with the UART enabled.
    rx_armed: bool,
    rsr: u32,
    ilpr: u32,
    ibrd: u32,
    fbrd: u32,
    lcr: u32,
    cr: u32,
    ifls: u32,
    imsc: u32,
    ris: u32,
    dmacr: u32,
}

impl Pl011 {
    /// A UART at reset that writes transmitted bytes to `out`, with no input and no interrupt
    /// line.
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Pl011 {
            out,
            input: None,
            irq: None,
            irq_level: false,
            rx: VecDeque::with_capacity(FIFO_DEPTH),
            imsc_written: false,
            rx_armed: false,
            rsr: 0,
            ilpr: 0,
            ibrd: 0,
            fbrd: 0,
            lcr: 0,
            cr: 0x300,
            ifls: 0x12,
            imsc: 0,
            ris: 0,
            dmacr: 0,
        }
    }

    /// A UART at reset wired to `input` and `irq`, shared as the bus and the input need it.
    pub fn connected(
        out: Box<dyn Write + Send>,
        input: Arc<SerialInput>,
        irq: Option<IrqOut>,
    ) -> Arc<Mutex<Pl011>> {
        let mut u = Pl011::new(out);
        u.input = Some(input.clone());
        u.irq = irq;
        let u = Arc::new(Mutex::new(u));
        input.attach(&u);
        u.lock().unwrap_or_else(|p| p.into_inner()).refill();
        u
    }

    /// The guest-visible state (see [`Pl011State`]).
    pub fn state(&self) -> Pl011State {
        Pl011State {
            regs: [
                self.rsr, self.ilpr, self.ibrd, self.fbrd, self.lcr, self.cr, self.ifls, self.imsc,
                self.ris, self.dmacr,
            ],
            rx: self.rx.iter().copied().collect(),
            imsc_written: self.imsc_written,
            rx_armed: self.rx_armed,
            irq_level: self.irq_level,
            admitted: self.input.as_ref().map_or(Vec::new(), |i| i.admitted()),
        }
    }

    /// Puts back a state from [`Pl011::state`]. The interrupt line is not driven: the
    /// interrupt controller's state (the line level included) is restored with it.
    pub fn set_state(&mut self, st: &Pl011State) {
        let [rsr, ilpr, ibrd, fbrd, lcr, cr, ifls, imsc, ris, dmacr] = st.regs;
        (self.rsr, self.ilpr, self.ibrd, self.fbrd, self.lcr) = (rsr, ilpr, ibrd, fbrd, lcr);
        (self.cr, self.ifls, self.imsc, self.ris, self.dmacr) = (cr, ifls, imsc, ris, dmacr);
        self.rx = st.rx.iter().copied().collect();
        (self.imsc_written, self.rx_armed, self.irq_level) =
            (st.imsc_written, st.rx_armed, st.irq_level);
        if let Some(input) = &self.input {
            input.set_admitted(&st.admitted);
        }
    }

    /// FIFO depth as configured: 16 with UARTLCR_H.FEN, else a one-character holding register.
    fn depth(&self) -> usize {
        if self.lcr & LCR_FEN != 0 {
            FIFO_DEPTH
        } else {
            1
        }
    }

    /// The receive interrupt's trigger level (UARTIFLS.RXIFLSEL; reserved values read as 1/2).
    fn trigger(&self) -> usize {
        if self.lcr & LCR_FEN == 0 {
            return 1;
        }
        let eighths = match (self.ifls >> 3) & 7 {
            0 => 1,
            1 => 2,
            3 => 6,
            4 => 7,
            _ => 4,
        };
        FIFO_DEPTH * eighths / 8
    }

    fn enabled(&self) -> bool {
        self.cr & CR_UARTEN != 0 && self.cr & CR_RXE != 0
    }

    /// Whether host input may enter the FIFO (module docs, flow control).
    fn receiving(&self) -> bool {
        self.enabled() && (!self.imsc_written || self.rx_armed)
    }

    /// Moves backlog bytes into the FIFO while it has room and the guest receives.
    pub(super) fn refill(&mut self) {
        let mut got = false;
        if let Some(input) = self.input.clone() {
            while self.receiving() && self.rx.len() < self.depth() {
                let Some(b) = input.pop() else { break };
                self.rx.push_back(b);
                got = true;
            }
        }
        if got {
            log::trace!("pl011: {} byte(s) in the receive FIFO", self.rx.len());
            if self.rx.len() >= self.trigger() {
                self.ris |= INT_RX;
            }
            self.ris |= INT_RT;
        }
        self.update_irq();
    }

    /// Drives the interrupt line with UARTMIS != 0.
    fn update_irq(&mut self) {
        let level = self.ris & self.imsc != 0;
        if level == self.irq_level {
            return;
        }
        self.irq_level = level;
        log::trace!(
            "pl011: interrupt line {}",
            if level { "high" } else { "low" }
        );
        if let Some(irq) = &self.irq {
            if let Err(e) = irq.line.set_level(irq.intid, level) {
                log::warn!("pl011: cannot drive interrupt INTID {}: {e}", irq.intid);
            }
        }
    }

    fn flags(&self) -> u32 {
        let mut fr = FR_TXFE;
        if self.rx.is_empty() {
            fr |= FR_RXFE;
        }
        if self.rx.len() >= self.depth() {
            fr |= FR_RXFF;
        }
        fr
    }

    fn read_data(&mut self) -> u32 {
        let v = self.rx.pop_front().map_or(0, u32::from);
        if self.rx.len() < self.trigger() {
            self.ris &= !INT_RX;
        }
        if self.rx.is_empty() {
            self.ris &= !INT_RT;
        }
        self.refill();
        v
    }

    fn read_reg(&mut self, offset: u64) -> u32 {
        match offset {
            DR => self.read_data(),
            RSR_ECR => self.rsr,
            FR => self.flags(),
            ILPR => self.ilpr,
            IBRD => self.ibrd,
            FBRD => self.fbrd,
            LCR_H => self.lcr,
            CR => self.cr,
            IFLS => self.ifls,
            IMSC => self.imsc,
            RIS => self.ris,
            MIS => self.ris & self.imsc,
            DMACR => self.dmacr,
            o if (ID_BASE..ID_BASE + 0x20).contains(&o) => ID[((o - ID_BASE) >> 2) as usize],
            o => {
                log::warn!("pl011: read of unknown register {o:#x}");
                0
            }
        }
    }

    fn write_reg(&mut self, offset: u64, value: u32) {
        if offset != DR {
            log::trace!("pl011: write {value:#x} to {offset:#x}");
        }
        match offset {
            DR => {
                let byte = value as u8;
                if let Err(e) = self.out.write_all(&[byte]).and_then(|_| self.out.flush()) {
                    log::warn!("pl011: output failed: {e}");
                }
                self.ris |= INT_TX;
            }
            RSR_ECR => self.rsr = 0,
            // Read-only registers: writes are ignored (as QEMU does).
            FR | RIS | MIS => log::debug!("pl011: write {value:#x} to read-only {offset:#x}"),
            ILPR => self.ilpr = value,
            IBRD => self.ibrd = value,
            FBRD => self.fbrd = value,
            LCR_H => self.lcr = value,
            CR => self.cr = value,
            IFLS => self.ifls = value,
            IMSC => {
                self.imsc = value & INT_ALL;
                self.imsc_written = true;
                self.rx_armed = self.enabled() && self.imsc & (INT_RX | INT_RT) != 0;
            }
            ICR => self.ris &= !value,
            DMACR => self.dmacr = value,
            o => log::warn!("pl011: write {value:#x} to unknown/read-only register {o:#x}"),
        }
        // Enabling the receiver or its interrupts may let input in; any write may change
        // the interrupt output.
        self.refill();
    }
}

fn mask(len: usize) -> u64 {
    if len >= 8 {
        u64::MAX
    } else {
        (1u64 << (len * 8)) - 1
    }
}

impl MmioDevice for Pl011 {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        let reg = offset & !3;
        let value = if data.len() == 8 {
            self.read_reg(reg) as u64 | (self.read_reg(reg + 4) as u64) << 32
        } else {
            self.read_reg(reg) as u64 & mask(data.len())
        };
        let bytes = value.to_le_bytes();
        let n = data.len().min(8);
        data[..n].copy_from_slice(&bytes[..n]);
    }

    fn save(&self) -> Option<Box<dyn std::any::Any + Send>> {
        Some(Box::new(self.state()))
    }

    fn restore(&mut self, state: &dyn std::any::Any) {
        if let Some(st) = state.downcast_ref::<Pl011State>() {
            self.set_state(st);
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        let mut bytes = [0u8; 8];
        let n = data.len().min(8);
        bytes[..n].copy_from_slice(&data[..n]);
        let value = u64::from_le_bytes(bytes) & mask(n);
        let reg = offset & !3;
        self.write_reg(reg, value as u32);
        if n == 8 {
            self.write_reg(reg + 4, (value >> 32) as u32);
        }
    }
}

#[cfg(test)]
#[path = "pl011_tests.rs"]
mod tests;
