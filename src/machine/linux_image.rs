//! The arm64 Linux kernel image format: the 64-byte `Image` header and the compressed forms a
//! boot loader must unpack first (gzip, and EFI zboot with a gzip payload).
//!
//! Facts from Documentation/arch/arm64/booting.rst ("4. Call the kernel image": header layout,
//! `text_offset`, `image_size`, the flags field; "3. Decompress the kernel image"), the flag
//! encodings in arch/arm64/include/asm/image.h, and the EFI zboot header in
//! drivers/firmware/efi/libstub/zboot-header.S. The gzip member format is RFC 1952.
//!
//! Owns parsing only (pure functions over bytes); placement in RAM is `loader`'s. Must not
//! depend on backends.

use std::borrow::Cow;
use std::io::Read;

use super::error::{MachineError, Result};

/// Size of the Image header (booting.rst: "a 64-byte header").
pub const HEADER_SIZE: usize = 64;
/// Offset and value of the magic: `"ARM\x64"` at 0x38 (booting.rst, `magic = 0x644d5241`).
const MAGIC_OFFSET: usize = 0x38;
const MAGIC: &[u8; 4] = b"ARM\x64";
/// `text_offset` assumed when `image_size` is zero (kernels before v3.17, booting.rst).
pub const LEGACY_TEXT_OFFSET: u64 = 0x8_0000;
/// The Image is placed `text_offset` bytes above a 2 MiB aligned base (booting.rst).
pub const BASE_ALIGN: u64 = 2 << 20;
/// gzip member start (RFC 1952 2.3.1): ID1 = 0x1f, ID2 = 0x8b, CM = 8 (deflate), and FLG
/// with its reserved bits 5-7 clear; the fixed header is 10 bytes.
const GZIP_MAGIC: &[u8; 3] = b"\x1f\x8b\x08";
const GZIP_FLG_RESERVED: u8 = 0xe0;
const GZIP_HEADER_LEN: usize = 10;
/// EFI zboot: "MZ", then the image type "zimg" at 4, the payload offset (u32) at 8, its size
/// (u32) at 12 and the NUL-terminated compression type at 0x18 (zboot-header.S).
const ZBOOT_TYPE_OFFSET: usize = 4;
const ZBOOT_TYPE: &[u8; 4] = b"zimg";
const ZBOOT_COMP_OFFSET: usize = 0x18;

/// The page size a kernel was built for (flags bits 1-2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageSize {
    Unspecified,
    K4,
    K16,
    K64,
}

/// The fields of an arm64 Image header that decide how it is booted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageHeader {
    /// Offset of the image above its 2 MiB aligned base.
    pub text_offset: u64,
    /// Bytes from the image start the kernel may use (text, data, BSS, early page tables);
    /// 0 for kernels older than v3.17.
    pub image_size: u64,
    pub page_size: PageSize,
    /// Flags bit 3: the image may sit anywhere in the 48-bit physical range rather than as
    /// close as possible to the start of DRAM.
    pub anywhere: bool,
}

impl ImageHeader {
    /// The number of bytes to reserve from the image start: `image_size`, or the file's size
    /// for a legacy header.
    pub fn reserved(&self, file_len: usize) -> u64 {
        if self.image_size == 0 {
            file_len as u64
        } else {
            self.image_size
        }
    }
}

