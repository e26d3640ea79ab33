//! Kernel data addresses without a `vmlinux`: Debian's kernel has no `CONFIG_KALLSYMS_ALL`
//! (so /proc/kallsyms lists code only) and ships a placeholder System.map, but every
//! `EXPORT_SYMBOL` has an entry in the kernel's export table, which is in the Image. On arm64
//! (`CONFIG_HAVE_ARCH_PREL32_RELOCATIONS`) an entry is three 32-bit place-relative offsets,
//! to the symbol, to its name and to its namespace (the kernel's include/linux/export.h,
//! `struct kernel_symbol`), 4-byte aligned. The Image is the kernel's memory image from
//! `_text` on (Documentation/arch/arm64/booting.rst), so a file offset plus the running
//! `_text` is the symbol's address. /proc/kallsyms does not list `_text`, but it lists
//! `primary_entry`, where the header's branch goes (arch/arm64/kernel/head.S: `code0` is the
//! EFI signature NOP or that branch, `code1` the branch): `_text` is its address less the
//! branch target's offset ([`entry_offset`]).

/// The arm64 Image header's magic at offset 0x38 (Documentation/arch/arm64/booting.rst).
const IMAGE_MAGIC_AT: usize = 0x38;
const IMAGE_MAGIC: &[u8; 4] = b"ARM\x64";

/// The offset from `_text` of the exported symbol `name` in the uncompressed arm64 `image`.
pub fn exported_symbol(image: &[u8], name: &str) -> Result<u64, String> {
    if image.get(IMAGE_MAGIC_AT..IMAGE_MAGIC_AT + 4) != Some(IMAGE_MAGIC) {
        return Err("not an uncompressed arm64 Image (no ARM\\x64 magic)".into());
    }
    // The name as a whole NUL-terminated string: where it starts.
    let needle = [b"\0", name.as_bytes(), b"\0"].concat();
    let names: Vec<i64> = image
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle.as_slice())
        .map(|(i, _)| i as i64 + 1)
        .collect();
    let word = |at: usize| i32::from_le_bytes(image[at..at + 4].try_into().unwrap()) as i64;
    let hits: Vec<u64> = (0..image.len().saturating_sub(12))
        .step_by(4)
        .filter(|&p| names.contains(&(p as i64 + 4 + word(p + 4))))
        .map(|p| (p as i64 + word(p)) as u64)
        .collect();
    match hits.as_slice() {
        [one] => Ok(*one),
        [] => Err(format!("no export table entry for {name}")),
        many => Err(format!("{} export table entries for {name}", many.len())),
    }
}

/// `B imm26`: bits \[31:26\] = 0b000101 (Arm ARM C6.2 "B").
const B_MASK: u32 = 0xfc00_0000;
const B_BITS: u32 = 0x1400_0000;

/// The Image offset of `primary_entry`: the target of the first of the header's two code
/// words that is a `B`.
pub fn entry_offset(image: &[u8]) -> Result<u64, String> {
    (0..2usize)
        .filter_map(|n| {
            let w = u32::from_le_bytes(image.get(4 * n..4 * n + 4)?.try_into().ok()?);
            // imm26 is a signed word offset; the header branches forward.
            (w & B_MASK == B_BITS).then(|| 4 * n as u64 + 4 * u64::from(w & 0x03ff_ffff))
        })
        .next()
        .ok_or_else(|| "the Image header has no branch to primary_entry".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_entry_that_points_at_the_name() {
        let mut img = vec![0u8; 0x100];
        img[IMAGE_MAGIC_AT..IMAGE_MAGIC_AT + 4].copy_from_slice(IMAGE_MAGIC);
        img[0x81..0x88].copy_from_slice(b"jiffies");
        // Entry at 0x40: value at 0xc0 (+0x80), name at 0x81 (0x44 + 0x3d).
        img[0x40..0x44].copy_from_slice(&0x80i32.to_le_bytes());
        img[0x44..0x48].copy_from_slice(&0x3di32.to_le_bytes());
        assert_eq!(exported_symbol(&img, "jiffies"), Ok(0xc0));
        assert!(exported_symbol(&img, "jiffies_64").is_err());
        assert!(exported_symbol(&img[1..], "jiffies").is_err(), "no magic");
    }

    #[test]
    fn entry_is_the_header_branch_target() {
        // EFI: code0 = `ccmp x18, #0, #0xd, pl` ("MZ"), code1 = `b +0x100`.
        let efi = [0xfa40_5a4du32, 0x1400_0040];
        let bytes: Vec<u8> = efi.iter().flat_map(|w| w.to_le_bytes()).collect();
        assert_eq!(entry_offset(&bytes), Ok(4 + 0x100));
        // Without EFI: code0 = `b +0x40`.
        assert_eq!(entry_offset(&0x1400_0010u32.to_le_bytes()), Ok(0x40));
        assert!(entry_offset(&[0; 8]).is_err());
    }
}
