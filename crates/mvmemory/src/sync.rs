//! Every lock and atomic of this crate comes from here: `std` normally, `loom` under `cfg(loom)`, so
//! the loom models in `loom-tests/` explore the very code the executor runs.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};

/// Takes the pointer out of `atomic`, leaving null, through exclusive access.
#[cfg(not(loom))]
#[inline]
pub(crate) fn take_ptr<T>(atomic: &mut AtomicPtr<T>) -> *mut T {
    std::mem::replace(atomic.get_mut(), std::ptr::null_mut())
}

/// Takes the pointer out of `atomic`, leaving null, through exclusive access.
#[cfg(loom)]
#[inline]
pub(crate) fn take_ptr<T>(atomic: &mut AtomicPtr<T>) -> *mut T {
    atomic.with_mut(|p| std::mem::replace(p, std::ptr::null_mut()))
}

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

/// The value inside `mutex`, recovering it if a holder panicked (see [`lock`]).
#[inline]
pub(crate) fn into_inner<T>(mutex: Mutex<T>) -> T {
    match mutex.into_inner() {
        Ok(value) => value,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Sets `atomic` through exclusive access.
#[cfg(not(loom))]
#[inline]
pub(crate) fn set_usize(atomic: &mut AtomicUsize, value: usize) {
    *atomic.get_mut() = value;
}

/// Sets `atomic` through exclusive access.
#[cfg(loom)]
#[inline]
pub(crate) fn set_usize(atomic: &mut AtomicUsize, value: usize) {
    atomic.with_mut(|v| *v = value);
}

/// The value inside `mutex` through exclusive access, recovering it if a holder panicked.
#[inline]
pub(crate) fn get_mut<T>(mutex: &mut Mutex<T>) -> &mut T {
    match mutex.get_mut() {
        Ok(value) => value,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Sets `atomic` through exclusive access.
#[cfg(not(loom))]
#[inline]
pub(crate) fn set_u64(atomic: &mut AtomicU64, value: u64) {
    *atomic.get_mut() = value;
}

/// Sets `atomic` through exclusive access.
#[cfg(loom)]
#[inline]
pub(crate) fn set_u64(atomic: &mut AtomicU64, value: u64) {
    atomic.with_mut(|v| *v = value);
}
