//! Reading an input file (firmware, kernel image, initrd) with a bound: only a regular file is
//! read, its size is checked against a limit before any byte is read, and the read itself never
//! goes past the limit (a file that grows while it is read is refused). Special files are
//! refused by kind: a character device such as `/dev/zero` would never end, a FIFO would block,
//! a directory has no bytes. The bytes land once, in the buffer the machine keeps.
//!
//! Owns nothing but the read. Must not depend on the loader or backends.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;

/// Why an input file could not be read (the caller names the file in its message).
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{0}")]
    Open(std::io::Error),
    #[error("it is {0}, not a regular file")]
    NotRegular(&'static str),
    #[error("it is {size} bytes, more than the {limit} bytes of {what}")]
    TooLarge { size: u64, limit: u64, what: String },
    #[error("{0}")]
    Read(std::io::Error),
    #[error("its size changed while it was read")]
    Changed,
}

/// Reads the regular file at `path`, refusing it when it is larger than `limit` bytes (`what`
/// names the limit, for the message: "the guest RAM").
pub fn read_bounded(path: &Path, limit: u64, what: &str) -> Result<Arc<[u8]>, InputError> {
    let file = open(path)?;
    let meta = file.metadata().map_err(InputError::Read)?;
    if let Some(kind) = special_kind(&meta.file_type()) {
        return Err(InputError::NotRegular(kind));
    }
    let size = meta.len();
    let too_large = || InputError::TooLarge {
        size,
        limit,
        what: what.to_string(),
    };
    if size > limit {
        return Err(too_large());
    }
    let len = usize::try_from(size).map_err(|_| too_large())?;
    read_exactly(file, len)
}

/// Opens without blocking: opening a FIFO for reading would otherwise wait for a writer
/// (fifo(7)). Regular files ignore O_NONBLOCK (open(2)).
fn open(path: &Path) -> Result<File, InputError> {
    OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(path)
        .map_err(InputError::Open)
}

/// What a file that is not a regular file is, for the message; None for a regular file.
fn special_kind(t: &std::fs::FileType) -> Option<&'static str> {
    if t.is_file() {
        None
    } else if t.is_dir() {
        Some("a directory")
    } else if t.is_fifo() {
        Some("a FIFO")
    } else if t.is_char_device() {
        Some("a character device")
    } else if t.is_block_device() {
        Some("a block device")
    } else if t.is_socket() {
        Some("a socket")
    } else {
        Some("a special file")
    }
}

/// Reads exactly `len` bytes and checks that the file ends there.
fn read_exactly(mut file: File, len: usize) -> Result<Arc<[u8]>, InputError> {
    // Zeroed pages that are only read cost no memory: the copy into the Arc is the one
    // allocation that holds the file.
    let mut buf: Arc<[u8]> = Arc::from(vec![0u8; len]);
    let dst = Arc::get_mut(&mut buf).ok_or(InputError::Changed)?;
    match file.read_exact(dst) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(InputError::Changed),
        Err(e) => return Err(InputError::Read(e)),
    }
    let mut probe = [0u8; 1];
    if file.read(&mut probe).map_err(InputError::Read)? != 0 {
        return Err(InputError::Changed);
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::path::PathBuf;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("kvmdbg-file-input-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[test]
    fn a_regular_file_within_the_limit_is_read_whole() {
        let p = temp("ok.bin");
        std::fs::File::create(&p)
            .unwrap()
            .write_all(&[1, 2, 3, 4, 5])
            .unwrap();
        assert_eq!(&*read_bounded(&p, 5, "RAM").unwrap(), &[1, 2, 3, 4, 5]);
        let e = read_bounded(&p, 4, "the guest RAM size").unwrap_err();
        assert!(
            matches!(
                e,
                InputError::TooLarge {
                    size: 5,
                    limit: 4,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("the guest RAM size"), "{e}");
        std::fs::write(&p, b"").unwrap();
        assert!(read_bounded(&p, 5, "RAM").unwrap().is_empty());
    }

    #[test]
    fn special_files_are_refused_by_kind_without_reading() {
        let dir = temp("dir");
        std::fs::create_dir_all(&dir).unwrap();
        let kind = |p: &Path| match read_bounded(p, 1 << 20, "RAM") {
            Err(InputError::NotRegular(kind)) => kind,
            other => panic!("{}: {other:?}", p.display()),
        };
        assert_eq!(kind(&dir), "a directory");
        assert_eq!(kind(Path::new("/dev/zero")), "a character device");
        let fifo = temp("fifo");
        let _ = std::fs::remove_file(&fifo);
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        // Opening a FIFO with no writer would block without O_NONBLOCK.
        assert_eq!(kind(&fifo), "a FIFO");
        let e = read_bounded(&temp("missing"), 1, "RAM").unwrap_err();
        assert!(matches!(e, InputError::Open(_)), "{e}");
    }
}
