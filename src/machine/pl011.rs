//! The PL011 UART at [`UART_BASE`](super::layout::UART_BASE): transmit to an output sink,
//! registers readable and writable as QEMU's `virt` board models them.
//!
//! Register map and reset values: Arm PrimeCell UART (PL011) Technical Reference Manual,
//! DDI 0183, 3.2 "Summary of registers" (UARTFR reset 0x90 with empty FIFOs, UARTCR 0x300,
//! UARTIFLS 0x12, UARTPeriphID0-3 = 0x11 0x10 0x14 0x00 for r1p5, UARTPCellID0-3 = 0x0d 0xf0
//! 0x05 0xb1). Access-size behaviour follows QEMU (`hw/char/pl011.c`, 32-bit-only
//! implementation behind `memory.c` `access_with_adjusted_size`): an access of 1, 2 or 4 bytes
//! addresses the 32-bit register at `offset & !3` and transfers its low bytes; an 8-byte access
//! is two 32-bit accesses, low word first. No receive path (input is not modelled).
//!
//! Owns UART state only; must not depend on backends.

use std::io::Write;

use super::bus::MmioDevice;

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

/// UARTFR: TXFE (bit 7) and RXFE (bit 4) set: both FIFOs empty.
const FR_IDLE: u32 = 0x90;
/// Transmit interrupt bit in RIS/MIS/IMSC/ICR (TXRIS, bit 5).
const INT_TX: u32 = 1 << 5;

/// PL011 state.
pub struct Pl011 {
    out: Box<dyn Write + Send>,
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
    /// A UART at reset that writes transmitted bytes to `out`.
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Pl011 {
            out,
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

    fn read_reg(&self, offset: u64) -> u32 {
        match offset {
            DR => 0,
            RSR_ECR => self.rsr,
            FR => FR_IDLE,
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
            IMSC => self.imsc = value,
            ICR => self.ris &= !value,
            DMACR => self.dmacr = value,
            o => log::warn!("pl011: write {value:#x} to unknown/read-only register {o:#x}"),
        }
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
        Some(Box::new([
            self.rsr, self.ilpr, self.ibrd, self.fbrd, self.lcr, self.cr, self.ifls, self.imsc,
            self.ris, self.dmacr,
        ]))
    }

    fn restore(&mut self, state: &dyn std::any::Any) {
        if let Some(&[rsr, ilpr, ibrd, fbrd, lcr, cr, ifls, imsc, ris, dmacr]) =
            state.downcast_ref::<[u32; 10]>()
        {
            (self.rsr, self.ilpr, self.ibrd, self.fbrd, self.lcr) = (rsr, ilpr, ibrd, fbrd, lcr);
            (self.cr, self.ifls, self.imsc, self.ris, self.dmacr) = (cr, ifls, imsc, ris, dmacr);
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
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn uart() -> (Pl011, Sink) {
        let sink = Sink::default();
        (Pl011::new(Box::new(sink.clone())), sink)
    }

    fn read(u: &mut Pl011, off: u64, len: usize) -> u64 {
        let mut d = [0u8; 8];
        u.read(off, &mut d[..len]);
        u64::from_le_bytes(d)
    }

    #[test]
    fn transmit_reaches_the_sink_and_raises_txris() {
        let (mut u, sink) = uart();
        u.write(DR, b"A");
        u.write(DR, &[b'\n', 0, 0, 0]);
        assert_eq!(&*sink.0.lock().unwrap(), b"A\n");
        assert_eq!(read(&mut u, RIS, 4), INT_TX as u64);
        u.write(ICR, &INT_TX.to_le_bytes());
        assert_eq!(read(&mut u, RIS, 4), 0);
    }

    #[test]
    fn a_saved_state_restores_every_register() {
        let (mut u, _) = uart();
        u.write(IBRD, &13u32.to_le_bytes());
        u.write(IMSC, &INT_TX.to_le_bytes());
        let saved = u.save().expect("the UART has state");
        u.write(IBRD, &7u32.to_le_bytes());
        u.write(DR, b"x");
        u.restore(saved.as_ref());
        assert_eq!(read(&mut u, IBRD, 4), 13);
        assert_eq!(read(&mut u, IMSC, 4), INT_TX as u64);
        assert_eq!(
            read(&mut u, RIS, 4),
            0,
            "the transmit after the save is undone"
        );
    }

    #[test]
    fn sub_word_and_doubleword_accesses_follow_qemu() {
        let (mut u, _) = uart();
        // A byte read anywhere in a register returns that register's low byte.
        assert_eq!(read(&mut u, 0xff4, 1), 0xf0);
        assert_eq!(read(&mut u, 0xff5, 1), 0xf0);
        // An 8-byte read is two 32-bit registers.
        assert_eq!(read(&mut u, 0xff0, 8), 0xf0_0000_000d);
        // An 8-byte write writes two registers: IBRD and FBRD.
        u.write(IBRD, &0x0000_0003_0000_0027u64.to_le_bytes());
        assert_eq!(read(&mut u, IBRD, 4), 0x27);
        assert_eq!(read(&mut u, FBRD, 4), 3);
        // A byte write replaces the whole register.
        u.write(IMSC, &0x7ffu32.to_le_bytes());
        u.write(IMSC + 1, &[0x12]);
        assert_eq!(read(&mut u, IMSC, 4), 0x12);
        assert_eq!(read(&mut u, FR, 4), FR_IDLE as u64);
    }
}