fn le64(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

fn le32(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(b)
}

fn bad(what: impl Into<String>) -> MachineError {
    MachineError::BadImage(what.into())
}

/// Whether `bytes` carries the arm64 Image magic.
pub fn is_image(bytes: &[u8]) -> bool {
    bytes.len() >= HEADER_SIZE && &bytes[MAGIC_OFFSET..MAGIC_OFFSET + 4] == MAGIC
}

/// Whether `bytes` is a gzip stream or an EFI zboot image: something to unpack first.
pub fn is_compressed(bytes: &[u8]) -> bool {
    is_gzip(bytes) || is_zboot(bytes)
}

/// A gzip header (so a raw binary whose first bytes merely look like the magic stays raw).
fn is_gzip(bytes: &[u8]) -> bool {
    bytes.len() >= GZIP_HEADER_LEN
        && bytes.starts_with(GZIP_MAGIC)
        && bytes[3] & GZIP_FLG_RESERVED == 0
}

fn is_zboot(bytes: &[u8]) -> bool {
    bytes.len() >= HEADER_SIZE
        && bytes.starts_with(b"MZ")
        && &bytes[ZBOOT_TYPE_OFFSET..ZBOOT_TYPE_OFFSET + 4] == ZBOOT_TYPE
}

/// Parses and checks the header of an arm64 Image (`is_image` must hold).
pub fn parse_header(bytes: &[u8]) -> Result<ImageHeader> {
    if !is_image(bytes) {
        return Err(bad("no arm64 Image magic \"ARM\\x64\" at offset 0x38"));
    }
    let image_size = le64(bytes, 0x10);
    let flags = if image_size == 0 {
        0
    } else {
        le64(bytes, 0x18)
    };
    let text_offset = if image_size == 0 {
        LEGACY_TEXT_OFFSET
    } else {
        le64(bytes, 0x08)
    };
    if flags & 1 != 0 {
        return Err(bad(
            "big-endian kernel (flags bit 0): kvmdbg's vCPUs boot little-endian",
        ));
    }
    if flags >> 4 != 0 {
        log::warn!("arm64 Image: reserved flag bits set ({flags:#x}); ignored");
    }
    if text_offset % 4096 != 0 || text_offset >= BASE_ALIGN {
        return Err(bad(format!(
            "text_offset {text_offset:#x} is not a page-aligned offset inside a 2 MiB block"
        )));
    }
    if image_size != 0 && image_size < bytes.len() as u64 {
        return Err(bad(format!(
            "image_size {image_size:#x} is smaller than the file ({:#x} bytes)",
            bytes.len()
        )));
    }
    let page_size = match (flags >> 1) & 3 {
        0 => PageSize::Unspecified,
        1 => PageSize::K4,
        2 => PageSize::K16,
        _ => PageSize::K64,
    };
    Ok(ImageHeader {
        text_offset,
        image_size,
        page_size,
        anywhere: flags & (1 << 3) != 0,
    })
}

/// Unpacks a gzip stream or an EFI zboot image with a gzip payload, at most `limit` bytes of
/// output (the RAM size: anything larger could not be booted anyway). Other bytes are
/// returned as they are.
pub fn unpack(bytes: &[u8], limit: u64) -> Result<Cow<'_, [u8]>> {
    if is_gzip(bytes) {
        return gunzip(bytes, limit).map(Cow::Owned);
    }
    if !is_zboot(bytes) {
        return Ok(Cow::Borrowed(bytes));
    }
    let comp_end = bytes[ZBOOT_COMP_OFFSET..MAGIC_OFFSET]
        .iter()
        .position(|&b| b == 0)
        .map_or(MAGIC_OFFSET, |n| ZBOOT_COMP_OFFSET + n);
    let comp = String::from_utf8_lossy(&bytes[ZBOOT_COMP_OFFSET..comp_end]);
    if comp != "gzip" {
        return Err(bad(format!(
            "EFI zboot image compressed with {comp:?}: kvmdbg unpacks gzip only \
             (extract the Image, e.g. with the kernel's scripts/extract-vmlinux)"
        )));
    }
    let offset = le32(bytes, 8) as usize;
    let size = le32(bytes, 12) as usize;
    let payload = offset
        .checked_add(size)
        .and_then(|end| bytes.get(offset..end))
        .ok_or_else(|| {
            bad(format!(
                "EFI zboot payload [{offset:#x}, +{size:#x}) lies outside the file ({:#x} bytes)",
                bytes.len()
            ))
        })?;
    let inner = gunzip(payload, limit)?;
    if !is_image(&inner) {
        return Err(bad("EFI zboot payload is not an arm64 Image"));
    }
    Ok(Cow::Owned(inner))
}

fn gunzip(bytes: &[u8], limit: u64) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut reader = flate2::read::GzDecoder::new(bytes).take(limit.saturating_add(1));
    reader
        .read_to_end(&mut out)
        .map_err(|e| bad(format!("cannot decompress the gzip stream: {e}")))?;
    if out.len() as u64 > limit {
        return Err(MachineError::ImageTooLarge {
            size: out.len() as u64,
            ram: limit,
        });
    }
    Ok(out)
}

