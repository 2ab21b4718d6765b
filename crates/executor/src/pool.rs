//! The executor's own worker threads, kept from block to block.
//!
//! Starting a thread per worker and joining it for every block cost about 0.07 ms before
//! the second worker could start and 0.1 ms after the last one finished (thread exit and
//! join), on a 12 ms block on 2 cores: a pool removes both. It is the executor's own, not
//! a shared (rayon) pool: its threads run only this executor's blocks, never park inside
//! someone else's task, and a block never waits for a thread busy elsewhere.
//!
//! [`Pool::run`] hands one job, a `Fn(worker)`, to every pool thread (workers `1..=n`)
//! and runs worker 0 on the calling thread; it returns when every pool thread has
//! finished the job. The job borrows the caller's stack: its lifetime is erased while it
//! is handed over, which is sound because `run` does not return (even by unwinding)
//! before every pool thread is done with it (see `WaitForPool`).
//!
//! One block at a time: the executor takes the pool with `try_lock`, and a concurrent
//! block on the same executor starts scoped threads instead.
//!
//! `run` returns only when every pool thread has finished the job, so a job whose
//! workers wait for one another (the executor's final-pass barrier) must never unwind on
//! one of them before they meet: the executor's workers catch every panic of the VM and
//! of their own loop first (`run_worker`), and arrive at the barrier whatever happened.
//!
//! Lock order: the pool's one mutex is never held while running a job or taking another
//! lock.
//!
//! Under `cfg(loom)` the pool is a stand-in with the same interface: it keeps no threads
//! (a loom thread cannot outlive one execution of a model), and each `run` spawns loom
//! threads for workers `1..=n` and joins them. So the loom model of the whole block in
//! `loom-tests/tests/executor.rs` runs the executor's own `execute_block` on loom threads.

#[cfg(not(loom))]
use std::panic::{catch_unwind, AssertUnwindSafe};
#[cfg(not(loom))]
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
#[cfg(not(loom))]
use std::thread::JoinHandle;

/// A job: what every worker runs, given its number.
type Job<'a> = dyn Fn(usize) + Sync + 'a;

/// A job whose lifetime was erased for the hand-over (see the module doc).
#[derive(Clone, Copy)]
struct JobRef(*const Job<'static>);

// SAFETY: the pointer is a shared reference to a `Sync` closure, used only while the
// caller of `Pool::run` keeps it alive (it waits for every user before returning).
unsafe impl Send for JobRef {}

#[cfg(not(loom))]
struct State {
    job: Option<JobRef>,
    /// Incremented for every job: a thread runs each job once.
    generation: u64,
    /// Pool threads that have not finished the current job.
    remaining: usize,
    shutdown: bool,
}

#[cfg(not(loom))]
struct Shared {
    state: Mutex<State>,
    /// A new job (or shutdown) for the pool threads.
    job_ready: Condvar,
    /// The last pool thread finished the current job.
    job_done: Condvar,
}

#[cfg(not(loom))]
impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // No code panics while holding this lock: its state stays consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Worker threads `1..=n` of an executor.
#[cfg(not(loom))]
pub(crate) struct Pool {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

#[cfg(not(loom))]
impl Pool {
    /// A pool of `n` threads; `None` if the OS refuses to start them.
    pub(crate) fn new(n: usize) -> Option<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                job: None,
                generation: 0,
                remaining: 0,
                shutdown: false,
            }),
            job_ready: Condvar::new(),
            job_done: Condvar::new(),
        });
        let mut pool = Self {
            shared,
            threads: Vec::with_capacity(n),
        };
        for worker in 1..=n {
            let shared = pool.shared.clone();
            let thread = std::thread::Builder::new()
                .name(format!("blockstm-worker-{worker}"))
                .spawn(move || serve(&shared, worker))
                .ok()?;
            pool.threads.push(thread);
        }
        Some(pool)
    }

    /// The number of pool threads (workers `1..=n`).
    pub(crate) fn threads(&self) -> usize {
        self.threads.len()
    }

    /// Runs `job` on every pool thread (workers `1..=n`) and as worker 0 on this thread;
    /// returns once all of them are done.
    pub(crate) fn run(&self, job: &Job<'_>) {
        // SAFETY: only the lifetime changes. The erased reference is read by the pool
        // threads for this generation only, and `WaitForPool` (dropped on return and on
        // unwinding alike) waits until every one of them is done with it and clears it.
        let erased: &Job<'static> = unsafe { std::mem::transmute::<&Job<'_>, &Job<'static>>(job) };
        {
            let mut state = self.shared.lock();
            state.job = Some(JobRef(erased));
            state.generation = state.generation.wrapping_add(1);
            state.remaining = self.threads.len();
        }
        self.shared.job_ready.notify_all();
        let _wait = WaitForPool(&self.shared);
        job(0);
    }
}

/// Waits, when dropped, until every pool thread finished the current job, then clears it.
#[cfg(not(loom))]
struct WaitForPool<'a>(&'a Shared);

