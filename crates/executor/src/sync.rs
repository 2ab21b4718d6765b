//! The atomics and locks of the executor's own concurrency primitive ([`Gather`]): `std`
//! normally, `loom` under `cfg(loom)`, so that the loom models in `loom-tests/` explore
//! the code the executor runs.
//!
//! [`Gather`]: crate::gather::Gather

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::Mutex;
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::Mutex;

/// One round of waiting for other threads: spin a little, then yield the core (under
/// loom, always yield: loom explores a spin loop only through its yields).
#[inline]
pub(crate) fn wait(spins: &mut u32) {
    *spins = spins.saturating_add(1);
    #[cfg(not(loom))]
    {
        if *spins < 1 << 10 {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
    #[cfg(loom)]
    loom::thread::yield_now();
}

/// A worker asked the scheduler for a task and got none: normally nothing (it asks again
/// at once, as the paper's loop does); under loom, yield, or loom would explore the
/// polling loop as a thread that never lets the others run.
#[inline(always)]
pub(crate) fn idle() {
    #[cfg(loom)]
    loom::thread::yield_now();
}
