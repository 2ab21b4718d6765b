//! Loom models of the collaborative scheduler: done detection, abort and re-execution,
//! dependency and resume, on 2 and 3 threads.
#![cfg(loom)]

use loom::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use loom::sync::Arc;
use loom::thread;
use scheduler::{Scheduler, Task, Worker};

/// What a modelled transaction does, decided by the model.
struct Model {
    scheduler: Scheduler,
    /// Executions per transaction.
    executions: Vec<AtomicU32>,
    /// The incarnation whose validation passed last, per transaction (+1; 0 = none).
    validated: Vec<AtomicU32>,
    /// Validation of this (txn, incarnation) fails once.
    fail_validation: Option<(usize, u32)>,
    failed_once: AtomicBool,
    /// Transaction 1's first execution reads an ESTIMATE of 0 unless 0 has finished.
    dependency: bool,
    finished_zero: AtomicBool,
    wrote_new_location: bool,
    /// Worker 0 advances the commit index between its tasks.
    commits: bool,
    /// Transactions committed, with the executions each had then.
    committed_after: Vec<AtomicU32>,
}

impl Model {
    fn new(n: usize) -> Self {
        Self::with_batch(n, 1)
    }

    fn with_batch(n: usize, batch: usize) -> Self {
        Self {
            scheduler: Scheduler::with_batch(n, 3, batch),
            executions: (0..n).map(|_| AtomicU32::new(0)).collect(),
            validated: (0..n).map(|_| AtomicU32::new(0)).collect(),
            fail_validation: None,
            failed_once: AtomicBool::new(false),
            dependency: false,
            finished_zero: AtomicBool::new(false),
            wrote_new_location: false,
            commits: false,
            committed_after: (0..n).map(|_| AtomicU32::new(0)).collect(),
        }
    }

    fn worker(&self, w: usize) {
        let s = &self.scheduler;
        let mut cursor = Worker::new(w);
        let mut task = None;
        while !s.done() {
            task = match task {
                Some(Task::Execution(idx, inc)) => {
                    if self.dependency
                        && idx == 1
                        && inc == 0
                        && !self.finished_zero.load(Ordering::SeqCst)
                    {
                        if s.add_dependency(w, 1, 0).unwrap() {
                            None
                        } else {
                            Some(Task::Execution(idx, inc))
                        }
                    } else {
                        self.executions[idx].fetch_add(1, Ordering::SeqCst);
                        if idx == 0 {
                            self.finished_zero.store(true, Ordering::SeqCst);
                        }
                        s.finish_execution(w, idx, inc, self.wrote_new_location)
                            .unwrap()
                    }
                }
                Some(Task::Validation(idx, inc)) => {
                    let fail = self.fail_validation == Some((idx, inc))
                        && !self.failed_once.swap(true, Ordering::SeqCst);
                    let aborted = fail && s.try_validation_abort(idx, inc);
                    if !aborted && !fail {
                        // A stale validation of an older incarnation may pass late: keep the highest.
                        self.validated[idx].fetch_max(inc + 1, Ordering::SeqCst);
                    }
                    s.finish_validation(w, idx, aborted).unwrap()
                }
                None => {
                    if self.commits && w == 0 {
                        // The failing incarnation's reads are stale until it runs again.
                        s.try_commit(
                            |idx| {
                                self.fail_validation.map(|(f, _)| f) != Some(idx)
                                    || self.executions[idx].load(Ordering::SeqCst) >= 2
                            },
                            |idx| {
                                let executions = self.executions[idx].load(Ordering::SeqCst);
                                self.committed_after[idx].store(executions, Ordering::SeqCst);
                            },
                        );
                    }
                    let next = s.next_task(&mut cursor);
                    if next.is_none() {
                        thread::yield_now();
                    }
                    next
                }
            };
        }
    }

    fn run(self, threads: usize) -> Arc<Self> {
        let model = Arc::new(self);
        let handles: Vec<_> = (1..threads)
            .map(|w| {
                let model = model.clone();
                thread::spawn(move || model.worker(w))
            })
            .collect();
        model.worker(0);
        for h in handles {
            h.join().unwrap();
        }
        model
    }
}

/// Done is never reported before every transaction executed and validated, and always
/// reached (loom fails a model that does not terminate).
#[test]
fn done_detection_two_threads_two_txns() {
    loom::model(|| {
        let m = Model::new(2).run(2);
        for idx in 0..2 {
            assert_eq!(m.executions[idx].load(Ordering::SeqCst), 1);
            assert_eq!(m.validated[idx].load(Ordering::SeqCst), 1);
        }
    });
}

/// Re-execution after a failed validation: done only once the new incarnation is
/// validated.
#[test]
fn abort_and_re_execution() {
    loom::model(|| {
        let mut model = Model::new(2);
        model.fail_validation = Some((1, 0));
        let m = model.run(2);
        assert_eq!(m.executions[1].load(Ordering::SeqCst), 2);
        assert_eq!(
            m.validated[1].load(Ordering::SeqCst),
            2,
            "incarnation 1 validated"
        );
        assert_eq!(m.validated[0].load(Ordering::SeqCst), 1);
    });
}

