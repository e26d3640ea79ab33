use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::*;

/// A UART with FIFOs on and receiving (UARTLCR_H.FEN, UARTCR.UARTEN|RXE), wired to `input`.
fn receiving(input: &Arc<SerialInput>) -> Arc<Mutex<Pl011>> {
    use super::super::bus::MmioDevice;
    let u = Pl011::connected(Box::new(std::io::sink()), input.clone(), None);
    let mut g = u.lock().unwrap();
    g.write(0x02c, &0x10u32.to_le_bytes());
    g.write(0x030, &0x301u32.to_le_bytes());
    drop(g);
    u
}

fn fifo(u: &Arc<Mutex<Pl011>>) -> Vec<u8> {
    u.lock().unwrap().state().rx
}

#[test]
fn without_the_clock_bytes_enter_the_fifo_when_pushed() {
    let input = SerialInput::new();
    let u = receiving(&input);
    input.push(b"ab");
    assert_eq!(fifo(&u), b"ab");
    assert_eq!(input.admit(0), None, "nothing to admit without the clock");
}

#[test]
fn under_the_clock_bytes_wait_for_admission_and_are_recorded() {
    let input = SerialInput::new();
    input.set_clocked(Some(0x0900_0000));
    let u = receiving(&input);
    let woken = Arc::new(AtomicUsize::new(0));
    let w = woken.clone();
    input.set_waker(Box::new(move || {
        w.fetch_add(1, Ordering::SeqCst);
    }));
    assert_eq!(
        input.wake(0),
        HostWake::Never,
        "no reader: nothing can come"
    );
    input.set_open(true);
    assert_eq!(input.wake(0), HostWake::Later);
    input.push(b"hi");
    assert!(woken.load(Ordering::SeqCst) >= 2);
    assert!(fifo(&u).is_empty(), "not guest-visible before admission");
    assert_eq!(input.wake(5), HostWake::Ready);
    assert_eq!(
        input.admit(5),
        Some(Input::Console {
            device: 0x0900_0000,
            bytes: b"hi".to_vec()
        })
    );
    assert_eq!(fifo(&u), b"hi");
    assert_eq!(input.admit(6), None, "admitted once");
    input.set_open(false);
    assert_eq!(input.wake(6), HostWake::Never);
}

#[test]
fn a_replay_admits_the_recorded_bytes_at_their_clock_and_holds_live_ones() {
    let input = SerialInput::new();
    input.set_clocked(Some(0x0900_0000));
    input.set_open(true);
    let u = receiving(&input);
    input.replay(vec![(10, b"x".to_vec()), (20, b"yz".to_vec())]);
    input.push(b"live");
    assert_eq!(input.wake(9), HostWake::Never);
    assert_eq!(input.admit(9), None);
    assert!(fifo(&u).is_empty());
    assert_eq!(input.wake(10), HostWake::Ready);
    assert_eq!(input.admit(10), None, "a replay records nothing");
    assert_eq!(fifo(&u), b"x");
    assert_eq!(input.admit(25), None);
    assert_eq!(fifo(&u), b"xyz");
    input.go_live();
    assert_eq!(input.wake(25), HostWake::Ready);
    assert!(input.admit(25).is_some());
    assert_eq!(fifo(&u), b"xyzlive");
}

#[test]
fn admitted_bytes_beyond_the_fifo_are_state_under_the_clock_only() {
    let input = SerialInput::new();
    input.set_clocked(Some(0x0900_0000));
    let u = receiving(&input);
    input.push(&[7u8; 20]);
    input.admit(1);
    let st = u.lock().unwrap().state();
    assert_eq!(st.rx.len(), 16);
    assert_eq!(st.admitted, vec![7u8; 4]);
    input.set_admitted(&[]);
    assert_eq!(input.pending(), 0);
    u.lock().unwrap().set_state(&st);
    assert_eq!(input.pending(), 4);

    let plain = SerialInput::new();
    let p = receiving(&plain);
    plain.push(&[1u8; 20]);
    assert!(p.lock().unwrap().state().admitted.is_empty());
}
