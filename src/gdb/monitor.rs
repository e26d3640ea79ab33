//! `monitor` commands (qRcmd): inspection that gdb itself cannot do.

use gdbstub::target::ext::monitor_cmd::{outputln, ConsoleOutput, MonitorCmd};

use crate::a64::vcatch::VectorCatch;
use crate::a64::walk::{Translation, WalkTrace};
use crate::a64::Reg;
use crate::debug::translate::TranslateError;
use crate::debug::vcatch::parse_catch;

use super::target_xml::{reg_name, system_registers};
use super::{Debugger, GdbError};

const HELP: &str = "\
kvmdbg monitor commands:
  help                 this list
  translate VA         walk the current vCPU's stage-1 tables for VA, level by level
  pagetable            mapped virtual ranges of the current vCPU with their attributes
  sysregs              fpsr, fpcr and every system register of the current vCPU
  caps                 backend, hardware breakpoint/watchpoint slots (total and in use)
  mmio-reads on|off    let gdb read and write device memory (reads have side effects)
  catch                the vector catch set, how it is made, the last catch's syndrome
  catch exceptions [sync|irq|fiq|serror|all]... [el0|el1]...
                       also stop when a vCPU takes these exceptions (default: all kinds,
                       from EL0 and EL1), at the vector
  catch none|clear     stop catching exceptions
  reset                reset the machine: reload the firmware, every vCPU at reset
                       (breakpoints and watchpoints kept); then run
                       `maintenance flush register-cache` so gdb re-reads registers
";

/// Most translations `pagetable` makes before it stops (each is one round trip to the vCPU).
const PAGETABLE_MAX_WALKS: usize = 1 << 16;
/// Most ranges `pagetable` prints.
const PAGETABLE_MAX_RANGES: usize = 512;

impl MonitorCmd for Debugger {
    fn handle_monitor_cmd(
        &mut self,
        cmd: &[u8],
        mut out: ConsoleOutput<'_>,
    ) -> Result<(), GdbError> {
        let text = String::from_utf8_lossy(cmd);
        let mut words = text.split_whitespace();
        let vcpu = self.mem_vcpu;
        match (words.next(), words.next()) {
            (None | Some("help"), _) => outputln!(out, "{HELP}{}", super::reverse::HELP),
            (Some("translate"), Some(va)) => match parse_u64(va) {
                Some(va) => self.cmd_translate(vcpu, va, &mut out)?,
                None => outputln!(out, "translate: bad address {va:?}"),
            },
            (Some("translate"), None) => outputln!(out, "usage: monitor translate VA"),
            (Some("pagetable"), _) => self.cmd_pagetable(vcpu, &mut out)?,
            (Some("sysregs"), _) => self.cmd_sysregs(vcpu, &mut out)?,
            (Some("caps"), _) => self.cmd_caps(&mut out),
            (Some("mmio-reads"), Some(onoff @ ("on" | "off"))) => {
                self.session.set_mmio_access(onoff == "on");
                outputln!(out, "device memory access from gdb: {onoff}");
            }
            (Some("mmio-reads"), _) => outputln!(
                out,
                "device memory access from gdb is {} (monitor mmio-reads on|off)",
                if self.session.mmio_access() {
                    "on"
                } else {
                    "off"
                }
            ),
            (Some("reset"), _) => self.cmd_reset(&mut out),
            (Some("catch"), arg) => self.cmd_catch(arg, words, &mut out),
            (Some("record"), arg) => self.cmd_record(arg, out),
            (Some(other), _) => outputln!(out, "unknown command {other:?}; try monitor help"),
        }
        Ok(())
    }
}

impl Debugger {
    fn cmd_reset(&mut self, out: &mut ConsoleOutput<'_>) {
        match self.session.reset() {
            Ok(r) => {
                self.guest_end = None;
                outputln!(
                    out,
                    "machine reset: firmware and device tree reloaded, every vCPU at its reset \
                     state, vCPU 0 at {:#x}; {} breakpoint(s)/watchpoint(s) set again",
                    r.entry,
                    r.restored
                );
                for d in &r.dropped {
                    outputln!(out, "  dropped: {d}");
                }
                outputln!(
                    out,
                    "gdb still shows the registers from before: run \
                     `maintenance flush register-cache`"
                );
            }
            Err(e) => outputln!(out, "reset failed: {e}"),
        }
    }
}

