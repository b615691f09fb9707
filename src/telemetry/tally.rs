//! Counters for the hot path: each thread adds to a shard of its own with plain loads and
//! stores (no locked instruction, which costs ~10 ns here), and a scrape sums the shards.
//! One `Tally` per `Metrics`, so applications in one process never share counts.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, Weak};

type Shard = Arc<[AtomicU64]>;

pub struct Tally {
    slots: usize,
    /// Every thread's shard, for the sum.
    shards: Mutex<Vec<Shard>>,
    /// Lets a thread tell its shard of this tally from a dropped one's.
    alive: Arc<()>,
}

thread_local! {
    /// This thread's shards: one per live tally it has counted into.
    static MINE: RefCell<Vec<(Weak<()>, Shard)>> = const { RefCell::new(Vec::new()) };
}

impl Tally {
    pub fn new(slots: usize) -> Self {
        Self {
            slots,
            shards: Mutex::new(Vec::new()),
            alive: Arc::new(()),
        }
    }

    /// Adds `n` to `slot` (ignored past the last slot).
    pub fn add(&self, slot: usize, n: u64) {
        if slot >= self.slots {
            return;
        }
        MINE.with(|mine| {
            let mut mine = mine.borrow_mut();
            let index = match mine
                .iter()
                .position(|(alive, _)| std::ptr::eq(alive.as_ptr(), Arc::as_ptr(&self.alive)))
            {
                Some(index) => index,
                None => {
                    mine.retain(|(alive, _)| alive.strong_count() > 0);
                    let shard: Shard = (0..self.slots).map(|_| AtomicU64::new(0)).collect();
                    self.shards
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .push(shard.clone());
                    mine.push((Arc::downgrade(&self.alive), shard));
                    mine.len() - 1
                }
            };
            // This thread is the shard's only writer: a plain read and write cannot lose a
            // count, and readers see every count once it is stored.
            let cell = &mine[index].1[slot];
            cell.store(cell.load(Relaxed).wrapping_add(n), Relaxed);
        });
    }

    /// Every slot's total over all threads.
    pub fn sums(&self) -> Vec<u64> {
        let mut sums = vec![0u64; self.slots];
        let shards = self
            .shards
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for shard in shards.iter() {
            for (sum, cell) in sums.iter_mut().zip(shard.iter()) {
                *sum = sum.wrapping_add(cell.load(Relaxed));
            }
        }
        sums
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_from_many_threads_add_up_exactly() {
        let tally = Arc::new(Tally::new(3));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let tally = tally.clone();
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        tally.add(1, 1);
                    }
                    tally.add(2, 5);
                    tally.add(3, 1); // past the end: ignored
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(tally.sums(), vec![0, 80_000, 40]);
    }

    #[test]
    fn two_tallies_on_one_thread_count_apart() {
        let (a, b) = (Tally::new(1), Tally::new(1));
        a.add(0, 2);
        b.add(0, 3);
        drop(Tally::new(1));
        a.add(0, 1);
        assert_eq!((a.sums(), b.sums()), (vec![3], vec![3]));
    }
}
