//! PL011 tests: transmit, access sizes, and the receive path (FIFO, trigger level, timeout,
//! interrupt line, flow control) driven as a guest driver would.

use super::*;
use crate::backend::Result as BackendResult;

#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);
impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Records every level driven on the interrupt line.
#[derive(Default)]
struct Line(Mutex<Vec<(u32, bool)>>);
impl IrqLine for Line {
    fn set_level(&self, intid: u32, level: bool) -> BackendResult<()> {
        self.0.lock().unwrap().push((intid, level));
        Ok(())
    }
}
impl Line {
    fn level(&self) -> bool {
        self.0.lock().unwrap().last().is_some_and(|&(_, l)| l)
    }
}

fn uart() -> (Pl011, Sink) {
    let sink = Sink::default();
    (Pl011::new(Box::new(sink.clone())), sink)
}

/// A UART with input and an interrupt line on INTID 33.
fn wired() -> (Arc<Mutex<Pl011>>, Arc<SerialInput>, Arc<Line>) {
    let input = SerialInput::new();
    let line = Arc::new(Line::default());
    let irq = IrqOut {
        line: line.clone(),
        intid: 33,
    };
    let u = Pl011::connected(Box::new(Sink::default()), input.clone(), Some(irq));
    (u, input, line)
}

fn read(u: &mut Pl011, off: u64, len: usize) -> u64 {
    let mut d = [0u8; 8];
    u.read(off, &mut d[..len]);
    u64::from_le_bytes(d)
}

fn write32(u: &mut Pl011, off: u64, v: u32) {
    u.write(off, &v.to_le_bytes());
}

/// What Linux's amba-pl011 does when a port is opened: FIFO on, UART and receiver enabled,
/// receive and receive-timeout interrupts unmasked.
fn open_port(u: &mut Pl011) {
    write32(u, LCR_H, LCR_FEN | 0x60); // FEN, 8 data bits
    write32(u, CR, CR_UARTEN | CR_RXE | (1 << 8)); // UARTEN, RXE, TXE
    write32(u, IMSC, INT_RX | INT_RT);
}

fn drain(u: &mut Pl011) -> Vec<u8> {
    let mut got = Vec::new();
    while read(u, FR, 4) as u32 & FR_RXFE == 0 {
        got.push(read(u, DR, 4) as u8);
    }
    got
}

#[test]
fn transmit_reaches_the_sink_and_raises_txris() {
    let (mut u, sink) = uart();
    u.write(DR, b"A");
    u.write(DR, &[b'\n', 0, 0, 0]);
    assert_eq!(&*sink.0.lock().unwrap(), b"A\n");
    assert_eq!(read(&mut u, RIS, 4), INT_TX as u64);
    u.write(ICR, &INT_TX.to_le_bytes());
    assert_eq!(read(&mut u, RIS, 4), 0);
}

#[test]
fn sub_word_and_doubleword_accesses_follow_qemu() {
    let (mut u, _) = uart();
    // A byte read anywhere in a register returns that register's low byte.
    assert_eq!(read(&mut u, 0xff4, 1), 0xf0);
    assert_eq!(read(&mut u, 0xff5, 1), 0xf0);
    // An 8-byte read is two 32-bit registers.
    assert_eq!(read(&mut u, 0xff0, 8), 0xf0_0000_000d);
    // An 8-byte write writes two registers: IBRD and FBRD.
    u.write(IBRD, &0x0000_0003_0000_0027u64.to_le_bytes());
    assert_eq!(read(&mut u, IBRD, 4), 0x27);
    assert_eq!(read(&mut u, FBRD, 4), 3);
    // A byte write replaces the whole register.
    u.write(IMSC, &0x7ffu32.to_le_bytes());
    u.write(IMSC + 1, &[0x12]);
    assert_eq!(read(&mut u, IMSC, 4), 0x12);
    assert_eq!(read(&mut u, FR, 4), 0x90);
}

#[test]
fn a_few_bytes_raise_the_receive_timeout_and_reading_them_lowers_the_line() {
    let (u, input, line) = wired();
    open_port(&mut u.lock().unwrap());
    input.push(b"abc");
    let u = &mut *u.lock().unwrap();
    assert_eq!(read(u, FR, 4) as u32 & FR_RXFE, 0);
    // Below the trigger level (8 of 16 at reset): timeout only.
    assert_eq!(read(u, RIS, 4) as u32 & (INT_RX | INT_RT), INT_RT);
    assert_eq!(read(u, MIS, 4) as u32, INT_RT);
    assert!(line.level());
    assert_eq!(line.0.lock().unwrap()[0].0, 33);
    assert_eq!(drain(u), b"abc");
    assert_eq!(read(u, RIS, 4) as u32 & (INT_RX | INT_RT), 0);
    assert!(!line.level());
}

#[test]
fn the_trigger_level_follows_ifls_and_reads_below_it_clear_rxris() {
    let (u, input, _) = wired();
    let u = &mut *u.lock().unwrap();
    open_port(u);
    write32(u, IFLS, 1 << 3); // RXIFLSEL 1/4: 4 bytes
    input.queue_only(b"wxyz");
    u.refill();
    assert_eq!(read(u, RIS, 4) as u32 & INT_RX, INT_RX);
    read(u, DR, 4);
    assert_eq!(read(u, RIS, 4) as u32 & (INT_RX | INT_RT), INT_RT);
    // UARTICR clears the timeout while data is still there.
    write32(u, ICR, INT_RT);
    assert_eq!(read(u, RIS, 4) as u32 & INT_RT, 0);
    assert_eq!(drain(u), b"xyz");
}

