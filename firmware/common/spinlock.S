// spinlock.S: a test-and-set spinlock and an atomic add on 32-bit words, with load/store
// exclusives (Arm ARM B2.9 "Synchronization and semaphores").
//
// Exclusives are only architecturally guaranteed on Normal memory, so callers enable the MMU
// first (mmu.S) when several CPUs share a lock; with the MMU off every data access is
// Device-nGnRnE (Arm ARM D8.2.11 "The effects of disabling an address translation stage").

    .text

// spin_lock: x0 = address of a 32-bit lock word (0 = free). Acquire. Clobbers w1, w2.
    .global spin_lock
    .type spin_lock, %function
spin_lock:
    mov     w2, #1                          // value meaning "taken"
1:  ldaxr   w1, [x0]                        // read the lock word, acquire, open the monitor
    cbnz    w1, 1b                          // taken by someone else: read again
    stlxr   w1, w2, [x0]                    // try to take it
    cbnz    w1, 1b                          // lost the reservation: retry
    ret                                     // lock held
    .size spin_lock, . - spin_lock

// spin_unlock: x0 = address of the lock word. Release.
    .global spin_unlock
    .type spin_unlock, %function
spin_unlock:
    stlr    wzr, [x0]                       // free it, release semantics
    ret                                     // done
    .size spin_unlock, . - spin_unlock

// atomic_add32: x0 = address of a 32-bit word, w1 = addend -> w0 = new value. Clobbers w2, w3.
    .global atomic_add32
    .type atomic_add32, %function
atomic_add32:
1:  ldaxr   w2, [x0]                        // old value, acquire
    add     w2, w2, w1                      // new value
    stlxr   w3, w2, [x0]                    // store it, release
    cbnz    w3, 1b                          // reservation lost: retry
    mov     w0, w2                          // return the new value
    ret                                     // done
    .size atomic_add32, . - atomic_add32