impl Debugger {
    /// `monitor catch [exceptions ARGS | none | clear]`.
    fn cmd_catch<'a>(
        &mut self,
        arg: Option<&'a str>,
        rest: impl Iterator<Item = &'a str>,
        out: &mut ConsoleOutput<'_>,
    ) {
        let state = self.session.debug_state();
        let new = match arg {
            None => None,
            Some("none" | "clear") => Some(VectorCatch::NONE),
            Some("exceptions") => match parse_catch(rest) {
                Ok(set) => Some(state.catch().union(set)),
                Err(e) => {
                    outputln!(out, "catch exceptions: {e}");
                    return;
                }
            },
            Some(other) => {
                outputln!(
                    out,
                    "catch: unknown {other:?}; usage: monitor catch [exceptions \
                     [sync|irq|fiq|serror|all] [el0|el1] | none]"
                );
                return;
            }
        };
        if let Some(set) = new {
            if let Err(e) = state.set_catch(set) {
                outputln!(out, "catch: not set: {e}");
                return;
            }
        }
        let set = state.catch();
        outputln!(out, "vector catch: {}", set.describe());
        if !set.is_empty() {
            if state.exact_catch() {
                outputln!(out, "  made by the backend at exception entry (exact)");
            } else {
                outputln!(
                    out,
                    "  made of {} hardware breakpoint(s) on the VBAR_EL1 vector entries \
                     (re-read at every exit; see the user guide for the limits)",
                    state.catch_slots()
                );
            }
        }
        match state.last_catch() {
            Some(rec) => outputln!(out, "last catch: {}", rec.describe()),
            None => outputln!(out, "last catch: none yet"),
        }
    }
}

fn parse_u64(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(&hex.replace('_', ""), 16).ok(),
        None => s.parse().ok(),
    }
}

/// One line describing a translation's attributes.
fn attrs(t: &Translation) -> String {
    let rw = |r: bool, w: bool| match (r, w) {
        (true, true) => "rw",
        (true, false) => "r-",
        _ => "--",
    };
    format!(
        "el1:{}{} el0:{}{} attr[{}]={:#04x} sh={} {}{}",
        rw(t.readable(false), t.writable(false)),
        if t.executable(false) { "x" } else { "-" },
        rw(t.readable(true), t.writable(true)),
        if t.executable(true) { "x" } else { "-" },
        t.attr_index,
        t.mem_attr,
        t.sh,
        if t.ng { "nG" } else { "G" },
        if t.contiguous { " contig" } else { "" }
    )
}

impl Debugger {
    fn cmd_translate(
        &mut self,
        vcpu: usize,
        va: u64,
        out: &mut ConsoleOutput<'_>,
    ) -> Result<(), GdbError> {
        let (result, trace) = self.session.translate(vcpu, va)?;
        print_trace(&trace, out);
        match result {
            Ok(t) if !t.mmu_enabled => outputln!(out, "{va:#x} -> {:#x} (MMU off: flat)", t.pa),
            Ok(t) => {
                outputln!(
                    out,
                    "{va:#x} -> {:#x} (level {} leaf, {} bytes)",
                    t.pa,
                    t.level,
                    1u64 << t.size_log2.min(63)
                );
                outputln!(out, "  {}", attrs(&t));
            }
            Err(e) => outputln!(out, "{va:#x}: {e}"),
        }
        Ok(())
    }

    fn cmd_pagetable(&mut self, vcpu: usize, out: &mut ConsoleOutput<'_>) -> Result<(), GdbError> {
        let (first, trace) = self.session.translate(vcpu, 0)?;
        if let Ok(t) = &first {
            if !t.mmu_enabled {
                outputln!(
                    out,
                    "MMU off (SCTLR_EL1.M = 0): every address maps to itself"
                );
                return Ok(());
            }
        }
        let mut walker = PageWalk::default();
        let lower_bits = trace.va_bits.clamp(16, 52) as u32;
        walker.region(self, vcpu, 0, 1u64 << lower_bits, out)?;
        let (_, upper_trace) = self.session.translate(vcpu, u64::MAX)?;
        let upper_bits = upper_trace.va_bits.clamp(16, 52) as u32;
        walker.region(self, vcpu, (1u64 << upper_bits).wrapping_neg(), 0, out)?;
        walker.flush(out);
        if walker.truncated {
            outputln!(
                out,
                "(stopped after {} walks / {} ranges)",
                PAGETABLE_MAX_WALKS,
                PAGETABLE_MAX_RANGES
            );
        }
        Ok(())
    }

    fn cmd_sysregs(&mut self, vcpu: usize, out: &mut ConsoleOutput<'_>) -> Result<(), GdbError> {
        let list = self.session.reg_list(vcpu)?;
        for (name, reg) in [("fpsr", Reg::Fpsr), ("fpcr", Reg::Fpcr)] {
            match self.session.read_reg(vcpu, reg) {
                Ok(v) => outputln!(out, "{name:<20} {:#018x}", v as u64),
                Err(e) => outputln!(out, "{name:<20} <unreadable: {e}>"),
            }
        }
        for r in system_registers(&list) {
            let reg = super::regs::sys_reg(r);
            match self.session.read_reg(vcpu, reg) {
                Ok(v) => outputln!(out, "{:<20} {:#018x}", reg_name(r), v as u64),
                Err(e) => outputln!(out, "{:<20} <unreadable: {e}>", reg_name(r)),
            }
        }
        Ok(())
    }

