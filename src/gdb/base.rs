//! The multi-thread base: registers and memory of one thread (vCPU), the thread list, the
//! memory map and the exec file.

use gdbstub::common::Tid;
use gdbstub::target::ext::base::multithread::{MultiThreadBase, MultiThreadResumeOps};
use gdbstub::target::ext::base::single_register_access::SingleRegisterAccessOps;
use gdbstub::target::ext::exec_file::ExecFile;
use gdbstub::target::ext::memory_map::MemoryMap;
use gdbstub::target::ext::thread_extra_info::{ThreadExtraInfo, ThreadExtraInfoOps};
use gdbstub::target::{TargetError, TargetResult};
use gdbstub_arch::aarch64::reg::AArch64CoreRegs;

use crate::machine::layout;

use super::{tid_of, Debugger, EFAULT};

pub(crate) use super::guard::check::MAX_READ;

impl MultiThreadBase for Debugger {
    fn read_registers(&mut self, regs: &mut AArch64CoreRegs, tid: Tid) -> TargetResult<(), Self> {
        let vcpu = self.vcpu_or_err(tid)?;
        *regs = self.read_core(vcpu).map_err(TargetError::Fatal)?;
        Ok(())
    }

    fn write_registers(&mut self, regs: &AArch64CoreRegs, tid: Tid) -> TargetResult<(), Self> {
        let vcpu = self.vcpu_or_err(tid)?;
        // A value the vCPU refuses (a PSTATE mode it cannot be in) is gdb's error to see.
        self.write_core(vcpu, regs).map_err(|e| {
            log::warn!("gdb: G on vCPU {vcpu}: {e}");
            TargetError::Errno(super::EINVAL)
        })
    }

    fn support_single_register_access(&mut self) -> Option<SingleRegisterAccessOps<'_, Tid, Self>> {
        Some(self)
    }

    fn read_addrs(&mut self, start: u64, data: &mut [u8], tid: Tid) -> TargetResult<usize, Self> {
        let vcpu = self.vcpu_or_err(tid)?;
        // The event loop answers `m` itself (`mem_packets`); this is gdbstub's path, kept
        // equal. gdbstub 0.7 answers one `m` with a call per packet-buffer sized chunk, all
        // into one reply that cannot take an error once data is in it; the guard cuts every
        // length to MAX_READ, less than that buffer, so this is the one call of its reply:
        // the readable prefix (a shorter reply than asked is valid RSP) or an error.
        let want = data.len().min(MAX_READ);
        self.session
            .read_virt_prefix(vcpu, start, &mut data[..want])
            .map_err(|e| {
                log::debug!("gdb: read {start:#x}+{want}: {e}");
                TargetError::Errno(EFAULT)
            })
    }

    fn write_addrs(&mut self, start: u64, data: &[u8], tid: Tid) -> TargetResult<(), Self> {
        let vcpu = self.vcpu_or_err(tid)?;
        // The session checks the whole range before writing: a failing write changes nothing.
        self.session.write_virt(vcpu, start, data).map_err(|e| {
            log::debug!("gdb: write {start:#x}+{}: {e}", data.len());
            TargetError::Errno(EFAULT)
        })
    }

    fn list_active_threads(
        &mut self,
        thread_is_active: &mut dyn FnMut(Tid),
    ) -> Result<(), Self::Error> {
        for v in 0..self.session.vcpu_count() {
            thread_is_active(tid_of(v));
        }
        Ok(())
    }

    fn support_resume(&mut self) -> Option<MultiThreadResumeOps<'_, Self>> {
        Some(self)
    }

    fn support_thread_extra_info(&mut self) -> Option<ThreadExtraInfoOps<'_, Self>> {
        Some(self)
    }
}

impl ThreadExtraInfo for Debugger {
    fn thread_extra_info(&self, tid: Tid, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let text = format!("vCPU {}", tid.get() - 1);
        Ok(super::xfer(text.as_bytes(), 0, buf.len(), buf))
    }
}

