//! The writes of one incarnation, one entry per key, in first-write order.

use crate::vm::{debited, Overflow};
use mvmemory::{DeltaValue, WriteOp, WriteSet};

pub(crate) struct WriteBuffer<K, V> {
    ops: WriteSet<K, V>,
}

impl<K: PartialEq, V: DeltaValue> WriteBuffer<K, V> {
    pub(crate) fn new() -> Self {
        Self {
            ops: WriteSet::new(),
        }
    }

    #[inline]
    pub(crate) fn get(&self, key: &K) -> Option<&WriteOp<V>> {
        self.ops.iter().find(|(k, _)| k == key).map(|(_, op)| op)
    }

    #[inline]
    pub(crate) fn write(&mut self, key: K, value: V) {
        match self.ops.iter_mut().find(|(k, _)| *k == key) {
            Some((_, op)) => *op = WriteOp::Value(value),
            None => self.ops.push((key, WriteOp::Value(value))),
        }
    }

    /// Merges a delta into this incarnation's write of `key`. Fails if it overflows what
    /// this transaction itself holds there (then the credit overflows whatever lies below).
    ///
    /// A credit after a debit of its own nets with it: the value below covers the debit
    /// (the transaction's check, which validation keeps true), so the only sum left to
    /// check is the final one, which the fold checks as for any credit.
    #[inline]
    pub(crate) fn add_delta(&mut self, key: K, delta: u64) -> Result<(), Overflow> {
        match self.ops.iter_mut().find(|(k, _)| *k == key) {
            Some((_, op)) => {
                *op = match op {
                    WriteOp::Value(value) => value
                        .as_u64()
                        .and_then(|n| n.checked_add(delta))
                        .map(|n| WriteOp::Value(V::from_u64(n)))
                        .ok_or(Overflow)?,
                    WriteOp::Delta(d) => WriteOp::Delta(d.checked_add(delta).ok_or(Overflow)?),
                    WriteOp::Debit(d) if delta <= *d => WriteOp::Debit(*d - delta),
                    WriteOp::Debit(d) => WriteOp::Delta(delta - *d),
                }
            }
            None => self.ops.push((key, WriteOp::Delta(delta))),
        }
        Ok(())
    }

    /// The value of `key` as this transaction sees it: its own write, its own credits on
    /// top of `committed` (the value before it), or `committed`. A sum that does not fit
    /// reads as `None`; the sequential views check every credit when it is added, so for
    /// them it cannot happen.
    #[inline]
    pub(crate) fn read_through<E>(
        &self,
        key: &K,
        committed: impl FnOnce() -> Result<Option<V>, E>,
    ) -> Result<Option<V>, E> {
        match self.get(key) {
            Some(WriteOp::Value(value)) => Ok(Some(value.clone())),
            Some(&WriteOp::Delta(delta)) => {
                Ok(add_to(committed()?.as_ref(), delta).map(V::from_u64))
            }
            Some(&WriteOp::Debit(debit)) => Ok(debit_from(committed()?, debit)),
            None => committed(),
        }
    }

    /// Buffers a debit of `amount` after this transaction's own debit (or none) of `key`:
    /// the caller showed its checks cover both.
    #[inline]
    pub(crate) fn debit(&mut self, key: K, amount: u64) {
        match self.ops.iter_mut().find(|(k, _)| *k == key) {
            Some((_, op)) => {
                if let WriteOp::Debit(d) = op {
                    *d = d.saturating_add(amount);
                }
            }
            None => self.ops.push((key, WriteOp::Debit(amount))),
        }
    }

    pub(crate) fn clear(&mut self) {
        self.ops.clear();
    }

    pub(crate) fn into_ops(self) -> WriteSet<K, V> {
        self.ops
    }
}

/// `base + delta` for a value that may be absent (0) or not a number (`None`).
#[inline]
pub(crate) fn add_to<V: DeltaValue>(base: Option<&V>, delta: u64) -> Option<u64> {
    match base {
        None => Some(delta),
        Some(value) => value.as_u64()?.checked_add(delta),
    }
}

/// `base - debit` for a value that may be absent (0) or not a number (`None`); `None`
/// if it does not cover the debit.
#[inline]
pub(crate) fn sub_from<V: DeltaValue>(base: Option<&V>, debit: u64) -> Option<u64> {
    base.map_or(Some(0), V::as_u64)?.checked_sub(debit)
}

/// `value - debit` as a debited value reads: 0 if the value does not cover it (a check
/// that no longer holds: the read is inconsistent and its incarnation will not
/// validate); a value that is no number as it is.
#[inline]
pub(crate) fn debit_from<V: DeltaValue>(value: Option<V>, debit: u64) -> Option<V> {
    debited(value.as_ref(), debit).or(value)
}
