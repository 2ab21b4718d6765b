//! Loom model of the final pass's gathering barrier (`executor/src/gather.rs`): two
//! workers publish their chunks' lengths, meet at the barrier, and move their writes into
//! the one vector worker 0 allocates; or, when a chunk failed, nobody moves anything.
#![cfg(loom)]

use executor::Gather;
use loom::sync::Arc;
use loom::thread;

type Writes = Vec<(u8, u64)>;

/// Worker `id`'s part: publish, arrive, move in; returns what is left in its chunks.
fn worker(
    gather: &Gather<u8, u64>,
    id: usize,
    mut chunks: Vec<(usize, Writes)>,
    fail: bool,
) -> Vec<Writes> {
    for (number, writes) in &chunks {
        gather.publish(*number, writes.len());
    }
    if fail {
        gather.fail();
    }
    if gather.arrive(id, || false) {
        for (number, writes) in &mut chunks {
            gather.move_in(*number, writes);
        }
    }
    chunks.into_iter().map(|(_, writes)| writes).collect()
}

fn run(fail: bool) -> (Option<Writes>, Vec<Writes>) {
    let gather = Arc::new(Gather::new(3));
    gather.expect(2);
    let other = {
        let gather = gather.clone();
        thread::spawn(move || worker(&gather, 1, vec![(1, vec![(3, 30)])], fail))
    };
    let mut left = worker(
        &gather,
        0,
        vec![(0, vec![(1, 10)]), (2, vec![(5, 50), (6, 60)])],
        false,
    );
    left.extend(other.join().unwrap());
    let gather = Arc::try_unwrap(gather).ok().unwrap();
    (gather.finish(3), left)
}

#[test]
fn two_workers_gather_their_chunks_in_block_order() {
    loom::model(|| {
        let (gathered, left) = run(false);
        assert_eq!(gathered, Some(vec![(1, 10), (3, 30), (5, 50), (6, 60)]));
        assert!(left.iter().all(Vec::is_empty), "{left:?}");
    });
}

#[test]
fn a_failed_chunk_gathers_nothing_and_moves_nothing() {
    loom::model(|| {
        let (gathered, left) = run(true);
        assert_eq!(gathered, None);
        assert_eq!(left.iter().map(Vec::len).sum::<usize>(), 4);
    });
}