/// Device windows of the virt memory map (QEMU hw/arm/virt.c `base_memmap`; our
/// `machine::layout`): gdb must not plant BRKs there (it uses hardware breakpoints in "rom").
fn device_windows() -> [(u64, u64); 3] {
    [
        (layout::GIC_DIST_BASE, layout::GIC_DIST_SIZE),
        (layout::GIC_REDIST_BASE, layout::GIC_REDIST_REGION),
        (layout::UART_BASE, layout::UART_SIZE),
    ]
}

/// qXfer:memory-map: the whole 64-bit space, device windows as "rom", the rest as "ram".
/// Addresses are virtual to gdb, so regions beyond RAM stay accessible (the session answers
/// E14 where nothing is mapped): "ram" means only "software breakpoints allowed".
pub fn memory_map_xml() -> String {
    let mut windows = device_windows().to_vec();
    windows.sort();
    let mut x = String::from(
        r#"<?xml version="1.0"?><!DOCTYPE memory-map PUBLIC "+//IDN gnu.org//DTD GDB Memory Map V1.0//EN" "http://sourceware.org/gdb/gdb-memory-map.dtd"><memory-map>"#,
    );
    let mut at = 0u64;
    for (base, size) in windows {
        if base > at {
            x.push_str(&region("ram", at, base - at));
        }
        x.push_str(&region("rom", base, size));
        at = base + size;
    }
    // The last region ends at 2^64; its length is 2^64 - at.
    x.push_str(&region("ram", at, at.wrapping_neg()));
    x.push_str("</memory-map>");
    x
}

fn region(kind: &str, start: u64, len: u64) -> String {
    format!(r#"<memory type="{kind}" start="{start:#x}" length="{len:#x}"/>"#)
}

impl MemoryMap for Debugger {
    fn memory_map_xml(
        &self,
        offset: u64,
        length: usize,
        buf: &mut [u8],
    ) -> TargetResult<usize, Self> {
        Ok(super::xfer(self.memory_map.as_bytes(), offset, length, buf))
    }
}

impl ExecFile for Debugger {
    fn get_exec_file(
        &self,
        _pid: Option<gdbstub::common::Pid>,
        offset: u64,
        length: usize,
        buf: &mut [u8],
    ) -> TargetResult<usize, Self> {
        let path = self.exec_file.as_deref().unwrap_or("");
        Ok(super::xfer(path.as_bytes(), offset, length, buf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regions(xml: &str) -> Vec<(String, u64, u64)> {
        xml.split("<memory ")
            .skip(1)
            .map(|r| {
                let attr = |name: &str| {
                    let start = r.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
                    let end = start + r[start..].find('"').unwrap();
                    r[start..end].to_string()
                };
                let num = |t: String| u64::from_str_radix(t.trim_start_matches("0x"), 16).unwrap();
                (attr("type"), num(attr("start")), num(attr("length")))
            })
            .collect()
    }

    #[test]
    fn memory_map_covers_the_whole_space_with_devices_read_only() {
        let r = regions(&memory_map_xml());
        let mut at = 0u64;
        for (_, start, len) in &r {
            assert_eq!(*start, at, "contiguous, no overlap: {r:?}");
            at = start.wrapping_add(*len);
        }
        assert_eq!(at, 0, "ends at 2^64: {r:?}");
        let kind = |addr: u64| {
            r.iter()
                .find(|(_, s, l)| addr.wrapping_sub(*s) < *l)
                .map(|(k, _, _)| k.as_str())
        };
        assert_eq!(kind(layout::UART_BASE), Some("rom"));
        assert_eq!(kind(layout::GIC_DIST_BASE), Some("rom"));
        assert_eq!(kind(layout::RAM_BASE), Some("ram"));
        assert_eq!(kind(0xffff_ff80_4000_0000), Some("ram"));
    }
}
