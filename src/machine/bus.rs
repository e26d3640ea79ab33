//! The MMIO device bus: which device answers which guest-physical range.
//!
//! Owns address decoding for devices emulated in userspace. Unclaimed addresses are reported
//! to the caller, which decides the guest-visible effect.

use std::sync::{Arc, Mutex};

/// A device emulated in userspace.
pub trait MmioDevice: Send {
    /// Reads `data.len()` bytes (1, 2, 4 or 8) at `offset` from the device base.
    fn read(&mut self, offset: u64, data: &mut [u8]);
    /// Writes `data` (little-endian) at `offset`.
    fn write(&mut self, offset: u64, data: &[u8]);
    /// The device's guest-visible state, for a snapshot (`None`: it has none to save).
    fn save(&self) -> Option<Box<dyn std::any::Any + Send>> {
        None
    }
    /// Puts back a state [`MmioDevice::save`] returned.
    fn restore(&mut self, _state: &dyn std::any::Any) {}
}

/// The saved states of every device, in bus order.
#[derive(Default)]
pub struct DeviceStates(Vec<Option<Box<dyn std::any::Any + Send>>>);

impl DeviceStates {
    /// The bytes the saved states hold: each state's own size (what a device state owns on
    /// the heap, such as the PL011's few FIFO bytes, is not counted).
    pub fn bytes(&self) -> usize {
        std::mem::size_of_val(self.0.as_slice())
            + self
                .0
                .iter()
                .flatten()
                .map(|s| std::mem::size_of_val(&**s))
                .sum::<usize>()
    }
}

struct Range {
    base: u64,
    size: u64,
    device: Arc<Mutex<dyn MmioDevice>>,
}

/// The set of userspace devices.
#[derive(Default)]
pub struct Bus {
    ranges: Vec<Range>,
}

/// An access to an address no device claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no device at physical address {0:#x}")]
pub struct Unclaimed(pub u64);

impl Bus {
    pub fn new() -> Self {
        Bus::default()
    }

    /// Claims `[base, base + size)` for `device`.
    pub fn add(&mut self, base: u64, size: u64, device: Arc<Mutex<dyn MmioDevice>>) {
        self.ranges.push(Range { base, size, device });
    }

    fn find(&self, addr: u64, len: usize) -> Result<(&Range, u64), Unclaimed> {
        self.ranges
            .iter()
            .find(|r| addr >= r.base && addr - r.base < r.size)
            .filter(|r| addr - r.base + len as u64 <= r.size)
            .map(|r| (r, addr - r.base))
            .ok_or(Unclaimed(addr))
    }

    /// Bytes from `addr` to the end of the device window that claims it; None when no device
    /// does.
    pub fn window_left(&self, addr: u64) -> Option<u64> {
        self.find(addr, 1).ok().map(|(r, off)| r.size - off)
    }

    /// True when some device claims `addr`.
    pub fn claims(&self, addr: u64) -> bool {
        self.find(addr, 1).is_ok()
    }

    pub fn read(&self, addr: u64, data: &mut [u8]) -> Result<(), Unclaimed> {
        let (r, off) = self.find(addr, data.len())?;
        lock(&r.device).read(off, data);
        Ok(())
    }

    /// Saves every device's state (vCPUs stopped).
    pub fn save(&self) -> DeviceStates {
        DeviceStates(self.ranges.iter().map(|r| lock(&r.device).save()).collect())
    }

    /// Restores what [`Bus::save`] returned.
    pub fn restore(&self, states: &DeviceStates) {
        for (r, s) in self.ranges.iter().zip(&states.0) {
            if let Some(s) = s {
                lock(&r.device).restore(s.as_ref());
            }
        }
    }

    pub fn write(&self, addr: u64, data: &[u8]) -> Result<(), Unclaimed> {
        let (r, off) = self.find(addr, data.len())?;
        lock(&r.device).write(off, data);
        Ok(())
    }
}

/// Locks a device, recovering it if a previous holder panicked (device state stays usable).
fn lock(dev: &Mutex<dyn MmioDevice>) -> std::sync::MutexGuard<'_, dyn MmioDevice + 'static> {
    dev.lock().unwrap_or_else(|p| p.into_inner())
}