#[test]
fn input_beyond_the_fifo_waits_in_the_backlog_and_arrives_in_order() {
    let (u, input, _) = wired();
    open_port(&mut u.lock().unwrap());
    let data: Vec<u8> = (0..40).collect();
    input.push(&data);
    let u = &mut *u.lock().unwrap();
    assert_eq!(u.rx.len(), FIFO_DEPTH);
    assert_eq!(read(u, FR, 4) as u32 & FR_RXFF, FR_RXFF);
    assert_eq!(input.pending(), 40 - FIFO_DEPTH);
    assert_eq!(drain(u), data);
    assert_eq!(input.pending(), 0);
}

#[test]
fn input_waits_for_linux_to_open_the_port_and_survives_its_fifo_drain() {
    let (u, input, _) = wired();
    input.push(b"early");
    let u = &mut *u.lock().unwrap();
    // Reset: UARTEN clear, nothing enters the FIFO.
    assert_eq!(read(u, FR, 4) as u32 & FR_RXFE, FR_RXFE);
    // amba-pl011's probe masks everything; pl011_hwinit unmasks RX/RT with the UART still
    // disabled; pl011_startup enables it; pl011_enable_interrupts drains the FIFO, then
    // writes UARTIMSC again.
    write32(u, IMSC, 0);
    write32(u, ICR, INT_ALL);
    write32(u, IMSC, INT_RX | INT_RT);
    write32(u, LCR_H, LCR_FEN | 0x60);
    write32(u, CR, CR_UARTEN | CR_RXE | (1 << 8));
    write32(u, ICR, INT_RX | INT_RT);
    assert!(drain(u).is_empty(), "bytes reached the drain loop");
    assert_eq!(input.pending(), 5);
    write32(u, IMSC, INT_RX | INT_RT);
    assert_eq!(drain(u), b"early");
}

#[test]
fn masking_the_receive_interrupts_holds_input_back() {
    let (u, input, _) = wired();
    open_port(&mut u.lock().unwrap());
    let u = &mut *u.lock().unwrap();
    write32(u, IMSC, 0); // throttled
    input.queue_only(b"held");
    u.refill();
    assert!(drain(u).is_empty());
    write32(u, IMSC, INT_RX | INT_RT); // unthrottled
    assert_eq!(drain(u), b"held");
    // Disabling and enabling the UART keeps the receiver armed.
    write32(u, CR, 0);
    input.queue_only(b"!");
    u.refill();
    assert!(drain(u).is_empty());
    write32(u, CR, CR_UARTEN | CR_RXE);
    assert_eq!(drain(u), b"!");
}

#[test]
fn a_polling_guest_that_never_writes_imsc_gets_input_once_enabled() {
    let (u, input, line) = wired();
    input.push(b"p");
    let u = &mut *u.lock().unwrap();
    write32(u, CR, CR_UARTEN | CR_RXE);
    assert_eq!(drain(u), b"p");
    // Its interrupts stay masked: the line never rose.
    assert!(!line.level());
}

#[test]
fn without_the_fifo_one_character_is_held_and_triggers_at_once() {
    let (u, input, _) = wired();
    let u = &mut *u.lock().unwrap();
    write32(u, CR, CR_UARTEN | CR_RXE);
    write32(u, IMSC, INT_RX);
    input.queue_only(b"12");
    u.refill();
    assert_eq!(u.rx.len(), 1);
    assert_eq!(read(u, RIS, 4) as u32 & INT_RX, INT_RX);
    assert_eq!(read(u, FR, 4) as u32 & FR_RXFF, FR_RXFF);
    assert_eq!(drain(u), b"12");
}

#[test]
fn a_saved_state_restores_registers_fifo_and_flow_control() {
    let (u, input, line) = wired();
    let u = &mut *u.lock().unwrap();
    open_port(u);
    input.queue_only(b"ab");
    u.refill();
    let saved = u.state();
    assert_eq!(saved.rx, b"ab");
    assert!(saved.rx_armed && saved.irq_level);
    drain(u);
    write32(u, IMSC, 0);
    write32(u, IBRD, 9);
    let driven = line.0.lock().unwrap().len();
    u.set_state(&saved);
    assert_eq!(u.state(), saved);
    assert_eq!(
        line.0.lock().unwrap().len(),
        driven,
        "restoring drives no line"
    );
    assert_eq!(drain(u), b"ab");
}

#[test]
fn a_saved_state_restores_every_register() {
    let (mut u, _) = uart();
    u.write(IBRD, &13u32.to_le_bytes());
    u.write(IMSC, &INT_TX.to_le_bytes());
    let saved = u.save().expect("the UART has state");
    u.write(IBRD, &7u32.to_le_bytes());
    u.write(DR, b"x");
    u.restore(saved.as_ref());
    assert_eq!(read(&mut u, IBRD, 4), 13);
    assert_eq!(read(&mut u, IMSC, 4), INT_TX as u64);
    assert_eq!(
        read(&mut u, RIS, 4),
        0,
        "the transmit after the save is undone"
    );
}
