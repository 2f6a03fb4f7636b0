//! Write admission by queueing delay: a limit on writes in flight that follows how
//! long admitted writes wait, so under overload the node admits about as many as
//! it can answer within a target delay and refuses the rest at once.
//!
//! Why not a count alone: a fixed budget of writes in flight does not bound their
//! waiting time. How long a write takes depends on what the node's CPU and disk
//! are doing besides it (shedding thousands of requests a second, a seal, other
//! processes), so the same 64 writes in flight took 5 ms on an idle node and half
//! a second under an open-loop overload; any fixed count is either too low for the
//! one or too high for the other.
//!
//! Why this shape (CoDel's signal driving an adaptive concurrency limit, as
//! Netflix's concurrency-limits and tower's load shedding do in their ways):
//! - The signal is CoDel's: the *smallest* delay of the writes answered during an
//!   interval (100 ms by default). A burst passes through a queue and leaves it
//!   empty, and some write in the interval then waits little; only a standing
//!   queue makes every write wait. Writes still waiting count with their age so
//!   far, so a store that stops answering is seen before anything completes.
//! - CoDel's own response, dropping one packet per shrinking interval, relies on
//!   TCP halving its rate after a drop; an open-loop client does not slow down
//!   when refused, so each refusal must be decided at admission. Hence a limit on
//!   writes in flight: cut by a quarter after an interval with a standing queue,
//!   raised by an eighth after one without while the limit was reached, within
//!   a floor (so a node whose every write is slow still takes some) and the count
//!   budget (`limits`, which stays the bound on memory).
//! - What is timed is the wait after the request's body is in (or from admission,
//!   for a write without one): a client that uploads slowly does not make the node
//!   shed everyone else's writes.
//!
//! The controller takes the time as an argument, so its rules are tested with a
//! clock of the test's own.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The controller's settings.
#[derive(Debug, Clone, Copy)]
pub struct DelaySettings {
    /// Delay of a write (body in to answer) above which a queue is standing, when
    /// no write in a whole interval waited less.
    pub target: Duration,
    /// How long every write must have waited above `target` before the limit is cut.
    pub interval: Duration,
    /// The largest limit (the count budget of writes in flight).
    pub ceiling: usize,
}

/// A write admitted by [`DelayLimit::admit`], until [`DelayLimit::done`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WriteId(u64);

/// The adaptive limit and the writes it admitted that are still in flight.
#[derive(Debug)]
pub struct DelayLimit {
    settings: DelaySettings,
    floor: usize,
    limit: usize,
    in_flight: HashMap<WriteId, InFlight>,
    next_id: u64,
    window: Window,
}

#[derive(Debug)]
struct InFlight {
    admitted: Instant,
    body_in: Option<Instant>,
}

#[derive(Debug)]
struct Window {
    started: Instant,
    /// The smallest delay of the writes answered in this window.
    least: Option<Duration>,
    /// Whether the limit was reached in this window (it grows only then).
    limited: bool,
}

impl DelayLimit {
    pub fn new(settings: DelaySettings, now: Instant) -> DelayLimit {
        let ceiling = settings.ceiling.max(1);
        DelayLimit {
            settings: DelaySettings {
                ceiling,
                ..settings
            },
            // An eighth of the budget (32 of 256): when CPU contention slows every
            // write, a floor of 4 admitted a tenth of what the node could take,
            // for no better delay (docs/operations.md).
            floor: ceiling.div_ceil(8),
            limit: ceiling,
            in_flight: HashMap::new(),
            next_id: 0,
            window: Window {
                started: now,
                least: None,
                limited: false,
            },
        }
    }

    /// The limit now (as time has moved it: a write stuck in the store lowers it
    /// while nothing else happens).
    pub fn limit(&mut self, now: Instant) -> usize {
        self.roll(now);
        self.limit
    }

    /// Admits a write if fewer than the limit are in flight.
    pub fn admit(&mut self, now: Instant) -> Option<WriteId> {
        self.roll(now);
        if self.in_flight.len() >= self.limit {
            self.window.limited = true;
            return None;
        }
        let id = WriteId(self.next_id);
        self.next_id += 1;
        self.in_flight.insert(
            id,
            InFlight {
                admitted: now,
                body_in: None,
            },
        );
        if self.in_flight.len() >= self.limit {
            self.window.limited = true;
        }
        Some(id)
    }

    /// The write's body is in: from now on it waits for the node.
    pub fn body_in(&mut self, id: WriteId, now: Instant) {
        if let Some(write) = self.in_flight.get_mut(&id) {
            write.body_in.get_or_insert(now);
        }
    }

    /// The write is answered; `measured`: its time says how long the node made
    /// it wait (not so for a write refused before its body was read, say).
    pub fn done(&mut self, id: WriteId, measured: bool, now: Instant) {
        if let Some(write) = self.in_flight.remove(&id) {
            if measured {
                let delay = now.saturating_duration_since(write.body_in.unwrap_or(write.admitted));
                self.window.least = Some(self.window.least.map_or(delay, |l| l.min(delay)));
            }
        }
        self.roll(now);
    }