/// A dependency on a running transaction parks the execution and resumes it with the
/// next incarnation when the blocking transaction finishes; never lost, never early.
#[test]
fn dependency_and_resume() {
    loom::model(|| {
        let mut model = Model::new(2);
        model.dependency = true;
        let m = model.run(2);
        assert_eq!(m.executions[0].load(Ordering::SeqCst), 1);
        assert_eq!(m.executions[1].load(Ordering::SeqCst), 1);
        assert!(m.validated[1].load(Ordering::SeqCst) >= 1);
    });
}

/// Writes to new locations make every higher transaction revalidate; done still holds.
#[test]
fn new_locations_revalidate_three_txns() {
    loom::model(|| {
        let mut model = Model::new(3);
        model.wrote_new_location = true;
        let m = model.run(2);
        for idx in 0..3 {
            assert_eq!(m.executions[idx].load(Ordering::SeqCst), 1);
            assert_eq!(m.validated[idx].load(Ordering::SeqCst), 1);
        }
    });
}

/// Three threads on two transactions with an abort: the extra thread finds nothing to do
/// and must not end the block early.
#[test]
fn three_threads_abort() {
    let mut builder = loom::model::Builder::new();
    // Idle threads poll `next_task`; give the longer schedules room, and bound the
    // preemptions of this larger model to one whatever LOOM_MAX_PREEMPTIONS says.
    builder.max_branches = 200_000;
    builder.preemption_bound = Some(1);
    builder.check(|| {
        let mut model = Model::new(2);
        model.fail_validation = Some((0, 0));
        let m = model.run(3);
        assert_eq!(m.executions[0].load(Ordering::SeqCst), 2);
        assert_eq!(m.validated[0].load(Ordering::SeqCst), 2);
        assert_eq!(m.validated[1].load(Ordering::SeqCst), 1);
    });
}

/// Claims of two indices at a time: a worker works through its run while the other
/// claims behind it; with an abort, done still waits for the re-execution's validation.
#[test]
fn batched_claims_with_abort() {
    loom::model(|| {
        let mut model = Model::with_batch(3, 2);
        model.fail_validation = Some((1, 0));
        let m = model.run(2);
        for idx in 0..3 {
            assert!(m.executions[idx].load(Ordering::SeqCst) >= 1);
        }
        assert_eq!(m.executions[1].load(Ordering::SeqCst), 2);
        assert_eq!(m.validated[1].load(Ordering::SeqCst), 2);
        assert_eq!(m.validated[0].load(Ordering::SeqCst), 1);
        assert_eq!(m.validated[2].load(Ordering::SeqCst), 1);
    });
}

/// A dependency with batched claims: the parked execution is resumed and not lost when
/// its index lies inside another worker's run.
#[test]
fn batched_claims_with_dependency() {
    loom::model(|| {
        let mut model = Model::with_batch(2, 2);
        model.dependency = true;
        let m = model.run(2);
        assert_eq!(m.executions[0].load(Ordering::SeqCst), 1);
        assert_eq!(m.executions[1].load(Ordering::SeqCst), 1);
        assert!(m.validated[1].load(Ordering::SeqCst) >= 1);
    });
}

/// The commit index advanced by worker 0 between its tasks while the other worker
/// executes and validates, with transaction 1's first incarnation failing validation:
/// the block is done with 1 executed twice, and whatever was committed was committed
/// in its final incarnation (1 only after it ran again), in order.
#[test]
fn commit_index_beside_abort_and_re_execution() {
    static MOST_COMMITTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    loom::model(|| {
        let mut model = Model::new(2);
        model.fail_validation = Some((1, 0));
        model.commits = true;
        let m = model.run(2);
        assert_eq!(m.executions[1].load(Ordering::SeqCst), 2);
        let committed = m.scheduler.committed();
        MOST_COMMITTED.fetch_max(committed, std::sync::atomic::Ordering::Relaxed);
        assert!(committed <= 2);
        if committed == 2 {
            assert_eq!(m.committed_after[1].load(Ordering::SeqCst), 2);
        }
        if committed >= 1 {
            assert_eq!(m.committed_after[0].load(Ordering::SeqCst), 1);
        }
    });
    assert_eq!(
        MOST_COMMITTED.load(std::sync::atomic::Ordering::Relaxed),
        2,
        "no interleaving committed the whole block"
    );
}

/// A commit and a failed validation of the same incarnation, racing: exactly one wins
/// (a committed incarnation is never aborted, an aborted one never committed).
#[test]
fn a_commit_and_an_abort_of_one_incarnation() {
    loom::model(|| {
        let s = Arc::new(Scheduler::with_batch(1, 2, 1));
        let mut w0 = Worker::new(0);
        assert_eq!(s.next_task(&mut w0), Some(Task::Execution(0, 0)));
        let _ = s.finish_execution(0, 0, 0, false).unwrap();
        let validator = {
            let s = s.clone();
            thread::spawn(move || s.try_validation_abort(0, 0))
        };
        let committed = s.try_commit(|_| true, |_| {});
        let aborted = validator.join().unwrap();
        assert!(
            aborted != (committed == 1),
            "aborted {aborted}, committed {committed}"
        );
    });
}
