//! Boot layout tests: where the kernel, initrd and DTB go, what `/chosen` says, and the errors
//! for inputs that cannot be booted. Images are synthetic (hand-built Image headers, ELF from
//! the loader tests' shape); DTBs are read back with `fdt_tree`.

use super::*;
use crate::machine::fdt_tree::Tree;
use crate::machine::memory::allocate;

const MIB: u64 = 1 << 20;

use crate::machine::linux_image::test_image as image;

fn shape(ram_size: u64) -> MachineShape {
    MachineShape { vcpus: 2, ram_size }
}

fn boot(initrd: Option<usize>, cmdline: Option<&str>) -> BootConfig {
    BootConfig {
        initrd: initrd.map(|n| vec![0xc3u8; n].into()),
        cmdline: cmdline.map(str::to_string),
        dtb: None,
    }
}

fn chosen(layout: &BootLayout) -> crate::machine::fdt_tree::Node {
    Tree::parse(&layout.dtb)
        .unwrap()
        .node("/chosen")
        .unwrap()
        .clone()
}

fn read(mem: &GuestMemoryMmap, addr: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    mem.read_slice(&mut v, GuestAddress(addr)).unwrap();
    v
}

#[test]
fn kernel_initrd_and_dtb_are_placed_in_order_without_overlap() {
    let mem = allocate(64 * MIB).unwrap();
    // text_offset 0x80000, 5 MiB reserved: the initrd starts at the next 2 MiB boundary.
    let img = image(0x8_0000, 5 * MIB, 0xa, 1000);
    let l = prepare(
        &mem,
        &img,
        shape(64 * MIB),
        &boot(Some(3000), Some("console=ttyAMA0")),
    )
    .unwrap();
    assert_eq!(l.image.entry, RAM_BASE + 0x8_0000);
    assert_eq!(l.image.end, RAM_BASE + 0x8_0000 + 5 * MIB);
    let initrd = l.initrd.clone().unwrap();
    assert_eq!(initrd, RAM_BASE + 6 * MIB..RAM_BASE + 6 * MIB + 3000);
    assert_eq!(l.dtb_addr % 0x1000, 0);
    assert!(l.dtb_addr >= initrd.end);
    assert!(l.dtb_addr + l.dtb.len() as u64 <= RAM_BASE + 64 * MIB);
    assert_eq!(read(&mem, l.image.entry, img.len()), img);
    assert_eq!(read(&mem, initrd.start, 3000), vec![0xc3; 3000]);
    assert_eq!(read(&mem, l.dtb_addr, l.dtb.len()), l.dtb);
    let c = chosen(&l);
    assert_eq!(c.prop_str("bootargs"), Some("console=ttyAMA0"));
    assert_eq!(c.prop_u64("linux,initrd-start"), Some(initrd.start));
    assert_eq!(c.prop_u64("linux,initrd-end"), Some(initrd.end));
    assert_eq!(c.prop_str("stdout-path"), Some("/pl011@9000000"));
}

#[test]
fn without_initrd_or_cmdline_chosen_has_only_the_console() {
    let mem = allocate(16 * MIB).unwrap();
    let l = prepare(
        &mem,
        &image(0, 2 * MIB, 0xa, 10),
        shape(16 * MIB),
        &boot(None, None),
    )
    .unwrap();
    assert!(l.initrd.is_none());
    let c = chosen(&l);
    assert_eq!(c.props.len(), 1, "{c:?}");
}

#[test]
fn elf_and_raw_images_get_an_initrd_and_bootargs_too() {
    let mem = allocate(16 * MIB).unwrap();
    let raw = vec![0x1f, 0x20, 0x03, 0xd5]; // nop
    let l = prepare(&mem, &raw, shape(16 * MIB), &boot(Some(10), Some("x=1"))).unwrap();
    assert_eq!(l.image.entry, RAM_BASE);
    assert_eq!(l.initrd.clone().unwrap().start, RAM_BASE + 2 * MIB);
    assert_eq!(chosen(&l).prop_str("bootargs"), Some("x=1"));
}

#[test]
fn a_legacy_image_keeps_the_memory_after_it_free() {
    // image_size 0 (before v3.17): text_offset 0x80000, initrd below the DTB at the top.
    let mem = allocate(32 * MIB).unwrap();
    let l = prepare(
        &mem,
        &image(0, 0, 0, 1000),
        shape(32 * MIB),
        &boot(Some(MIB as usize), None),
    )
    .unwrap();
    assert_eq!(l.image.entry, RAM_BASE + 0x8_0000);
    let initrd = l.initrd.unwrap();
    assert_eq!(initrd.start % INITRD_ALIGN, 0);
    assert!(initrd.start > RAM_BASE + 16 * MIB, "{initrd:x?}");
    assert!(initrd.end <= l.dtb_addr);
}