    /// Closes the window if an interval has passed, and moves the limit by it.
    fn roll(&mut self, now: Instant) {
        if now.saturating_duration_since(self.window.started) < self.settings.interval {
            return;
        }
        // A write still waiting has waited at least this long, whatever comes;
        // one whose body is still arriving is the client's time, not the node's.
        let oldest = self
            .in_flight
            .values()
            .filter_map(|w| w.body_in)
            .min()
            .map(|since| now.saturating_duration_since(since));
        let least = match (self.window.least, oldest) {
            (Some(l), Some(o)) => Some(l.min(o)),
            (l, o) => l.or(o),
        };
        match least {
            Some(least) if least > self.settings.target => {
                self.limit = (self.limit - (self.limit / 4).max(1)).max(self.floor);
            }
            Some(_) if self.window.limited => {
                self.limit = (self.limit + self.limit.div_ceil(8)).min(self.settings.ceiling);
            }
            _ => {}
        }
        self.window = Window {
            started: now,
            least: None,
            limited: self.in_flight.len() >= self.limit,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn limit(ceiling: usize, start: Instant) -> DelayLimit {
        DelayLimit::new(
            DelaySettings {
                target: 20 * MS,
                interval: 100 * MS,
                ceiling,
            },
            start,
        )
    }

    /// Admits and answers one write that waited `delay`, at `at`.
    fn write(limit: &mut DelayLimit, at: Instant, delay: Duration) {
        let w = limit.admit(at).expect("admitted");
        limit.body_in(w, at);
        limit.done(w, true, at + delay);
    }

    #[test]
    fn a_standing_queue_cuts_the_limit_down_to_its_floor_and_refuses_beyond_it() {
        let t0 = Instant::now();
        let mut l = limit(64, t0);
        let mut now = t0;
        for _ in 0..40 {
            write(&mut l, now, 30 * MS);
            now += 110 * MS;
        }
        assert_eq!(l.limit(now), 8);
        let held: Vec<_> = (0..8).map(|_| l.admit(now).expect("within")).collect();
        assert_eq!(l.admit(now), None);
        assert_eq!(held.len(), 8);
    }

    #[test]
    fn a_burst_with_one_quick_write_per_interval_keeps_the_limit() {
        let t0 = Instant::now();
        let mut l = limit(64, t0);
        let mut now = t0;
        for _ in 0..20 {
            let slow = l.admit(now).expect("admitted");
            let quick = l.admit(now).expect("admitted");
            l.body_in(slow, now);
            l.body_in(quick, now);
            l.done(quick, true, now + 2 * MS);
            l.done(slow, true, now + 100 * MS);
            now += 110 * MS;
        }
        assert_eq!(l.limit(now), 64);
    }

    #[test]
    fn a_write_stuck_in_the_store_is_seen_before_it_completes() {
        let t0 = Instant::now();
        let mut l = limit(64, t0);
        let stuck = l.admit(t0).expect("admitted");
        l.body_in(stuck, t0);
        // Nothing has completed; the stuck write's age alone cuts the limit.
        let later = t0 + 150 * MS;
        assert!(l.admit(later).is_some());
        assert_eq!(l.limit(later), 48);
    }

    #[test]
    fn a_slow_upload_is_not_the_nodes_delay() {
        let t0 = Instant::now();
        let mut l = limit(64, t0);
        let uploading = l.admit(t0).expect("admitted");
        // Its body has not arrived for seconds; nothing of the node waits.
        let later = t0 + 5000 * MS;
        assert!(l.admit(later).is_some());
        assert_eq!(l.limit(later), 64);
        l.done(uploading, false, later);
    }

    #[test]
    fn the_limit_grows_back_when_the_queue_is_gone_and_the_limit_is_reached() {
        let t0 = Instant::now();
        let mut l = limit(64, t0);
        let mut now = t0;
        for _ in 0..40 {
            write(&mut l, now, 30 * MS);
            now += 110 * MS;
        }
        assert_eq!(l.limit(now), 8);
        // Quick writes, the limit reached in every interval.
        for _ in 0..40 {
            let mut held: Vec<_> = (0..l.limit(now))
                .map(|_| l.admit(now).expect("within"))
                .collect();
            assert_eq!(l.admit(now), None);
            let last = held.pop().expect("one");
            for w in held {
                l.body_in(w, now);
                l.done(w, true, now + MS);
            }
            now += 110 * MS;
            l.body_in(last, now - MS);
            l.done(last, true, now);
        }
        assert_eq!(l.limit(now), 64);
    }

    #[test]
    fn an_idle_node_does_not_move_its_limit() {
        let t0 = Instant::now();
        let mut l = limit(64, t0);
        write(&mut l, t0, 5 * MS);
        let later = t0 + 10_000 * MS;
        assert!(l.admit(later).is_some());
        assert_eq!(l.limit(later), 64);
    }
}
