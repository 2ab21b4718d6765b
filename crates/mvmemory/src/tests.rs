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
    // Transaction 1 looks for keys 1 to 3 first, so each is new under a read.
    for key in 1..=3 {
        assert_eq!(mem.read(&key, 1), ReadOutcome::NotFound);
    }
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
fn a_new_location_counts_only_if_a_higher_transaction_read_around_it() {
    let mem = MVMemory::<u32, u64>::new(4);
    // Nobody looked for key 1, or only lower transactions (and the writer) did: no
    // higher transaction can hold a read that misses these writes.
    assert!(!mem.record(v(1, 0), smallvec![], smallvec![(1, WriteOp::Value(1))]));
    assert_eq!(mem.read(&2, 0), ReadOutcome::NotFound);
    assert_eq!(mem.read(&2, 1), ReadOutcome::NotFound);
    assert!(!mem.record(
        v(1, 1),
        smallvec![],
        smallvec![(1, WriteOp::Value(1)), (2, WriteOp::Delta(1))]
    ));
    // Transaction 3 missed key 3: a write below it is read around.
    assert_eq!(mem.read(&3, 3), ReadOutcome::NotFound);
    assert!(mem.record(v(2, 0), smallvec![], smallvec![(3, WriteOp::Value(3))]));
    // Transaction 3 read key 1 through its node: a new write below it is read around,
    // one above it is not.
    assert_eq!(mem.read(&1, 3), ReadOutcome::Versioned(v(1, 1), 1));
    assert!(mem.record(v(0, 0), smallvec![], smallvec![(1, WriteOp::Value(0))]));
    assert!(!mem.record(v(3, 0), smallvec![], smallvec![(1, WriteOp::Value(4))]));
}

#[test]
fn a_miss_before_the_key_was_inserted_counts_for_later_writers() {
    let mem = MVMemory::<u32, u64>::new(3);
    // Transaction 1 misses key 5; transaction 2 then inserts it (above the miss: not read
    // around). Transaction 0's write to the existing node is below the miss, and the node
    // itself has no reader: only the bucket's miss mark tells.
    assert_eq!(mem.read(&5, 1), ReadOutcome::NotFound);
    assert!(!mem.record(v(2, 0), smallvec![], smallvec![(5, WriteOp::Value(2))]));
    assert!(mem.record(v(0, 0), smallvec![], smallvec![(5, WriteOp::Value(0))]));
}

