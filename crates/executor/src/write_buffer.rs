//! The writes of one incarnation, one entry per key, in first-write order.

use crate::vm::Overflow;
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
                }
            }
            None => self.ops.push((key, WriteOp::Delta(delta))),
        }
        Ok(())
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