#[cfg(not(loom))]
impl Drop for WaitForPool<'_> {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        while state.remaining > 0 {
            state = self
                .0
                .job_done
                .wait(state)
                .unwrap_or_else(|p| p.into_inner());
        }
        state.job = None;
    }
}

/// A pool thread: run each new job once as `worker`, until shutdown.
#[cfg(not(loom))]
fn serve(shared: &Shared, worker: usize) {
    let mut seen = 0u64;
    loop {
        let job = {
            let mut state = shared.lock();
            while !state.shutdown && state.generation == seen {
                state = shared
                    .job_ready
                    .wait(state)
                    .unwrap_or_else(|p| p.into_inner());
            }
            if state.shutdown {
                return;
            }
            seen = state.generation;
            state.job
        };
        if let Some(JobRef(job)) = job {
            // SAFETY: the caller of `run` keeps the job alive until `remaining` reaches 0,
            // which happens only after this thread's decrement below. A panic is caught
            // (the executor's jobs catch their own; this is a last line of defence), so
            // the decrement always happens.
            let _ = catch_unwind(AssertUnwindSafe(|| unsafe { (*job)(worker) }));
        }
        let mut state = shared.lock();
        state.remaining = state.remaining.saturating_sub(1);
        if state.remaining == 0 {
            shared.job_done.notify_all();
        }
    }
}

#[cfg(not(loom))]
impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.lock().shutdown = true;
        self.shared.job_ready.notify_all();
        for thread in self.threads.drain(..) {
            // A pool thread never panics outside a job (jobs are caught): nothing to
            // report if one did.
            let _ = thread.join();
        }
    }
}

/// The loom stand-in: workers `1..=n` of each job on loom threads of their own.
#[cfg(loom)]
pub(crate) struct Pool {
    threads: usize,
}

#[cfg(loom)]
impl Pool {
    /// A stand-in for `n` pool threads (never refused).
    pub(crate) fn new(n: usize) -> Option<Self> {
        Some(Self { threads: n })
    }

    /// The number of workers besides the caller (workers `1..=n`).
    pub(crate) fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `job` on a new loom thread per worker `1..=n` and as worker 0 on this thread;
    /// returns once all of them are joined.
    pub(crate) fn run(&self, job: &Job<'_>) {
        // SAFETY: only the lifetime changes. `JoinAll` (dropped on return and on
        // unwinding alike) joins every thread spawned here before `run` returns, and no
        // thread uses the job after its end.
        let erased = JobRef(unsafe { std::mem::transmute::<&Job<'_>, &Job<'static>>(job) });
        let handles = (1..=self.threads)
            .map(|worker| {
                // SAFETY: `run` keeps the job alive until this thread is joined.
                loom::thread::spawn(move || unsafe { erased.call(worker) })
            })
            .collect();
        let _join = JoinAll(handles);
        job(0);
    }
}

#[cfg(loom)]
impl JobRef {
    /// Runs the job as `worker`.
    ///
    /// # Safety
    ///
    /// The job must still be alive: the caller of `Pool::run` has not returned.
    unsafe fn call(self, worker: usize) {
        (*self.0)(worker)
    }
}

/// Joins, when dropped, every loom thread of one job.
#[cfg(loom)]
struct JoinAll(Vec<loom::thread::JoinHandle<()>>);

#[cfg(loom)]
impl Drop for JoinAll {
    fn drop(&mut self) {
        for handle in self.0.drain(..) {
            // A panic on a worker's thread fails the model by itself.
            let _ = handle.join();
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn every_worker_runs_every_job_once_and_borrows_are_safe() {
        let pool = Pool::new(3).unwrap();
        for round in 0..50usize {
            let counts: Vec<AtomicUsize> = (0..4).map(|_| AtomicUsize::new(0)).collect();
            let local: Vec<usize> = (0..4).map(|_| round).collect();
            pool.run(&|worker| {
                counts[worker].fetch_add(local[worker] + 1, Ordering::Relaxed);
            });
            for count in &counts {
                assert_eq!(count.load(Ordering::Relaxed), round + 1);
            }
        }
    }

    #[test]
    fn a_panicking_job_still_completes_and_the_pool_goes_on() {
        let pool = Pool::new(2).unwrap();
        let result = catch_unwind(AssertUnwindSafe(|| {
            pool.run(&|worker| {
                if worker == 1 {
                    panic!("job panic on a pool thread");
                }
            })
        }));
        assert!(result.is_ok(), "a pool thread's panic stays in the pool");
        let result = catch_unwind(AssertUnwindSafe(|| {
            pool.run(&|worker| {
                if worker == 0 {
                    panic!("job panic on the caller");
                }
            })
        }));
        assert!(result.is_err(), "the caller's panic is the caller's");
        let ran = AtomicUsize::new(0);
        pool.run(&|_| {
            ran.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(ran.load(Ordering::Relaxed), 3);
    }
}
