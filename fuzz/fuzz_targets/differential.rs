//! Arbitrary well-formed blocks (mock transactions built from the bytes) to the parallel
//! and the sequential executor: they must agree. `cargo +nightly fuzz run differential`.
#![no_main]

use executor::mock::{MockStorage, MockTxn, MockVm};
use executor::{ParallelExecutor, SequentialExecutor};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let universe = u64::from(data.first().copied().unwrap_or(2)).max(2);
    let mut storage = MockStorage::default();
    let mut txns = Vec::new();
    for chunk in data.get(1..).unwrap_or_default().chunks(6) {
        let b = |i: usize| u64::from(chunk.get(i).copied().unwrap_or(0));
        storage.values.insert(b(0) % universe, b(5) * 1_000);
        txns.push(MockTxn {
            seed: b(0) << 8 | b(1),
            reads: vec![b(1) % universe, b(2) % universe],
            writes: vec![b(3) % universe],
            deltas: vec![(b(4) % universe, if b(5) == 255 { u64::MAX / 2 } else { b(5) })],
            read_after: (b(2) & 1 == 1).then(|| b(4) % universe),
            fail_modulus: if b(0) & 8 == 8 { 5 } else { 0 },
            panic_modulus: if b(0) & 16 == 16 { 7 } else { 0 },
            work: 0,
        });
    }
    let vm = MockVm { key_space: universe };
    let expected = SequentialExecutor.execute_block(&vm, &storage, &txns).ok();
    for threads in [2, 4] {
        let got = ParallelExecutor::new(threads).execute_block(&vm, &storage, &txns).ok();
        match (&expected, &got) {
            (Some(e), Some(g)) => {
                assert_eq!(e.outputs, g.outputs);
                assert_eq!(e.writes, g.writes);
            }
            (None, None) => {}
            _ => panic!("one executor failed the block, the other did not"),
        }
    }
});
