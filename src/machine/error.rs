//! Machine-layer errors: one variant per failed operation, with the context to act on it.
//! How a run ends (including a guest fault) is not an error but an [`super::Outcome`].

use crate::backend::BackendError;
use crate::debug::state::DebugError;

#[derive(Debug, thiserror::Error)]
pub enum MachineError {
    #[error("invalid memory size {0}: {1}")]
    MemorySize(String, String),
    #[error("invalid vCPU count {0}: must be 1..={1}")]
    VcpuCount(usize, usize),
    #[error("cannot allocate {size} bytes of guest RAM: {reason}")]
    AllocateRam { size: u64, reason: String },
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
    #[error("kernel Image: {0}")]
    BadImage(String),
    #[error("initrd of {size} bytes does not fit: {room} bytes free between the kernel and the device tree (use a larger --memory)")]
    InitrdTooLarge { size: u64, room: u64 },
    #[error("command line of {len} bytes is longer than the kernel accepts ({max} bytes)")]
    CmdlineTooLong { len: usize, max: usize },
    #[error("command line: {0}")]
    BadCmdline(String),
    #[error("DTB: {0}")]
    BadDtb(String),
    #[error("cannot write {len} bytes to guest RAM at {addr:#x}: {reason}")]
    WriteRam {
        addr: u64,
        len: usize,
        reason: String,
    },
    #[error("device tree: {0}")]
    Fdt(String),
    #[error("backend: {0}")]
    Backend(#[from] BackendError),
    #[error("debug: {0}")]
    Debug(#[from] DebugError),
    #[error("no vCPU {vcpu} (the machine has {count})")]
    NoSuchVcpu { vcpu: usize, count: usize },
    #[error("vCPU {vcpu} is running; stop it first")]
    VcpuRunning { vcpu: usize },
    #[error("vCPU {vcpu}: its thread has exited")]
    VcpuThreadGone { vcpu: usize },
    #[error("every vCPU thread has exited")]
    AllVcpuThreadsGone,
    #[error("waiting for a stop, but no vCPU is running")]
    NothingRunning,
    #[error("cannot start vCPU thread: {0}")]
    Thread(std::io::Error),
    #[error("recording: {0}")]
    Recording(String),
}

impl MachineError {
    /// Whether the error comes from what the user gave (files, arguments), as opposed to a
    /// failure of the host or the guest: the CLI exits with its usage status for these.
    pub fn is_bad_input(&self) -> bool {
        use MachineError as E;
        matches!(
            self,
            E::BadElf(_)
                | E::SegmentOutsideRam { .. }
                | E::ImageTooLarge { .. }
                | E::VcpuCount(..)
                | E::MemorySize(..)
                | E::NoRoomForDtb { .. }
                | E::BadImage(_)
                | E::InitrdTooLarge { .. }
                | E::CmdlineTooLong { .. }
                | E::BadCmdline(_)
                | E::BadDtb(_)
        )
    }
}

pub type Result<T> = std::result::Result<T, MachineError>;
