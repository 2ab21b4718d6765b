//! What the engine executes: a [`Vm`] runs one transaction against a [`TxnView`] that reads
//! the state left by the transactions before it and buffers the transaction's writes.

use mvmemory::DeltaValue;
use std::fmt::Debug;
use std::hash::Hash;

/// Execution of the current transaction must stop: return it from [`Vm::execute`]
/// unchanged (the `?` operator does). The view that produced it knows why (a dependency on
/// an unfinished transaction, a failed speculation, a storage error) and the executor acts
/// on that, whatever the VM returns.
#[derive(Debug)]
pub struct Halt(pub(crate) ());

/// A credit that does not fit in `u64` on the value it is added to: the transaction must be
/// rejected (sequential execution would reject it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Overflow;

/// Why [`Vm::execute`] stopped without a result.
#[derive(Debug)]
pub enum ExecError<E> {
    /// A view method returned [`Halt`].
    Halt(Halt),
    /// An error of the whole block (a storage failure): every worker stops and the block
    /// fails, writing nothing. A transaction's own failure is an `Output`, not this.
    Block(E),
}

impl<E> From<Halt> for ExecError<E> {
    fn from(halt: Halt) -> Self {
        ExecError::Halt(halt)
    }
}

/// The state as one transaction sees it, and the buffer of its writes.
pub trait TxnView {
    /// A state key.
    type Key;
    /// A state value.
    type Value: DeltaValue;

    /// The value of `key`: this transaction's own write if any, else what the transactions
    /// before it left, else storage's. `None` if the key holds nothing.
    fn read(&mut self, key: &Self::Key) -> Result<Option<Self::Value>, Halt>;

    /// Buffers a write of `value` to `key`.
    fn write(&mut self, key: Self::Key, value: Self::Value);

    /// Adds `delta` to the number held at `key` (absent is 0), without reading it: the
    /// commutative credit. `Ok(Err(Overflow))` if the credit does not fit: reject the
    /// transaction. The sequential view checks against the exact value; the parallel view
    /// speculates that it fits and the executor verifies it when the block is done.
    fn add_delta(&mut self, key: Self::Key, delta: u64) -> Result<Result<(), Overflow>, Halt>;

    /// Drops every write buffered so far (a rejected transaction changes nothing).
    fn discard_writes(&mut self);

    /// Whether the number at `key` (absent is 0) is at least `required`: `Ok(Ok(()))` if
    /// it is, else `Ok(Err(value))` with the value as [`read`](Self::read) returns it (a
    /// balance check, whose failure reports what is available). The parallel view
    /// records a check that held as a predicate: validation asks whether it still holds,
    /// so a credit below that the check did not need never invalidates it. A check that
    /// failed is an exact read.
    #[inline]
    fn check(
        &mut self,
        key: &Self::Key,
        required: u64,
    ) -> Result<Result<(), Option<Self::Value>>, Halt> {
        exact_check(self, key, required)
    }

    /// Takes `amount` from the number at `key`, which a [`check`](Self::check) of this
    /// transaction showed covers it (else the number is 0 after). The parallel view
    /// writes a debit as a delta, which commutes with the credits around it, when the
    /// transaction's checks of the key cover every debit of it; otherwise (or after a
    /// credit of its own to the key) it reads the value and writes the difference.
    #[inline]
    fn debit(&mut self, key: Self::Key, amount: u64) -> Result<(), Halt> {
        exact_debit(self, key, amount)
    }
}

/// [`TxnView::check`] by value: a read, compared.
#[inline]
pub fn exact_check<T: TxnView + ?Sized>(
    view: &mut T,
    key: &T::Key,
    required: u64,
) -> Result<Result<(), Option<T::Value>>, Halt> {
    let value = view.read(key)?;
    Ok(if covers(value.as_ref(), required) {
        Ok(())
    } else {
        Err(value)
    })
}

/// Whether `value` is a number of at least `required` (absent is 0).
#[inline]
pub(crate) fn covers<V: DeltaValue>(value: Option<&V>, required: u64) -> bool {
    value
        .map_or(Some(0), V::as_u64)
        .is_some_and(|n| n >= required)
}

/// [`TxnView::debit`] by value: a read, and a write of the difference (0 if the number
/// does not cover `amount`; a value that is no number is left as it is).
#[inline]
pub fn exact_debit<T: TxnView + ?Sized>(
    view: &mut T,
    key: T::Key,
    amount: u64,
) -> Result<(), Halt> {
    let value = view.read(&key)?;
    if let Some(rest) = debited(value.as_ref(), amount) {
        view.write(key, rest);
    }
    Ok(())
}

