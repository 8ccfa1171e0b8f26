//! The byte budget of one scan: a bound on the agent documents held in
//! memory at once, across every host (bodies being read, then validated).
//!
//! A per-host cap alone lets N hosts cost N times the cap; the budget makes
//! the total bounded whatever the number of peers. Each host reserves its
//! bytes *before* it sends `GET /` (so waiting for its turn never eats into
//! its own time limit) and holds them until its document is validated and
//! made small. A host reserves all it needs in one step (never a part, then
//! waits for more while holding it), so hosts cannot hold the budget
//! waiting for each other: those over budget wait their turn, in order.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bytes that may be held at once by a scan's probes.
#[derive(Debug, Clone)]
pub struct ByteBudget {
    bytes: Arc<Semaphore>,
    total: u32,
}

/// Bytes reserved by one probe; given back when dropped.
#[derive(Debug)]
pub struct BytePermit {
    /// `None` only if the semaphore were closed, which never happens: an
    /// empty permit would loosen the bound, never lose a host.
    permit: Option<OwnedSemaphorePermit>,
}

impl ByteBudget {
    /// A budget of `total` bytes (at least 1, at most 4 GiB).
    pub fn new(total: usize) -> Self {
        let total = u32::try_from(total).unwrap_or(u32::MAX).max(1);
        let total = total.min(u32::try_from(Semaphore::MAX_PERMITS).unwrap_or(u32::MAX));
        Self {
            bytes: Arc::new(Semaphore::new(total as usize)),
            total,
        }
    }

    /// The whole budget, in bytes.
    pub fn total(&self) -> usize {
        self.total as usize
    }

    /// Bytes nobody holds now.
    pub fn available(&self) -> usize {
        self.bytes.available_permits()
    }

    fn clamp(&self, bytes: usize) -> u32 {
        u32::try_from(bytes)
            .unwrap_or(u32::MAX)
            .clamp(1, self.total)
    }

    /// Waits until `bytes` (at most the whole budget) are free and takes
    /// them. Fair: the first to ask is the first served.
    pub async fn acquire(&self, bytes: usize) -> BytePermit {
        let n = self.clamp(bytes);
        BytePermit {
            permit: self.bytes.clone().acquire_many_owned(n).await.ok(),
        }
    }

    /// Takes `bytes` if they are free now.
    pub fn try_acquire(&self, bytes: usize) -> Option<BytePermit> {
        let n = self.clamp(bytes);
        self.bytes
            .clone()
            .try_acquire_many_owned(n)
            .ok()
            .map(|permit| BytePermit {
                permit: Some(permit),
            })
    }
}

impl BytePermit {
    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.permit
            .as_ref()
            .map_or(0, OwnedSemaphorePermit::num_permits)
    }

    /// Grows to at least `bytes` if the budget has them free now, without
    /// waiting (a probe that would wait while holding bytes could block the
    /// others); `false` when it could not.
    pub fn try_grow(&mut self, budget: &ByteBudget, bytes: usize) -> bool {
        let have = self.bytes();
        if bytes <= have {
            return true;
        }
        if bytes > budget.total() {
            return false;
        }
        match budget.try_acquire(bytes - have) {
            Some(more) => {
                match (&mut self.permit, more.permit) {
                    (Some(mine), Some(extra)) => mine.merge(extra),
                    (mine, extra) => *mine = extra,
                }
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn holders_give_back_and_waiters_get_their_turn() {
        let b = ByteBudget::new(100);
        let a = b.acquire(60).await;
        assert_eq!((a.bytes(), b.available()), (60, 40));
        assert!(b.try_acquire(50).is_none());
        let waiter = {
            let b = b.clone();
            tokio::spawn(async move { b.acquire(80).await.bytes() })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        drop(a);
        assert_eq!(waiter.await.unwrap(), 80);
        assert_eq!(b.available(), 100);
    }

    #[tokio::test]
    async fn grows_only_when_free_and_clamps_to_the_budget() {
        let b = ByteBudget::new(100);
        let mut p = b.acquire(10).await;
        assert!(p.try_grow(&b, 90));
        assert_eq!(p.bytes(), 90);
        assert!(!p.try_grow(&b, 101));
        let q = b.try_acquire(10).unwrap();
        assert!(!p.try_grow(&b, 91));
        drop(q);
        assert!(p.try_grow(&b, 100));
        drop(p);
        // Asking for more than the whole budget takes the whole budget.
        assert_eq!(b.acquire(1_000).await.bytes(), 100);
        assert_eq!(b.acquire(0).await.bytes(), 1);
    }
}
