//! Backend errors: one variant per failed operation, with the context needed to act on it.

use crate::a64::Reg;

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("backend unavailable: {0}")]
    Unavailable(String),
    #[error("{op} failed: {source}")]
    Ioctl {
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("register {reg:?} is not accessible: {reason}")]
    Register { reg: Reg, reason: String },
    #[error("guest memory: {0}")]
    Memory(String),
    #[error("vCPU {index}: {reason}")]
    Vcpu { index: usize, reason: String },
    #[error("unsupported: {0}")]
    Unsupported(String),
}