    fn cmd_caps(&mut self, out: &mut ConsoleOutput<'_>) {
        let caps = self.session.caps().clone();
        let (sw, hw_bp, wp) = self.session.debug_state().counts();
        let catch_slots = self.session.debug_state().catch_slots();
        outputln!(out, "backend: {}", caps.backend);
        outputln!(out, "vCPUs: {}", self.session.vcpu_count());
        outputln!(
            out,
            "hardware breakpoints: {} in use of {} ({} hbreak, {} vector catch)",
            hw_bp + catch_slots,
            caps.hw_breakpoints,
            hw_bp,
            catch_slots
        );
        outputln!(
            out,
            "watchpoint slots: {} total; {} watches set",
            caps.hw_watchpoints,
            wp
        );
        outputln!(out, "software breakpoints: {sw}");
        outputln!(
            out,
            "device memory access: {}",
            if self.session.mmio_access() {
                "on"
            } else {
                "off"
            }
        );
    }
}

fn print_trace(trace: &WalkTrace, out: &mut ConsoleOutput<'_>) {
    if let Some(upper) = trace.upper {
        outputln!(
            out,
            "{} ({}-bit VA, {:?} granule, start level {})",
            if upper { "TTBR1_EL1" } else { "TTBR0_EL1" },
            trace.va_bits,
            trace.granule.map(|g| 1u32 << g.bits()).unwrap_or(0),
            trace.start_level
        );
    }
    for s in trace.steps() {
        match s.desc {
            Some(d) => outputln!(
                out,
                "  L{}: table {:#x}[{}] @ {:#x} = {:#018x}",
                s.level,
                s.table,
                s.index,
                s.desc_addr,
                d
            ),
            None => outputln!(
                out,
                "  L{}: table {:#x}[{}] @ {:#x} = <not RAM>",
                s.level,
                s.table,
                s.index,
                s.desc_addr
            ),
        }
    }
}

/// Collects mapped ranges, merging neighbours with the same attributes and contiguous PAs.
#[derive(Default)]
struct PageWalk {
    /// (va start, va end, pa start, attributes) of the range being built.
    cur: Option<(u64, u64, u64, String)>,
    walks: usize,
    ranges: usize,
    truncated: bool,
}

impl PageWalk {
    /// Walks `[start, end)` (`end` 0 meaning 2^64).
    fn region(
        &mut self,
        dbg: &mut Debugger,
        vcpu: usize,
        start: u64,
        end: u64,
        out: &mut ConsoleOutput<'_>,
    ) -> Result<(), GdbError> {
        let mut va = start;
        loop {
            if self.truncated {
                return Ok(());
            }
            if self.walks >= PAGETABLE_MAX_WALKS || self.ranges >= PAGETABLE_MAX_RANGES {
                self.truncated = true;
                return Ok(());
            }
            self.walks += 1;
            let (result, trace) = dbg.session.translate(vcpu, va)?;
            let size_log2 = match result {
                Ok(t) => {
                    let size = 1u64 << t.size_log2.min(63);
                    let base_va = va & !(size - 1);
                    self.add(base_va, size, t.pa & !(size - 1), attrs(&t), out);
                    t.size_log2 as u32
                }
                Err(TranslateError::Fault { fault, .. }) => {
                    self.flush(out);
                    let g = trace.granule.map(|g| g.bits()).unwrap_or(12);
                    let level = fault.level.clamp(0, 3) as u32;
                    g + (3 - level) * (g - 3)
                }
                Err(e) => {
                    outputln!(out, "{va:#x}: {e}");
                    return Ok(());
                }
            };
            let step = 1u64 << size_log2.min(63);
            let next = (va & !(step - 1)).wrapping_add(step);
            if next == 0 || next <= va || (end != 0 && next >= end) {
                return Ok(());
            }
            va = next;
        }
    }

    fn add(&mut self, va: u64, size: u64, pa: u64, attr: String, out: &mut ConsoleOutput<'_>) {
        if let Some((s, e, p, a)) = &mut self.cur {
            if *e == va && p.wrapping_add(va - *s) == pa && *a == attr {
                *e = va.wrapping_add(size);
                return;
            }
        }
        self.flush(out);
        self.cur = Some((va, va.wrapping_add(size), pa, attr));
    }

    fn flush(&mut self, out: &mut ConsoleOutput<'_>) {
        if let Some((s, e, p, a)) = self.cur.take() {
            self.ranges += 1;
            outputln!(
                out,
                "{:#018x}-{:#018x} -> {:#x} {}",
                s,
                e.wrapping_sub(1),
                p,
                a
            );
        }
    }
}
