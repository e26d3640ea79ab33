//! Prioritization, acknowledge/EOI and SGI routing of the GIC state (IHI 0069 chapter 4).

use super::*;

/// Two vCPUs (Aff0 0 and 1), distributor and CPU interfaces on, PMR open.
fn two_cpus() -> GicState {
    let mut st = GicState::new(&[0, 1]);
    st.grp1_enabled = true;
    for c in &mut st.cpus {
        c.icc.grpen1 = true;
        c.icc.pmr = 0xf8;
    }
    st
}

/// Makes private `intid` of `cpu` pending (latch), enabled, with `priority`.
fn pend(st: &mut GicState, cpu: usize, intid: usize, priority: u8) {
    let i = &mut st.cpus[cpu].private[intid];
    i.latch = true;
    i.enabled = true;
    i.priority = priority;
}

#[test]
fn reset_state_is_kvms() {
    let st = GicState::new(&[0]);
    let p = &st.cpus[0].private;
    assert!(p.iter().all(|i| i.group1), "every private INTID is group 1");
    assert!(
        p[..16].iter().all(|i| i.enabled && i.edge),
        "SGIs enabled, edge"
    );
    assert!(
        p[16..].iter().all(|i| !i.enabled && !i.edge),
        "PPIs off, level"
    );
    assert!(st.spis.iter().all(|i| i.group1 && i.edge && !i.enabled));
    assert_eq!(st.spis.len(), NR_IRQS - PRIVATE);
    let icc = st.cpus[0].icc;
    assert_eq!((icc.pmr, icc.bpr0, icc.bpr1), (0, 2, 3));
    assert_eq!(icc.running_priority(), IDLE_PRIORITY);
    assert!(!st.grp1_enabled);
}

#[test]
fn highest_priority_wins_and_ties_go_to_the_lowest_intid() {
    let mut st = two_cpus();
    pend(&mut st, 0, 20, 0x80);
    pend(&mut st, 0, 27, 0x40);
    pend(&mut st, 0, 25, 0x40);
    assert_eq!(st.hppi(0, true), Some((25, 0x40)));
    assert_eq!(st.hppi(1, true), None, "private INTIDs are per vCPU");
    assert_eq!(st.signalled(0), Some((25, 0x40)));
    assert_eq!(st.highest_pending(0), 25);
}

#[test]
fn level_lines_pend_until_they_drop() {
    let mut st = two_cpus();
    let t = &mut st.cpus[0].private[27];
    t.enabled = true;
    t.level = true;
    assert!(t.pending(), "level-sensitive line held high");
    assert_eq!(st.acknowledge(0), 27);
    assert_eq!(st.signalled(0), None, "active: not signalled again");
    st.end_of_interrupt(0, 27);
    assert_eq!(st.signalled(0), Some((27, 0)), "the line is still high");
    st.cpus[0].private[27].level = false;
    assert_eq!(st.signalled(0), None);
    // An edge-triggered latch is consumed by the acknowledge.
    pend(&mut st, 0, 3, 0);
    assert_eq!(st.acknowledge(0), 3);
    st.end_of_interrupt(0, 3);
    assert_eq!(st.signalled(0), None);
}

#[test]
fn mask_group_enables_and_running_priority_gate_signalling() {
    let mut st = two_cpus();
    pend(&mut st, 0, 5, 0xf8);
    assert_eq!(st.signalled(0), None, "priority 0xf8 is not above PMR 0xf8");
    assert!(!st.wakes_from_wfi(0));
    st.cpus[0].private[5].priority = 0xf0;
    assert!(st.signalled(0).is_some());
    st.cpus[0].icc.grpen1 = false;
    assert_eq!(st.signalled(0), None, "CPU interface group 1 off");
    assert_eq!(st.highest_pending(0), SPURIOUS);
    assert!(st.wakes_from_wfi(0), "KVM wakes a WFI whatever ICC_IGRPEN1");
    st.cpus[0].icc.grpen1 = true;
    st.grp1_enabled = false;
    assert_eq!(st.signalled(0), None, "distributor group 1 off");
    assert!(!st.wakes_from_wfi(0));
    st.grp1_enabled = true;
    st.cpus[0].private[5].group1 = false;
    assert_eq!(st.signalled(0), None, "group 0 is never signalled");
    assert_eq!(st.acknowledge(0), SPURIOUS);
}

