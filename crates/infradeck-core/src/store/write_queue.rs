//! Writers of one database file inside one process take turns in arrival order.
//!
//! SQLite's busy handler polls: a writer that finds the file locked sleeps and retries, while
//! the writer holding it commits and, a moment later, begins its next transaction — often before
//! the sleeper wakes. With eight sources reconciling at once, a source with small transactions
//! (Jira) could wait out the whole busy timeout behind one with large ones (PuppetDB's Facter 4
//! facts) and fail with "database is locked" although the file was never held for long. A ticket
//! queue in front of `BEGIN IMMEDIATE` serves same-process writers first come, first served;
//! other processes still meet SQLite's own locking.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

#[derive(Default)]
pub(crate) struct WriteQueue {
    state: Mutex<State>,
    turn: Condvar,
}

#[derive(Default)]
struct State {
    /// A writer holds its turn.
    busy: bool,
    /// Waiting writers, first come first.
    waiting: VecDeque<u64>,
    next_id: u64,
}

/// The queue of one database file (by its canonical path).
pub(crate) fn for_file(key: &Path) -> Arc<WriteQueue> {
    static QUEUES: OnceLock<Mutex<HashMap<PathBuf, Arc<WriteQueue>>>> = OnceLock::new();
    let mut queues = QUEUES
        .get_or_init(Default::default)
        .lock()
        // A panic while holding this lock cannot leave the map half-updated.
        .unwrap_or_else(|e| e.into_inner());
    queues.entry(key.to_path_buf()).or_default().clone()
}

/// One writer's turn; the next writer is served when it is dropped.
pub(crate) struct Turn<'a>(&'a WriteQueue);

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.0.lock().busy = false;
        self.0.turn.notify_all();
    }
}

impl WriteQueue {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Plain fields that a panic cannot leave inconsistent with each other in a way that
        // matters: at worst one writer is skipped.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for this caller's turn, at most `timeout`; `None` when it did not come (the caller
    /// reports "busy", as SQLite's own timeout would).
    pub(crate) fn wait_turn(&self, timeout: Duration) -> Option<Turn<'_>> {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        let me = state.next_id;
        state.next_id += 1;
        state.waiting.push_back(me);
        loop {
            if !state.busy && state.waiting.front() == Some(&me) {
                state.waiting.pop_front();
                state.busy = true;
                return Some(Turn(self));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                state.waiting.retain(|id| *id != me);
                drop(state);
                // The writer behind may now be first.
                self.turn.notify_all();
                return None;
            }
            state = self
                .turn
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writers_are_served_in_arrival_order_and_a_timeout_frees_the_place() {
        let queue = Arc::new(WriteQueue::default());
        let first = queue.wait_turn(Duration::from_secs(1)).unwrap();
        assert!(
            queue.wait_turn(Duration::from_millis(20)).is_none(),
            "busy: the second writer times out"
        );
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut threads = Vec::new();
        for n in 0..4 {
            let (mine, order) = (queue.clone(), order.clone());
            threads.push(std::thread::spawn(move || {
                let _turn = mine.wait_turn(Duration::from_secs(10)).unwrap();
                order.lock().unwrap().push(n);
            }));
            // Let each thread take its place before the next arrives.
            while queue.lock().waiting.len() < n + 1 {
                std::thread::yield_now();
            }
        }
        drop(first);
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3]);
    }
}
