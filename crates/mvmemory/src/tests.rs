use super::*;
use smallvec::smallvec;

fn v(txn_idx: TxnIndex, incarnation: Incarnation) -> Version {
    Version {
        txn_idx,
        incarnation,
    }
}

fn finals(mem: &MVMemory<u32, u64>, storage: u64) -> Result<Vec<(u32, u64)>, FinalError<()>> {
    let mut out = Vec::new();
    for txn in 0..mem.num_txns() {
        mem.final_writes(txn, |_| Ok(Some(storage)), &mut out)?;
    }
    Ok(out)
}

#[test]
fn reads_highest_write_below() {
    let mem = MVMemory::<u32, u64>::new(4);
    assert_eq!(mem.read(&1, 3), ReadOutcome::NotFound);
    mem.record(v(0, 0), smallvec![], smallvec![(1, WriteOp::Value(10))]);
    mem.record(v(2, 0), smallvec![], smallvec![(1, WriteOp::Value(30))]);
    assert_eq!(mem.read(&1, 0), ReadOutcome::NotFound);
    assert_eq!(mem.read(&1, 1), ReadOutcome::Versioned(v(0, 0), 10));
    assert_eq!(mem.read(&1, 2), ReadOutcome::Versioned(v(0, 0), 10));
    assert_eq!(mem.read(&1, 3), ReadOutcome::Versioned(v(2, 0), 30));
}

#[test]
fn estimates_become_dependencies_and_new_incarnations_replace_them() {
    let mem = MVMemory::<u32, u64>::new(3);
    mem.record(v(0, 0), smallvec![], smallvec![(7, WriteOp::Value(1))]);
    mem.convert_writes_to_estimates(0);
    assert_eq!(mem.read(&7, 2), ReadOutcome::Dependency(0));
    assert!(!mem.record(v(0, 1), smallvec![], smallvec![(7, WriteOp::Value(2))]));
    assert_eq!(mem.read(&7, 2), ReadOutcome::Versioned(v(0, 1), 2));
}

#[test]
fn record_removes_stale_writes_and_reports_new_locations() {
    let mem = MVMemory::<u32, u64>::new(2);
    assert!(mem.record(
        v(0, 0),
        smallvec![],
        smallvec![(1, WriteOp::Value(1)), (2, WriteOp::Value(2))]
    ));
    // Same keys: nothing new.
    assert!(!mem.record(
        v(0, 1),
        smallvec![],
        smallvec![(2, WriteOp::Value(3)), (1, WriteOp::Value(4))]
    ));
    // Drops key 1, keeps 2: nothing new, key 1 gone.
    assert!(!mem.record(v(0, 2), smallvec![], smallvec![(2, WriteOp::Value(5))]));
    assert_eq!(mem.read(&1, 1), ReadOutcome::NotFound);
    // Key 3 is new.
    assert!(mem.record(v(0, 3), smallvec![], smallvec![(3, WriteOp::Value(6))]));
    assert_eq!(mem.read(&2, 1), ReadOutcome::NotFound);
    assert_eq!(mem.read(&3, 1), ReadOutcome::Versioned(v(0, 3), 6));
}

#[test]
fn deltas_fold_onto_values_and_storage() {
    let mem = MVMemory::<u32, u64>::new(5);
    mem.record(v(0, 0), smallvec![], smallvec![(1, WriteOp::Delta(5))]);
    mem.record(v(1, 0), smallvec![], smallvec![(1, WriteOp::Delta(6))]);
    assert_eq!(mem.read(&1, 2), ReadOutcome::Unresolved(11));
    mem.record(v(2, 0), smallvec![], smallvec![(1, WriteOp::Value(100))]);
    mem.record(v(3, 0), smallvec![], smallvec![(1, WriteOp::Delta(1))]);
    assert_eq!(mem.read(&1, 3), ReadOutcome::Versioned(v(2, 0), 100));
    assert_eq!(mem.read(&1, 4), ReadOutcome::Resolved(101));
    assert_eq!(finals(&mem, 1000).unwrap(), vec![(1, 101)]);
}