#[test]
fn preemption_needs_a_higher_group_priority() {
    let mut st = two_cpus();
    pend(&mut st, 0, 1, 0x80);
    assert_eq!(st.acknowledge(0), 1);
    assert_eq!(st.cpus[0].icc.running_priority(), 0x80);
    pend(&mut st, 0, 2, 0x80);
    assert_eq!(st.signalled(0), None, "same priority does not preempt");
    assert!(st.wakes_from_wfi(0), "KVM ignores the running priority");
    pend(&mut st, 0, 3, 0x78);
    assert_eq!(st.signalled(0), Some((3, 0x78)), "higher priority preempts");
    // With the binary point at 7 only bit 7 is group priority: 0x78 is in group 0x00, still
    // above the running 0x80, while 0x80 and 0xf0 would share a group.
    st.cpus[0].icc.bpr1 = 7;
    assert_eq!(st.cpus[0].icc.group_priority(0x78), 0);
    assert_eq!(st.cpus[0].icc.group_priority(0xf0), 0x80);
    assert_eq!(st.signalled(0), Some((3, 0x78)));
    st.cpus[0].icc.bpr1 = BPR1_MIN;
    assert_eq!(st.acknowledge(0), 3);
    assert_eq!(st.cpus[0].icc.running_priority(), 0x78);
    st.end_of_interrupt(0, 3);
    assert_eq!(
        st.cpus[0].icc.running_priority(),
        0x80,
        "drops to the older one"
    );
    st.end_of_interrupt(0, 1);
    assert_eq!(st.cpus[0].icc.running_priority(), IDLE_PRIORITY);
    assert_eq!(st.signalled(0), Some((2, 0x80)));
}

#[test]
fn eoimode_1_leaves_deactivation_to_dir() {
    let mut st = two_cpus();
    st.cpus[0].icc.eoimode = true;
    pend(&mut st, 0, 4, 0x10);
    assert_eq!(st.acknowledge(0), 4);
    st.end_of_interrupt(0, 4);
    assert_eq!(st.cpus[0].icc.running_priority(), IDLE_PRIORITY);
    assert!(st.cpus[0].private[4].active, "still active until DIR");
    st.deactivate(0, 4);
    assert!(!st.cpus[0].private[4].active);
    st.end_of_interrupt(0, SPURIOUS);
    st.deactivate(0, 5000);
}

#[test]
fn sgis_reach_their_targets() {
    let mut st = GicState::new(&[0, 1, 2, 0x0100_0010]);
    // SGI 5 to Aff0 = 1 and 2.
    let v = 5 << 24 | 0b110;
    assert_eq!(st.send_sgi(0, v), vec![1, 2]);
    assert!(st.cpus[1].private[5].latch && st.cpus[2].private[5].latch);
    assert!(!st.cpus[0].private[5].latch);
    // IRM: everyone but the sender.
    assert_eq!(st.send_sgi(1, 6 << 24 | 1 << 40), vec![0, 2, 3]);
    // Aff3 = 1, Aff1 = 0, RS = 1 (Aff0 16..31), target list bit 0: Aff0 = 16.
    assert_eq!(st.send_sgi(0, 1 << 48 | 1 << 44 | 1), vec![3]);
    // No such vCPU: nobody.
    assert!(st.send_sgi(0, 1 << 15).is_empty());
    // A group 0 SGI is not generated by ICC_SGI1R_EL1.
    st.cpus[1].private[7].group1 = false;
    assert_eq!(st.send_sgi(0, 7 << 24 | 0b10), vec![1]);
    assert!(!st.cpus[1].private[7].latch);
}

#[test]
fn spis_go_to_the_routed_vcpu_only() {
    let mut st = two_cpus();
    let spi = &mut st.spis[0];
    spi.enabled = true;
    spi.latch = true;
    spi.priority = 0x20;
    assert_eq!(st.signalled(0), Some((32, 0x20)), "IROUTER 0: vCPU 0");
    assert_eq!(st.signalled(1), None);
    st.spis[0].route = 1;
    assert_eq!(st.signalled(0), None);
    assert_eq!(st.acknowledge(1), 32);
    st.spis[0].route = 7;
    st.spis[0].latch = true;
    assert!(
        st.hppi(0, true).is_none() && st.hppi(1, true).is_none(),
        "no such vCPU"
    );
}
