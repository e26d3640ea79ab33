//! Machine-layer errors: one variant per failed operation, with the context to act on it.

use std::path::PathBuf;

use crate::backend::BackendError;

#[derive(Debug, thiserror::Error)]
pub enum MachineError {
    #[error("invalid memory size {0}: {1}")]
    MemorySize(String, String),
    #[error("invalid vCPU count {0}: must be 1..={1}")]
    VcpuCount(usize, usize),
    #[error("cannot allocate {size} bytes of guest RAM: {reason}")]
    AllocateRam { size: u64, reason: String },
    #[error("cannot read firmware {path}: {source}")]
    ReadFirmware {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("firmware is not a valid AArch64 ELF: {0}")]
    BadElf(String),
    #[error("firmware segment {index} [{start:#x}, {end:#x}) lies outside RAM [{ram_start:#x}, {ram_end:#x})")]
    SegmentOutsideRam {
        index: usize,
        start: u64,
        end: u64,
        ram_start: u64,
        ram_end: u64,
    },
    #[error("firmware image of {size} bytes does not fit in {ram} bytes of RAM")]
    ImageTooLarge { size: u64, ram: u64 },
    #[error("no room for the device tree ({size} bytes) after the firmware image")]
    NoRoomForDtb { size: usize },
    #[error("device tree: {0}")]
    Fdt(String),
    #[error("backend: {0}")]
    Backend(#[from] BackendError),
    #[error("vCPU {vcpu}: {reason}")]
    Vcpu { vcpu: usize, reason: String },
    #[error("guest fault on vCPU {vcpu} at pc {pc:#x}: {reason}")]
    GuestFault {
        vcpu: usize,
        pc: u64,
        reason: String,
    },
    #[error("cannot start vCPU thread: {0}")]
    Thread(std::io::Error),
}

pub type Result<T> = std::result::Result<T, MachineError>;