/// A test image: a header with the given fields (booting.rst layout), a `b` over the header
/// as code0, then `body` bytes.
#[cfg(test)]
pub(crate) fn test_image(text_offset: u64, image_size: u64, flags: u64, body: usize) -> Vec<u8> {
    let mut h = vec![0u8; HEADER_SIZE];
    h[0..4].copy_from_slice(&0x1400_0010u32.to_le_bytes()); // code0: b +0x40
    h[8..16].copy_from_slice(&text_offset.to_le_bytes());
    h[16..24].copy_from_slice(&image_size.to_le_bytes());
    h[24..32].copy_from_slice(&flags.to_le_bytes());
    h[0x38..0x3c].copy_from_slice(MAGIC);
    h.resize(HEADER_SIZE + body, 0xaa);
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn zboot(comp: &str, payload: &[u8]) -> Vec<u8> {
        let mut z = vec![0u8; 0x100];
        z[0..2].copy_from_slice(b"MZ");
        z[4..8].copy_from_slice(ZBOOT_TYPE);
        z[8..12].copy_from_slice(&0x100u32.to_le_bytes());
        z[12..16].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        z[0x18..0x18 + comp.len()].copy_from_slice(comp.as_bytes());
        z.extend_from_slice(payload);
        z
    }

    #[test]
    fn debian_style_header_parses() {
        // Flags 0xa: little-endian, 4K pages, anywhere (Debian 12's arm64 Image).
        let img = test_image(0, 0x201_0000, 0xa, 4096);
        let h = parse_header(&img).unwrap();
        assert_eq!(h.text_offset, 0);
        assert_eq!(h.image_size, 0x201_0000);
        assert_eq!(h.page_size, PageSize::K4);
        assert!(h.anywhere);
        assert_eq!(h.reserved(img.len()), 0x201_0000);
    }

    #[test]
    fn legacy_header_assumes_text_offset_0x80000_and_ignores_flags() {
        let img = test_image(0x1234, 0, 0x1, 100);
        let h = parse_header(&img).unwrap();
        assert_eq!(h.text_offset, LEGACY_TEXT_OFFSET);
        assert_eq!(h.page_size, PageSize::Unspecified);
        assert_eq!(h.reserved(img.len()), img.len() as u64);
    }

    #[test]
    fn headers_that_cannot_be_honoured_are_errors() {
        let cases = [
            (test_image(0, 1 << 20, 1, 0), "big-endian"),
            (test_image(0x123, 1 << 20, 2, 0), "text_offset"),
            (test_image(2 << 20, 4 << 20, 2, 0), "text_offset"),
            (test_image(0, 16, 2, 100), "image_size"),
        ];
        for (img, what) in cases {
            let e = parse_header(&img).unwrap_err().to_string();
            assert!(e.contains(what), "{e}");
        }
        assert!(!is_image(&[0u8; 63]));
        let mut no_magic = test_image(0, 1 << 20, 2, 0);
        no_magic[0x38] = b'X';
        assert!(parse_header(&no_magic).is_err());
    }

    #[test]
    fn gzip_and_zboot_gzip_unpack_to_the_image() {
        let img = test_image(0, 1 << 20, 2, 5000);
        let gz = gzip(&img);
        assert!(is_compressed(&gz));
        assert_eq!(&*unpack(&gz, 1 << 20).unwrap(), &img[..]);
        let z = zboot("gzip", &gz);
        assert!(is_compressed(&z));
        assert_eq!(&*unpack(&z, 1 << 20).unwrap(), &img[..]);
        // Plain bytes come back untouched and borrowed.
        assert!(matches!(unpack(&img, 1 << 20).unwrap(), Cow::Borrowed(_)));
    }

    #[test]
    fn bad_compressed_inputs_are_clear_errors() {
        let img = test_image(0, 1 << 20, 2, 5000);
        let gz = gzip(&img);
        let e = unpack(&gz[..gz.len() / 2], 1 << 20)
            .unwrap_err()
            .to_string();
        assert!(e.contains("decompress"), "{e}");
        let e = unpack(&gz, 1000).unwrap_err();
        assert!(matches!(e, MachineError::ImageTooLarge { .. }), "{e}");
        let e = unpack(&zboot("zstd", &gz), 1 << 20)
            .unwrap_err()
            .to_string();
        assert!(e.contains("zstd"), "{e}");
        let mut z = zboot("gzip", &gz);
        z[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        let e = unpack(&z, 1 << 20).unwrap_err().to_string();
        assert!(e.contains("outside the file"), "{e}");
        let e = unpack(&zboot("gzip", &gzip(b"not an image")), 1 << 20)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not an arm64 Image"), "{e}");
    }
}