#[test]
fn inputs_that_do_not_fit_are_errors() {
    let mem = allocate(8 * MIB).unwrap();
    let img = image(0, 4 * MIB, 0xa, 10);
    // The initrd would need [4 MiB, 8 MiB) but the DTB sits at the top.
    let e = prepare(
        &mem,
        &img,
        shape(8 * MIB),
        &boot(Some(4 * MIB as usize), None),
    )
    .unwrap_err();
    assert!(matches!(e, MachineError::InitrdTooLarge { .. }), "{e}");
    assert!(e.is_bad_input());
    // A kernel whose image_size exceeds RAM.
    let e = prepare(
        &mem,
        &image(0, 9 * MIB, 0xa, 10),
        shape(8 * MIB),
        &boot(None, None),
    )
    .unwrap_err();
    assert!(matches!(e, MachineError::ImageTooLarge { .. }), "{e}");
    // A command line at the limit and one byte over.
    let ok = "a".repeat(COMMAND_LINE_SIZE - 1);
    prepare(&mem, &img, shape(8 * MIB), &boot(None, Some(&ok))).unwrap();
    let long = "a".repeat(COMMAND_LINE_SIZE);
    let e = prepare(&mem, &img, shape(8 * MIB), &boot(None, Some(&long))).unwrap_err();
    assert!(matches!(e, MachineError::CmdlineTooLong { .. }), "{e}");
    let e = prepare(&mem, &img, shape(8 * MIB), &boot(None, Some("a\0b"))).unwrap_err();
    assert!(matches!(e, MachineError::BadCmdline(_)), "{e}");
}

#[test]
fn a_user_dtb_is_kept_with_chosen_filled_in() {
    let mut user = Tree::default();
    user.node_or_insert("/memory@40000000")
        .set_prop("device_type", b"memory\0".to_vec());
    let chosen_node = user.node_or_insert("/chosen");
    chosen_node.set_prop("bootargs", b"from-dtb\0".to_vec());
    chosen_node.set_prop("linux,initrd-start", 1u32.to_be_bytes().to_vec());
    chosen_node.set_prop("linux,initrd-end", 2u32.to_be_bytes().to_vec());
    let bytes: Arc<[u8]> = user.to_bytes().into();
    let mem = allocate(16 * MIB).unwrap();
    let img = image(0, 2 * MIB, 0xa, 10);
    let mut cfg = boot(None, None);
    cfg.dtb = Some(bytes.clone());
    // No --append and no --initrd: the DTB's bootargs stay, its stale initrd range goes.
    let l = prepare(&mem, &img, shape(16 * MIB), &cfg).unwrap();
    let t = Tree::parse(&l.dtb).unwrap();
    assert!(t.node("/memory@40000000").is_some());
    let c = t.node("/chosen").unwrap();
    assert_eq!(c.prop_str("bootargs"), Some("from-dtb"));
    assert!(c.prop("linux,initrd-start").is_none());
    assert!(
        c.prop("stdout-path").is_none(),
        "the user's tree gets no stdout-path"
    );
    // With both: ours replace the DTB's.
    let mut cfg = boot(Some(100), Some("ours"));
    cfg.dtb = Some(bytes);
    let l = prepare(&mem, &img, shape(16 * MIB), &cfg).unwrap();
    let c = chosen(&l);
    assert_eq!(c.prop_str("bootargs"), Some("ours"));
    assert_eq!(
        c.prop_u64("linux,initrd-start"),
        Some(l.initrd.unwrap().start)
    );
}

#[test]
fn a_user_dtb_without_chosen_gets_one() {
    let mem = allocate(16 * MIB).unwrap();
    let mut cfg = boot(None, Some("x"));
    cfg.dtb = Some(Tree::default().to_bytes().into());
    let l = prepare(&mem, &image(0, 2 * MIB, 0xa, 10), shape(16 * MIB), &cfg).unwrap();
    assert_eq!(chosen(&l).prop_str("bootargs"), Some("x"));
}

#[test]
fn a_file_that_is_not_a_dtb_is_a_one_line_error() {
    let mem = allocate(16 * MIB).unwrap();
    let mut cfg = boot(None, None);
    cfg.dtb = Some(b"this is not a device tree".to_vec().into());
    let e = prepare(&mem, &image(0, 2 * MIB, 0xa, 10), shape(16 * MIB), &cfg).unwrap_err();
    assert!(matches!(e, MachineError::BadDtb(_)), "{e}");
    assert!(e.is_bad_input());
    assert!(!e.to_string().contains('\n'));
}