/// `value` less `amount` (0 if it does not cover it; absent is 0), as [`exact_debit`]
/// writes it; `None` for a value that is no number, which a debit leaves as it is.
#[inline]
pub(crate) fn debited<V: DeltaValue>(value: Option<&V>, amount: u64) -> Option<V> {
    let number = value.map_or(Some(0), V::as_u64)?;
    Some(V::from_u64(number.saturating_sub(amount)))
}

/// Executes one transaction. Implementations must be deterministic functions of the
/// transaction and the values read, and may panic (a panic is that transaction's failure).
pub trait Vm: Sync {
    /// A transaction.
    type Txn: Sync;
    /// A state key.
    type Key: Eq + Hash + Clone + Send + Sync + Debug + 'static;
    /// A state value.
    type Value: DeltaValue + Send + Sync + Debug + 'static;
    /// What a transaction produces: its result, success or failure with a reason.
    type Output: Send + 'static;
    /// An error of the whole block (storage failure).
    type Error: std::error::Error + Send + Sync + 'static;

    /// Executes `txn` against `view`, buffering its writes in the view.
    fn execute<T>(
        &self,
        txn: &Self::Txn,
        view: &mut T,
    ) -> Result<Self::Output, ExecError<Self::Error>>
    where
        T: TxnView<Key = Self::Key, Value = Self::Value>;
}

/// Who touches a key during a block, as the caller declared it ([`Storage::claim`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyClaim {
    /// Nothing declared: any transaction may read or write it, through the
    /// multi-version memory.
    Shared,
    /// Only this transaction (its index in the block) reads or writes it. Its reads are
    /// storage's value and need no validation; its writes are final: kept with its
    /// output, never in the memory.
    Exclusive(usize),
    /// Transactions only credit it ([`TxnView::add_delta`]): none reads it or writes a
    /// value. Each transaction's credits are kept with its output and summed when the
    /// block is done; the sum fits if and only if every partial sum did (credits are
    /// never negative and nobody reads them), so overflow keeps its sequential
    /// semantics. The number is the key's slot among the block's credit-only keys
    /// (`0..`[`Storage::credit_only_keys`]), where the workers add up its credits
    /// without hashing it.
    CreditOnly(usize),
}

/// The state before the block, read by key. Immutable for the block's duration.
pub trait Storage: Sync {
    /// A state key.
    type Key;
    /// A state value.
    type Value;
    /// A storage failure: an error of the block.
    type Error;

    /// The value of `key` before the block, `None` if it holds nothing.
    fn get(&self, key: &Self::Key) -> Result<Option<Self::Value>, Self::Error>;

    /// Whether [`claim`](Self::claim) may return anything but [`KeyClaim::Shared`] in
    /// this block. When it is false (the default) the executor never asks.
    fn has_claims(&self) -> bool {
        false
    }

    /// What the caller declared about who touches `key` in this block (exact hints: what
    /// transfers declare), [`KeyClaim::Shared`] if nothing. The executor keeps a claimed
    /// key out of its multi-version memory, and checks the claim rather than trusting it:
    /// a read or write against it stops the block, which falls back to sequential
    /// execution ([`FallbackReason::ClaimBroken`]).
    ///
    /// [`FallbackReason::ClaimBroken`]: crate::FallbackReason::ClaimBroken
    fn claim(&self, _key: &Self::Key) -> KeyClaim {
        KeyClaim::Shared
    }

    /// The number of credit-only keys of the block: every [`KeyClaim::CreditOnly`] slot is
    /// below it.
    fn credit_only_keys(&self) -> usize {
        0
    }

    /// The credit-only key in `slot` (the key whose [`claim`](Self::claim) is
    /// `CreditOnly(slot)`), `None` if there is none. The executor checks the two agree
    /// before it credits the key.
    fn credit_only_key(&self, _slot: usize) -> Option<Self::Key> {
        None
    }

    /// [`get`](Self::get) and [`claim`](Self::claim) in one lookup.
    fn get_claimed(&self, key: &Self::Key) -> Result<(Option<Self::Value>, KeyClaim), Self::Error> {
        Ok((self.get(key)?, self.claim(key)))
    }
}

/// What one transaction produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxnOutput<O> {
    /// The VM returned this output.
    Executed(O),
    /// The VM panicked with this message; the transaction changed nothing.
    Panicked(String),
}

/// A panic's message, from its payload (what `catch_unwind` returns), as both executors
/// report it in [`TxnOutput::Panicked`].
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}