#[test]
fn delta_only_chain_resolves_on_storage() {
    let mem = MVMemory::<u32, u64>::new(2);
    mem.record(v(0, 0), smallvec![], smallvec![(9, WriteOp::Delta(5))]);
    mem.record(v(1, 0), smallvec![], smallvec![(9, WriteOp::Delta(6))]);
    assert_eq!(finals(&mem, 1000).unwrap(), vec![(9, 1011)]);
    let mut out = Vec::new();
    mem.final_writes(1, |_| Ok::<_, ()>(None), &mut out)
        .unwrap();
    assert_eq!(out, vec![(9, 11)]);
}

#[test]
fn overflow_is_an_outcome_never_a_wrap() {
    let mem = MVMemory::<u32, u64>::new(3);
    mem.record(
        v(0, 0),
        smallvec![],
        smallvec![(1, WriteOp::Value(u64::MAX - 1))],
    );
    mem.record(v(1, 0), smallvec![], smallvec![(1, WriteOp::Delta(2))]);
    assert_eq!(mem.read(&1, 2), ReadOutcome::DeltaOverflow);
    assert!(matches!(
        finals(&mem, 0),
        Err(FinalError::Fold(FoldError::DeltaOverflow(1)))
    ));
    // Overflow against storage's base, found at the first delta that does not fit.
    let mem = MVMemory::<u32, u64>::new(2);
    mem.record(v(0, 0), smallvec![], smallvec![(1, WriteOp::Delta(1))]);
    mem.record(v(1, 0), smallvec![], smallvec![(1, WriteOp::Delta(1))]);
    assert!(matches!(
        finals(&mem, u64::MAX - 1),
        Err(FinalError::Fold(FoldError::DeltaOverflow(1)))
    ));
}

#[test]
fn validation_detects_changed_versions_and_accepts_equal_sums() {
    let mem = MVMemory::<u32, u64>::new(4);
    mem.record(v(0, 0), smallvec![], smallvec![(1, WriteOp::Value(1))]);
    let read = ReadDescriptor {
        key: 1,
        kind: mem.read(&1, 3).kind().unwrap(),
    };
    mem.record(v(3, 0), smallvec![read], smallvec![]);
    assert!(mem.validate_read_set(3));
    mem.record(v(2, 0), smallvec![], smallvec![(1, WriteOp::Value(2))]);
    assert!(!mem.validate_read_set(3));

    // A folded read stays valid while the sum is the same.
    let mem = MVMemory::<u32, u64>::new(4);
    mem.record(v(0, 0), smallvec![], smallvec![(1, WriteOp::Delta(4))]);
    let read = ReadDescriptor {
        key: 1,
        kind: mem.read(&1, 3).kind().unwrap(),
    };
    assert_eq!(read.kind, ReadKind::Unresolved(4));
    mem.record(v(3, 0), smallvec![read], smallvec![]);
    mem.record(v(0, 1), smallvec![], smallvec![(1, WriteOp::Delta(4))]);
    assert!(mem.validate_read_set(3));
    mem.record(v(1, 0), smallvec![], smallvec![(1, WriteOp::Delta(1))]);
    assert!(!mem.validate_read_set(3));
}

#[test]
fn final_writes_come_from_the_highest_writer_only() {
    let mem = MVMemory::<u32, u64>::new(3);
    mem.record(
        v(0, 0),
        smallvec![],
        smallvec![(1, WriteOp::Value(1)), (2, WriteOp::Value(2))],
    );
    mem.record(v(2, 0), smallvec![], smallvec![(1, WriteOp::Value(3))]);
    assert_eq!(finals(&mem, 0).unwrap(), vec![(2, 2), (1, 3)]);
    mem.convert_writes_to_estimates(2);
    assert!(matches!(
        finals(&mem, 0),
        Err(FinalError::Fold(FoldError::EstimateLeft(2)))
    ));
}

#[test]
fn out_of_range_transactions_are_ignored() {
    let mem = MVMemory::<u32, u64>::new(1);
    assert!(!mem.record(v(5, 0), smallvec![], smallvec![(1, WriteOp::Value(1))]));
    assert!(!mem.validate_read_set(5));
    mem.convert_writes_to_estimates(5);
    assert_eq!(mem.read(&1, 1), ReadOutcome::NotFound);
}
