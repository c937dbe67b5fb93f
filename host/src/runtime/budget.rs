//! The host-wide memory budget for plugin calls.
//!
//! Each call may use up to `max_memory_bytes` of linear memory, so `N`
//! concurrent calls may use `N` times that. The budget bounds the product: a
//! call takes one of `budget / max_memory_bytes` permits before its instance
//! is created and gives it back when its `Store` is dropped, so linear memory
//! in use by all calls together never exceeds the budget. A call that finds
//! no permit waits for one (a serving call on an async worker yields while
//! it waits, [`MemoryBudget::acquire_async`]); every holder is bounded by the call timeout, so
//! the wait is too. The wait does not count toward the caller's own timeout.
//!
//! The budget also keeps the numbers the runtime reports: linear memory in
//! use now by all calls, and the peak since start.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

/// Admission control and accounting of plugin linear memory.
#[derive(Debug)]
pub struct MemoryBudget {
    budget: usize,
    permits: usize,
    taken: Mutex<usize>,
    returned: Condvar,
    /// Wakes async waiters when a permit is returned.
    freed: tokio::sync::Notify,
    in_use: AtomicUsize,
    peak: AtomicUsize,
    peak_calls: AtomicUsize,
}

/// A call's admission; returned on drop.
#[derive(Debug)]
pub struct Permit {
    budget: Arc<MemoryBudget>,
}

impl MemoryBudget {
    /// A budget of `budget` bytes for calls of at most `per_call` bytes each;
    /// `None` when not even one call fits.
    pub fn new(budget: usize, per_call: usize) -> Option<Arc<Self>> {
        let permits = budget.checked_div(per_call)?;
        (permits > 0).then(|| {
            Arc::new(Self {
                budget,
                permits,
                taken: Mutex::new(0),
                returned: Condvar::new(),
                freed: tokio::sync::Notify::new(),
                in_use: AtomicUsize::new(0),
                peak: AtomicUsize::new(0),
                peak_calls: AtomicUsize::new(0),
            })
        })
    }

    /// Waits for a permit, blocking the thread.
    pub fn acquire(self: &Arc<Self>) -> Permit {
        let mut taken = self.taken.lock().unwrap_or_else(PoisonError::into_inner);
        while *taken >= self.permits {
            taken = self
                .returned
                .wait(taken)
                .unwrap_or_else(PoisonError::into_inner);
        }
        self.take(&mut taken)
    }

    /// Waits for a permit without blocking the thread.
    pub async fn acquire_async(self: &Arc<Self>) -> Permit {
        loop {
            // Registered before the check, so a permit returned between the
            // check and the wait still wakes this one.
            let freed = self.freed.notified();
            if let Some(permit) = self.try_acquire() {
                return permit;
            }
            freed.await;
        }
    }

    /// A permit if one is free now.
    pub fn try_acquire(self: &Arc<Self>) -> Option<Permit> {
        let mut taken = self.taken.lock().unwrap_or_else(PoisonError::into_inner);
        (*taken < self.permits).then(|| self.take(&mut taken))
    }

    fn take(self: &Arc<Self>, taken: &mut usize) -> Permit {
        *taken += 1;
        self.peak_calls.fetch_max(*taken, Ordering::Relaxed);
        Permit {
            budget: self.clone(),
        }
    }

    /// Records that a call's memories grew (or shrank) from `from` to `to` bytes.
    pub fn record(&self, from: usize, to: usize) {
        if to >= from {
            let now = self.in_use.fetch_add(to - from, Ordering::Relaxed) + (to - from);
            self.peak.fetch_max(now, Ordering::Relaxed);
        } else {
            self.in_use.fetch_sub(from - to, Ordering::Relaxed);
        }
    }

    pub fn stats(&self) -> MemoryStats {
        MemoryStats {
            budget: self.budget,
            max_concurrent_calls: self.permits,
            in_use: self.in_use.load(Ordering::Relaxed),
            peak: self.peak.load(Ordering::Relaxed),
            peak_concurrent_calls: self.peak_calls.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut taken = self
            .budget
            .taken
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *taken = taken.saturating_sub(1);
        self.budget.returned.notify_one();
        self.budget.freed.notify_waiters();
    }
}

/// What the runtime reports about plugin memory (see [`super::Runtime::memory_stats`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryStats {
    /// The configured budget, in bytes.
    pub budget: usize,
    /// Calls that may hold memory at once: budget / per-call limit.
    pub max_concurrent_calls: usize,
    /// Linear memory of all calls in flight now, in bytes.
    pub in_use: usize,
    /// The most linear memory calls held at once since start, in bytes.
    pub peak: usize,
    /// The most calls admitted at once since start.
    pub peak_concurrent_calls: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_are_budget_over_per_call_memory() {
        assert!(MemoryBudget::new(100, 101).is_none());
        assert!(MemoryBudget::new(100, 0).is_none());
        let budget = MemoryBudget::new(350, 100).unwrap();
        assert_eq!(budget.stats().max_concurrent_calls, 3);
        let held: Vec<Permit> = (0..3).map(|_| budget.acquire()).collect();
        let waiter = {
            let budget = budget.clone();
            std::thread::spawn(move || drop(budget.acquire()))
        };
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(!waiter.is_finished(), "a fourth call must wait");
        drop(held);
        waiter.join().unwrap();
        assert_eq!(budget.stats().peak_concurrent_calls, 3);
    }

    #[tokio::test]
    async fn an_async_waiter_is_woken_when_a_permit_returns() {
        let budget = MemoryBudget::new(200, 100).unwrap();
        let held: Vec<Permit> = (0..2).map(|_| budget.acquire()).collect();
        assert!(budget.try_acquire().is_none());
        let waiter = tokio::spawn({
            let budget = budget.clone();
            async move { drop(budget.acquire_async().await) }
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "a third call must wait");
        drop(held);
        waiter.await.unwrap();
        assert_eq!(budget.stats().peak_concurrent_calls, 2);
        assert!(budget.try_acquire().is_some());
    }

    #[test]
    fn usage_and_peak_follow_growth() {
        let budget = MemoryBudget::new(1000, 100).unwrap();
        budget.record(0, 60);
        budget.record(0, 30);
        budget.record(60, 0);
        let stats = budget.stats();
        assert_eq!((stats.in_use, stats.peak), (30, 90));
    }
}
