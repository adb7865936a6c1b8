//! Turns at the model's shared activation buffers. A forward chunk writes the ids into
//! buffers every caller shares, submits, and reads back; two of them interleaved would
//! corrupt each other. [`Turns`] serialises them first come, first served (a ticket lock):
//! a caller that finishes a chunk and asks again queues behind those already waiting, so
//! sessions decoding side by side (the server's slots) take one step each in turn and a
//! long prefill, split into chunks, does not starve the others.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

#[derive(Default)]
pub struct Turns {
    /// (next ticket to hand out, ticket now served)
    state: Mutex<(u64, u64)>,
    wake: Condvar,
}

/// The caller's turn; the next ticket is served when it drops.
pub struct Turn<'a>(&'a Turns);

impl Turns {
    pub fn take(&self) -> Turn<'_> {
        let mut s = self.lock();
        let ticket = s.0;
        s.0 += 1;
        while s.1 != ticket {
            s = self.wake.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
        Turn(self)
    }

    fn lock(&self) -> MutexGuard<'_, (u64, u64)> {
        // the counters stay consistent even if a holder panicked
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.0.lock().1 += 1;
        self.0.wake.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::Turns;
    use std::sync::{Arc, Mutex};

    /// Threads that each ask for a turn again right after theirs alternate: no thread gets
    /// two turns in a row while another waits.
    #[test]
    fn turns_alternate() {
        let turns = Arc::new(Turns::default());
        let log = Arc::new(Mutex::new(Vec::new()));
        let first = turns.take();
        let handles: Vec<_> = (0..3)
            .map(|i| {
                let (turns, log) = (turns.clone(), log.clone());
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        let _t = turns.take();
                        log.lock().unwrap().push(i);
                        std::thread::sleep(std::time::Duration::from_micros(200));
                    }
                })
            })
            .collect();
        // let all three queue up behind the first turn
        std::thread::sleep(std::time::Duration::from_millis(100));
        drop(first);
        for h in handles {
            h.join().unwrap();
        }
        let log = log.lock().unwrap();
        assert_eq!(log.len(), 60);
        // once all three are queued, no thread runs twice in a row
        let repeats = log.windows(2).filter(|w| w[0] == w[1]).count();
        assert_eq!(repeats, 0, "turns were not taken in order: {log:?}");
    }
}
