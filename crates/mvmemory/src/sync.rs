//! Every lock of this crate comes from here: `std` normally, `loom` under `cfg(loom)`, so
//! the loom models in `loom-tests/` explore the very code the executor runs.

#[cfg(loom)]
pub(crate) use loom::sync::{Arc, Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`, recovering the guard if a holder panicked.
///
/// No code of this crate panics while holding one of its locks (the critical sections are
/// map operations and clones of `Clone` values we do not control; a panicking `Clone`
/// leaves the map itself consistent), so a poisoned lock holds consistent data.
#[inline]
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}
