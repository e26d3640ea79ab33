//! The test RSP client (tests/common/rsp.rs) against QEMU's gdb stub: every packet kind it
//! offers, on a tiny hand-assembled image. Also documents QEMU facts the co-simulation
//! relies on (`g` = 268 bytes of core registers with sve=off; V0 is register 34).

mod common;

use std::time::Duration;

use common::rsp::{BpKind, Stop};

const CODE: u64 = 0x4020_0000;
const DATA: u64 = 0x4060_0000;
/// Register numbers of QEMU's aarch64 target description (gdb-xml/aarch64-core.xml and
/// aarch64-fpu.xml): x0-x30 = 0-30, sp 31, pc 32, cpsr 33, v0-v31 34-65, fpsr 66, fpcr 67.
const PC: u32 = 32;
const V0: u32 = 34;
const FPCR: u32 = 67;

const PROGRAM: [u32; 6] = [
    0xd2a8_0c01, // movz x1, #0x4060, lsl #16
    0xd280_0020, // movz x0, #1
    0x9100_0400, // add x0, x0, #1
    0xf900_0020, // str x0, [x1]
    0x9100_0400, // add x0, x0, #1
    0x1400_0000, // b .
];

fn image() -> std::path::PathBuf {
    let code: Vec<u8> = PROGRAM.iter().flat_map(|w| w.to_le_bytes()).collect();
    let data = [0xaau8; 64];
    let elf = common::elf::build(
        CODE,
        &[
            common::elf::Segment {
                addr: CODE,
                data: &code,
            },
            common::elf::Segment {
                addr: DATA,
                data: &data,
            },
        ],
    );
    let path = std::env::temp_dir().join(format!("kvmdbg-rsp-{}.elf", std::process::id()));
    std::fs::write(&path, elf).expect("writing image");
    path
}

fn u64_at(regs: &[u8], n: usize) -> u64 {
    u64::from_le_bytes(regs[8 * n..8 * n + 8].try_into().unwrap())
}

#[test]
fn rsp_client_drives_qemu() {
    if !common::qemu::available("rsp_client_drives_qemu") {
        return;
    }
    let path = image();
    let mut qemu = common::qemu::Qemu::start_halted(&path).expect("starting QEMU");
    let mut rsp = qemu.connect().expect("connecting to QEMU's gdb stub");
    assert!(rsp.packet_size >= 256, "PacketSize {}", rsp.packet_size);

    assert!(matches!(
        rsp.halt_reason().unwrap(),
        Stop::Signal { sig: 5, .. }
    ));
    let regs = rsp.read_registers().unwrap();
    assert_eq!(regs.len(), 268, "core registers only with sve=off");
    assert_eq!(u64_at(&regs, 32), CODE);
    assert_eq!(
        u32::from_le_bytes(regs[264..268].try_into().unwrap()) & 0xf,
        0b0101
    );
    assert_eq!(rsp.read_register(PC).unwrap(), CODE.to_le_bytes());
    assert_eq!(rsp.read_register(V0).unwrap().len(), 16);
    assert_eq!(rsp.read_register(FPCR).unwrap().len(), 4);

    for i in 1..=4u64 {
        assert!(matches!(rsp.step().unwrap(), Stop::Signal { sig: 5, .. }));
        assert_eq!(rsp.read_register(PC).unwrap(), (CODE + 4 * i).to_le_bytes());
    }
    assert_eq!(rsp.read_memory(DATA, 8).unwrap(), 2u64.to_le_bytes());
    assert_eq!(rsp.read_memory(DATA + 8, 4).unwrap(), [0xaa; 4]);

    rsp.write_memory(DATA + 16, &[1, 2, 3, 4, 5]).unwrap();
    assert_eq!(
        rsp.read_memory(DATA + 15, 7).unwrap(),
        [0xaa, 1, 2, 3, 4, 5, 0xaa]
    );
    rsp.write_register(5, &0x1234_5678_9abc_def0u64.to_le_bytes())
        .unwrap();
    assert_eq!(
        rsp.read_register(5).unwrap(),
        0x1234_5678_9abc_def0u64.to_le_bytes()
    );
    // A multi-packet read is reassembled.
    let big = rsp.read_memory(CODE, 4096).unwrap();
    assert_eq!(&big[..4], &PROGRAM[0].to_le_bytes());

    // Breakpoint at the final `b .`, continue onto it, remove it.
    let at = CODE + 20;
    rsp.insert(BpKind::Software, at, 4).unwrap();
    assert!(matches!(rsp.cont().unwrap(), Stop::Signal { sig: 5, .. }));
    assert_eq!(rsp.read_register(PC).unwrap(), at.to_le_bytes());
    assert_eq!(rsp.read_register(0).unwrap(), 3u64.to_le_bytes());
    rsp.remove(BpKind::Software, at, 4).unwrap();

    // Continue into the endless loop, then interrupt it.
    rsp.send("c").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert!(matches!(rsp.interrupt().unwrap(), Stop::Signal { .. }));
    assert_eq!(rsp.read_register(PC).unwrap(), at.to_le_bytes());

    // Errors are reported as such: unmapped memory.
    assert!(rsp.read_memory(0xffff_0000_0000_0000, 4).is_err());
    rsp.kill().unwrap();
    let _ = std::fs::remove_file(&path);
}