#[test]
fn deltas_fold_onto_values_and_storage() {
    let mem = MVMemory::<u32, u64>::new(5);
    mem.record(v(0, 0), smallvec![], smallvec![(1, WriteOp::Delta(5))]);
    mem.record(v(1, 0), smallvec![], smallvec![(1, WriteOp::Delta(6))]);
    assert_eq!(mem.read(&1, 2), ReadOutcome::Unresolved(Chain::credits(11)));
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
    assert_eq!(mem.read(&1, 3), ReadOutcome::Unresolved(Chain::credits(4)));
    let read = ReadDescriptor {
        key: 1,
        kind: ReadKind::Unresolved { value: 4, base: 0 },
    };
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

/// Records transaction `txn_idx`'s reads of `keys`, located by `by`, into `into`.
fn record_located(
    by: &MVMemory<u32, u64>,
    into: &MVMemory<u32, u64>,
    version: Version,
    keys: &[u32],
) -> usize {
    let mut reads = by.located_reads();
    for key in keys {
        let (outcome, location) = by.read_located(key, version.txn_idx);
        reads.push(location, key, outcome.kind().unwrap());
    }
    let recorded = reads.len();
    into.writer()
        .record_with_output(version, reads, smallvec![], ());
    recorded
}

#[test]
fn located_reads_validate_like_reads_by_key() {
    let mem = MVMemory::<u32, u64>::new(4);
    mem.record(v(0, 0), smallvec![], smallvec![(1, WriteOp::Value(1))]);
    // Key 1 has a node (found), key 2 has none yet (missed).
    assert_eq!(record_located(&mem, &mem, v(3, 0), &[1, 2]), 2);
    assert!(mem.validate_read_set(3));
    // A new version of the found key, and a first write of the missed one, below the
    // reader: each invalidates it.
    mem.record(v(1, 0), smallvec![], smallvec![(1, WriteOp::Value(5))]);
    assert!(!mem.validate_read_set(3));
    record_located(&mem, &mem, v(3, 1), &[1, 2]);
    assert!(mem.validate_read_set(3));
    mem.record(v(2, 0), smallvec![], smallvec![(2, WriteOp::Delta(1))]);
    assert!(!mem.validate_read_set(3));
    // Writes above the reader change nothing it read.
    record_located(&mem, &mem, v(2, 1), &[1, 2]);
    mem.record(v(3, 1), smallvec![], smallvec![(1, WriteOp::Value(9))]);
    assert!(mem.validate_read_set(2));
}

#[test]
fn reads_located_by_another_memory_are_kept_by_key() {
    let other = MVMemory::<u32, u64>::new(4);
    other.record(v(0, 0), smallvec![], smallvec![(1, WriteOp::Value(1))]);
    let mem = MVMemory::<u32, u64>::new(4);
    mem.record(v(0, 0), smallvec![], smallvec![(1, WriteOp::Value(1))]);
    // A read located by `other`, recorded in `mem`: validated by key in `mem`, where
    // the same version is there.
    record_located(&other, &mem, v(3, 0), &[1]);
    drop(other);
    assert!(mem.validate_read_set(3));
    mem.record(v(2, 0), smallvec![], smallvec![(1, WriteOp::Value(2))]);
    assert!(!mem.validate_read_set(3));
    // A location pushed into another memory's read set is kept by key as well.
    let other = MVMemory::<u32, u64>::new(4);
    other.record(v(0, 0), smallvec![], smallvec![(1, WriteOp::Value(1))]);
    let mut reads = mem.located_reads();
    let (outcome, location) = other.read_located(&1, 3);
    assert_eq!(format!("{location:?}"), "Location { found: true }");
    reads.push(location, &1, outcome.kind().unwrap());
    assert_eq!(format!("{reads:?}"), "LocatedReads { found: 0, missed: 1 }");
    mem.writer()
        .record_with_output(v(3, 1), reads, smallvec![], ());
    drop(other);
    assert!(!mem.validate_read_set(3));
}

#[test]
fn located_reads_of_an_unfinished_block_are_ignored_after_reuse() {
    let mut mem = MVMemory::<u32, Counted>::new(2);
    let owner = std::sync::Arc::new(());
    mem.record(
        v(0, 0),
        smallvec![],
        smallvec![(1, WriteOp::Value(Counted(1, owner.clone())))],
    );
    let mut reads = mem.located_reads();
    let (outcome, location) = mem.read_located(&1, 1);
    // The read's value (a clone) goes with the outcome.
    reads.push(location, &1, outcome.kind().unwrap());
    drop(outcome);
    mem.writer()
        .record_with_output(v(1, 0), reads, smallvec![], ());
    // The next block, with neither slot finished: the index is cleared (its nodes
    // dropped when their chunks are taken again, or here by the next writes), and the
    // slot's located read must not be followed to them (Miri checks). The next write
    // takes the same chunk slot for another key, with another version: followed, the
    // stale read would fail.
    mem.reuse(2);
    mem.record(
        v(0, 1),
        smallvec![],
        smallvec![(2, WriteOp::Value(Counted(2, owner.clone())))],
    );
    assert!(mem.validate_read_set(1));
    drop(mem);
    assert_eq!(std::sync::Arc::strong_count(&owner), 1);
}

#[test]
fn out_of_range_transactions_are_ignored() {
    let mem = MVMemory::<u32, u64>::new(1);
    assert!(!mem.record(v(5, 0), smallvec![], smallvec![(1, WriteOp::Value(1))]));
    assert!(!mem.validate_read_set(5));
    mem.convert_writes_to_estimates(5);
    assert_eq!(mem.read(&1, 1), ReadOutcome::NotFound);
}

/// A value that counts its live copies, to check that clearing drops every node once.
#[derive(Debug)]
struct Counted(u64, std::sync::Arc<()>);

impl Clone for Counted {
    fn clone(&self) -> Self {
        Counted(self.0, self.1.clone())
    }
}

impl DeltaValue for Counted {
    fn from_u64(_: u64) -> Self {
        unreachable!("the test writes no deltas")
    }
    fn as_u64(&self) -> Option<u64> {
        Some(self.0)
    }
}

#[test]
fn more_keys_than_sized_and_reuse_drop_every_value_once() {
    let live = std::sync::Arc::new(());
    // Sized for 2 keys; one writer inserts 500 (extra chunks), several writers more.
    let mut mem = MVMemory::<u32, Counted>::with_key_capacity(4, 2);
    for round in 0..3u32 {
        {
            let mut writer = mem.writer();
            for key in 0..500u32 {
                let op = WriteOp::Value(Counted(u64::from(key + round), live.clone()));
                writer.record(v(0, key), smallvec![], smallvec![(key, op)]);
            }
        }
        // Each call of `record` takes a chunk of its own.
        for txn in 1..4 {
            let op = WriteOp::Value(Counted(7, live.clone()));
            mem.record(v(txn, 0), smallvec![], smallvec![(10_000 + txn as u32, op)]);
        }
        // The last incarnation of txn 0 wrote only key 499; the others were removed.
        for key in 0..499u32 {
            assert!(
                matches!(mem.read(&key, 4), ReadOutcome::NotFound),
                "key {key}"
            );
        }
        match mem.read(&499, 4) {
            ReadOutcome::Versioned(version, value) => {
                assert_eq!((version, value.0), (v(0, 499), u64::from(499 + round)))
            }
            other => panic!("{other:?}"),
        }
        for txn in 0..4 {
            let mut out = Vec::new();
            mem.finish_txn(txn, |_| Ok::<_, ()>(None), &mut out)
                .unwrap();
        }
        mem.reuse(4);
        // Values of removed writes are gone; the last writes' values wait in their
        // chunks until a writer takes the chunk again (or the memory is dropped).
        assert!(
            std::sync::Arc::strong_count(&live) <= 1 + 2 * 4,
            "round {round}"
        );
    }
    drop(mem);
    // Every node was dropped exactly once (Miri also checks for double drops and leaks).
    assert_eq!(std::sync::Arc::strong_count(&live), 1);
}

#[test]
fn one_key_written_by_many_transactions_through_one_writer() {
    let mem = MVMemory::<u32, u64>::new(64);
    let mut writer = mem.writer();
    for txn in (0..64).rev() {
        writer.record(
            v(txn, 0),
            smallvec![],
            smallvec![(1, WriteOp::Value(txn as u64)), (2, WriteOp::Delta(1))],
        );
    }
    assert_eq!(mem.read(&1, 10), ReadOutcome::Versioned(v(9, 0), 9));
    assert_eq!(
        mem.read(&2, 10),
        ReadOutcome::Unresolved(Chain::credits(10))
    );
    assert_eq!(
        finals(&mem, 5).unwrap(),
        vec![(1, 63), (2, 69)],
        "the highest writer holds the final value; deltas fold on storage"
    );
}

#[test]
fn concurrent_writers_share_chains_and_lose_no_key() {
    // Four threads, each with its own writer, insert overlapping keys into a table sized
    // for a few keys (long chains, racing inserts into one bucket, extra chunks).
    let keys: u32 = if cfg!(miri) { 24 } else { 2_000 };
    let mem = MVMemory::<u32, u64>::with_key_capacity(4, 4);
    std::thread::scope(|scope| {
        for txn in 0..4usize {
            let mem = &mem;
            scope.spawn(move || {
                let mut writer = mem.writer();
                // Each key once per thread, in one incarnation per key (the last one's
                // write set is the key alone; earlier keys are removed again).
                for key in 0..keys {
                    let key = (key * 7 + txn as u32 * 3) % keys;
                    writer.record(
                        v(txn, key),
                        smallvec![],
                        smallvec![(key, WriteOp::Value(txn as u64))],
                    );
                }
            });
        }
    });
    // Every thread's last incarnation wrote one key; every other key has no writer left,
    // but is still in the index (a key is never removed during a block).
    let last = |txn: u32| ((keys - 1) * 7 + txn * 3) % keys;
    for key in 0..keys {
        let writers: Vec<u32> = (0..4).filter(|&txn| last(txn) == key).collect();
        match (mem.read(&key, 4), writers.last()) {
            (ReadOutcome::NotFound, None) => {}
            (ReadOutcome::Versioned(version, value), Some(&txn)) => {
                assert_eq!((version.txn_idx, value), (txn as usize, u64::from(txn)))
            }
            (outcome, writer) => panic!("key {key}: {outcome:?}, expected {writer:?}"),
        }
    }
}

#[test]
fn slots_left_unfinished_by_a_block_are_empty_in_the_next() {
    let mut mem = MVMemory::<u32, u64>::new(3);
    // Each `record` takes a chunk of its own: txn 0's nodes (keys 0 and 9) are the first
    // two of chunk 0, txn 1's (key 1) the first of chunk 1.
    for txn in 0..3 {
        mem.record(
            v(txn, 0),
            smallvec![],
            smallvec![(txn as u32, WriteOp::Value(1)), (9, WriteOp::Delta(1))],
        );
    }
    // A failed block: nothing finished; the next block reuses the memory anyway.
    mem.reuse(3);
    // Chunk 0 again: key 60's node is where key 0's was, which txn 0's stale slot still
    // points to. It is a new location all the same (transaction 1 missed it).
    assert_eq!(mem.read(&60, 1), ReadOutcome::NotFound);
    assert!(mem.record(v(0, 0), smallvec![], smallvec![(60, WriteOp::Value(2))]));
    // Chunk 1 again, under key 1's old node; then a stale slot flags nothing.
    mem.record(v(2, 0), smallvec![], smallvec![(70, WriteOp::Value(3))]);
    mem.convert_writes_to_estimates(1);
    assert_eq!(mem.read(&70, 3), ReadOutcome::Versioned(v(2, 0), 3));
    assert_eq!(mem.read(&1, 3), ReadOutcome::NotFound);
    assert_eq!(mem.read(&9, 3), ReadOutcome::NotFound);
    assert_eq!(finals(&mem, 0).unwrap(), vec![(60, 2), (70, 3)]);
}

#[test]
fn observed_reads_compare_as_their_kinds() {
    let kinds = [
        ReadKind::Storage,
        ReadKind::Version(v(0, 0)),
        ReadKind::Version(v(0, 1)),
        ReadKind::Version(v(1, 0)),
        ReadKind::Version(v(usize::MAX, u32::MAX)),
        ReadKind::Resolved(0),
        ReadKind::Resolved(1),
        ReadKind::Unresolved { value: 0, base: 0 },
        ReadKind::Unresolved { value: 1, base: 0 },
        ReadKind::Unresolved { value: 1, base: 1 },
        ReadKind::Unresolved {
            value: u64::MAX,
            base: 0,
        },
        ReadKind::Check {
            required: 1,
            base: None,
        },
        ReadKind::Check {
            required: 1,
            base: Some(0),
        },
        ReadKind::Check {
            required: 2,
            base: Some(0),
        },
        ReadKind::Inconsistent,
    ];
    for a in kinds {
        for b in kinds {
            assert_eq!(
                Observed::from(a) == Observed::from(b),
                a == b,
                "{a:?} {b:?}"
            );
        }
    }
    // What a slot keeps per read, against a read by key.
    assert_eq!(std::mem::size_of::<Observed>(), 24);
    assert_eq!(
        std::mem::size_of::<(NodeRef<[u8; 66], u64>, Observed)>(),
        32
    );
    assert_eq!(std::mem::size_of::<ReadDescriptor<[u8; 66]>>(), 96);
}

#[test]
fn a_discarded_transaction_leaves_no_version_and_lower_writers_are_final() {
    let mem = MVMemory::<u32, u64>::new(3);
    mem.record(v(0, 0), smallvec![], smallvec![(1, WriteOp::Value(10))]);
    mem.record(
        v(2, 0),
        smallvec![],
        smallvec![(1, WriteOp::Value(30)), (2, WriteOp::Delta(5))],
    );
    mem.discard_txn(2);
    mem.discard_txn(9);
    assert_eq!(mem.read(&1, 3), ReadOutcome::Versioned(v(0, 0), 10));
    assert_eq!(mem.read(&2, 3), ReadOutcome::NotFound);
    assert_eq!(finals(&mem, 0).unwrap(), vec![(1, 10)]);
}

#[test]
fn debits_fold_with_credits_and_report_an_underflow() {
    let mem = MVMemory::<u32, u64>::new(6);
    mem.record(v(0, 0), smallvec![], smallvec![(1, WriteOp::Delta(5))]);
    mem.record(v(1, 0), smallvec![], smallvec![(1, WriteOp::Debit(7))]);
    mem.record(v(2, 0), smallvec![], smallvec![(1, WriteOp::Delta(3))]);
    // Storage's number below: +5 -7 +3, the lowest partial -2, the highest +5.
    let chain = Chain {
        net: 1,
        low: -2,
        high: 5,
    };
    assert_eq!(mem.read(&1, 3), ReadOutcome::Unresolved(chain));
    assert_eq!(chain.on(2), Ok(3));
    assert_eq!(chain.on(1), Err(ChainError::Underflow));
    assert_eq!(chain.on(u64::MAX - 5), Ok(u64::MAX - 4));
    assert_eq!(chain.on(u64::MAX - 4), Err(ChainError::Overflow));
    // On a full value: folded by the memory itself.
    mem.record(v(3, 0), smallvec![], smallvec![(2, WriteOp::Value(10))]);
    mem.record(v(4, 0), smallvec![], smallvec![(2, WriteOp::Debit(10))]);
    assert_eq!(mem.read(&2, 5), ReadOutcome::Resolved(0));
    mem.record(v(3, 1), smallvec![], smallvec![(2, WriteOp::Value(9))]);
    assert_eq!(mem.read(&2, 5), ReadOutcome::DebitUnderflow);
    // The final fold never lets a debit below zero through.
    let mut out = Vec::new();
    assert!(matches!(
        mem.final_writes(4, |_| Ok::<_, ()>(None), &mut out),
        Err(FinalError::Fold(FoldError::DebitUnderflow(4)))
    ));
    let mut out = Vec::new();
    mem.final_writes(2, |_| Ok::<_, ()>(Some(2)), &mut out)
        .unwrap();
    assert_eq!(out, vec![(1, 3)]);
}

#[test]
fn a_check_stays_valid_while_it_holds() {
    let mem = MVMemory::<u32, u64>::new(4);
    // Transaction 3 checked that storage's 10 covers 8: a credit below it does not
    // change that, a debit that leaves less than 8 does.
    let check = ReadDescriptor {
        key: 1,
        kind: ReadKind::Check {
            required: 8,
            base: Some(10),
        },
    };
    mem.record(
        v(3, 0),
        smallvec![check.clone()],
        smallvec![(1, WriteOp::Debit(8))],
    );
    assert!(mem.validate_read_set(3));
    mem.record(v(0, 0), smallvec![], smallvec![(1, WriteOp::Delta(100))]);
    assert!(mem.validate_read_set(3));
    mem.record(v(1, 0), smallvec![], smallvec![(1, WriteOp::Debit(102))]);
    assert!(mem.validate_read_set(3));
    mem.record(v(2, 0), smallvec![], smallvec![(1, WriteOp::Debit(1))]);
    assert!(!mem.validate_read_set(3));
    // A full value below is compared with what the check required.
    mem.record(v(2, 1), smallvec![], smallvec![(1, WriteOp::Value(8))]);
    assert!(mem.validate_read_set(3));
    mem.record(v(2, 2), smallvec![], smallvec![(1, WriteOp::Value(7))]);
    assert!(!mem.validate_read_set(3));
    // A check that did not know storage's number holds only on what needs none.
    let blind = ReadDescriptor {
        key: 1,
        kind: ReadKind::Check {
            required: 8,
            base: None,
        },
    };
    mem.record(v(2, 3), smallvec![], smallvec![(1, WriteOp::Value(9))]);
    mem.record(v(3, 1), smallvec![blind], smallvec![]);
    assert!(mem.validate_read_set(3));
    mem.record(v(2, 4), smallvec![], smallvec![(1, WriteOp::Delta(9))]);
    assert!(!mem.validate_read_set(3));
    // An inconsistent read never validates.
    let inconsistent = ReadDescriptor {
        key: 1,
        kind: ReadKind::Inconsistent,
    };
    mem.record(v(3, 2), smallvec![inconsistent], smallvec![]);
    assert!(!mem.validate_read_set(3));
}

#[test]
fn a_folded_read_validates_by_its_number() {
    let mem = MVMemory::<u32, u64>::new(4);
    mem.record(v(0, 0), smallvec![], smallvec![(1, WriteOp::Delta(4))]);
    mem.record(v(1, 0), smallvec![], smallvec![(1, WriteOp::Debit(2))]);
    // Storage holds 10: transaction 3 read 12.
    let read = ReadDescriptor {
        key: 1,
        kind: ReadKind::Unresolved {
            value: 12,
            base: 10,
        },
    };
    mem.record(v(3, 0), smallvec![read], smallvec![]);
    assert!(mem.validate_read_set(3));
    // Another chain to the same number, then a full value of it: still 12.
    mem.record(v(1, 1), smallvec![], smallvec![(1, WriteOp::Delta(0))]);
    mem.record(v(0, 1), smallvec![], smallvec![(1, WriteOp::Delta(2))]);
    assert!(mem.validate_read_set(3));
    mem.record(v(2, 0), smallvec![], smallvec![(1, WriteOp::Value(12))]);
    assert!(!mem.validate_read_set(3), "a version is not a fold");
    mem.record(v(2, 1), smallvec![], smallvec![]);
    mem.record(v(0, 2), smallvec![], smallvec![(1, WriteOp::Debit(11))]);
    assert!(!mem.validate_read_set(3), "a chain below zero");
}
