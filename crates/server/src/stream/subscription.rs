//! One subscriber's view of a live feed: a cursor over items that only move forward
//! (record ids, an action's log sequence), fed live by a [`Feed`] and caught up from
//! the store whenever the live side cannot vouch for what came in between (a resume
//! point in the past, a subscriber that fell behind). Every item is delivered
//! exactly once, in order, and no subscriber holds more than one store page plus its
//! live queue in memory. Every live stream of every API is one of these.

use logbook_store::StoreError;
use std::collections::VecDeque;
use std::future::Future;
use tokio::sync::watch;

/// Items read from the store per catch-up page.
pub const CATCH_UP_PAGE: u64 = 500;

/// How far (in positions) a subscriber may trail the newest item when it lags before
/// it is disconnected: past this it is not catching up but drowning, and a resume
/// later costs the server less than serving it page by page forever.
pub const MAX_BEHIND: i64 = 1_000_000;

/// What the live side of a feed has for a subscriber.
#[derive(Debug)]
pub enum Arrival<T> {
    /// New items in position order; every item up to `covered` that the
    /// subscriber should see is among them or was handed over before.
    Items(Vec<T>, i64),
    /// The live side lost track of some items: the store has them.
    Lagged,
    /// The feed has no more after what the store holds now (an action that finished).
    Finished,
    /// The source is gone (the node is stopping).
    Closed,
}

/// A page read from the store after a position.
#[derive(Debug)]
pub struct Caught<T> {
    pub items: Vec<T>,
    /// Whether the read reached the end of what the store held.
    pub complete: bool,
    /// The position the read covered: everything up to it is in `items` or was not
    /// the subscriber's.
    pub covered: i64,
}

/// The source of one kind of stream: how its items arrive live and how they are
/// read from the store. A protocol module never implements this; it asks an engine
/// (`Hub::records`, `actions::follow_logs`) for a [`Subscription`].
pub trait Feed: Send {
    type Item: Send;

    /// An item's position; positions only grow along a feed.
    fn position(item: &Self::Item) -> i64;

    /// Waits for what the live side has next.
    fn arrival(&mut self) -> impl Future<Output = Arrival<Self::Item>> + Send;

    /// Up to `limit` items after `position`, from the store.
    fn read_after(
        &mut self,
        position: i64,
        limit: u64,
    ) -> impl Future<Output = Result<Caught<Self::Item>, StoreError>> + Send;

    /// The newest position there is, if the feed can say (for the lag limit).
    fn newest(&self) -> Option<i64> {
        None
    }

    /// A position up to which everything has been handed to the subscription, when
    /// the live side knows one beyond the last item (so a resume point does not
    /// lag behind quiet stretches).
    fn settled(&self) -> Option<i64> {
        None
    }
}

/// Why a stream ended; each carries the position to resume from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// The node is shutting down.
    Shutdown,
    /// The subscriber fell further behind than [`MAX_BEHIND`].
    TooSlow,
    /// The store could not be read while catching up.
    StoreFailed(String),
    /// The feed is complete (an action reached a final state) and all was delivered.
    Finished,
}

impl End {
    pub fn reason(&self) -> &str {
        match self {
            End::Shutdown => "shutdown",
            End::TooSlow => "too_slow",
            End::StoreFailed(_) => "store_error",
            End::Finished => "finished",
        }
    }
}

#[derive(Debug)]
pub struct Subscription<F: Feed> {
    feed: F,
    shutdown: watch::Receiver<bool>,
    /// The position of the last item handed out (or the starting point).
    delivered: i64,
    /// Every item up to here is handed out, queued in `pending`, or not the
    /// subscriber's: the dedupe line for live items and where catch-up resumes.
    covered: i64,
    catching_up: bool,
    /// The feed said it is complete: end once the store has been read to its end.
    finishing: bool,
    pending: VecDeque<F::Item>,
}

impl<F: Feed> Subscription<F> {
    /// Follows `feed` after `position`. The feed must already be live (subscribed
    /// to its source) when this is called: the first step reads the store after
    /// `position`, so whatever was committed before the feed went live is read
    /// there, and whatever after arrives live (duplicates are dropped by position).
    pub fn start(feed: F, position: i64, shutdown: watch::Receiver<bool>) -> Subscription<F> {
        Subscription {
            feed,
            shutdown,
            delivered: position,
            covered: position,
            catching_up: true,
            finishing: false,
            pending: VecDeque::new(),
        }
    }

    /// The position a client resumes from: everything up to it was delivered.
    pub fn position(&self) -> i64 {
        if !self.pending.is_empty() {
            return self.delivered;
        }
        match self.feed.settled() {
            Some(settled) if !self.catching_up => self.covered.max(settled),
            _ => self.covered,
        }
    }

    /// The next item, waiting for one if necessary.
    pub async fn next(&mut self) -> Result<F::Item, End> {
        loop {
            if *self.shutdown.borrow() {
                return Err(End::Shutdown);
            }
            if let Some(item) = self.pending.pop_front() {
                self.delivered = F::position(&item);
                return Ok(item);
            }
            if self.catching_up {
                self.catch_up_page().await?;
                continue;
            }
            if self.finishing {
                return Err(End::Finished);
            }
            let arrival = tokio::select! {
                arrival = self.feed.arrival() => arrival,
                _ = self.shutdown.wait_for(|stop| *stop) => return Err(End::Shutdown),
            };
            match arrival {
                Arrival::Items(items, covered) => self.take_live(items, covered),
                Arrival::Lagged => {
                    let newest = self.feed.newest().unwrap_or(self.covered);
                    if newest - self.covered > MAX_BEHIND {
                        return Err(End::TooSlow);
                    }
                    self.catching_up = true;
                }
                Arrival::Finished => {
                    // Items committed before the end may still be on their way
                    // live; the store has them all.
                    self.finishing = true;
                    self.catching_up = true;
                }
                Arrival::Closed => return Err(End::Shutdown),
            }
        }
    }

    /// Queues the live items the subscriber has not had yet; positions at or below
    /// `covered` were delivered by a catch-up already (the dedupe across the
    /// catch-up/live boundary).
    fn take_live(&mut self, items: Vec<F::Item>, covered: i64) {
        for item in items {
            let position = F::position(&item);
            if position > self.covered {
                self.covered = position;
                self.pending.push_back(item);
            }
        }
        self.covered = self.covered.max(covered);
    }

    async fn catch_up_page(&mut self) -> Result<(), End> {
        let page = self
            .feed
            .read_after(self.covered, CATCH_UP_PAGE)
            .await
            .map_err(|e| End::StoreFailed(e.to_string()))?;
        self.catching_up = !page.complete;
        self.covered = self.covered.max(page.covered);
        self.pending.extend(page.items);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// A feed over plain numbers: `stored` is the store, `live` what arrives.
    struct Numbers {
        stored: Vec<i64>,
        live: VecDeque<Arrival<i64>>,
    }

    impl Feed for Numbers {
        type Item = i64;

        fn position(item: &i64) -> i64 {
            *item
        }

        async fn arrival(&mut self) -> Arrival<i64> {
            match self.live.pop_front() {
                Some(arrival) => arrival,
                None => std::future::pending().await,
            }
        }

        async fn read_after(
            &mut self,
            position: i64,
            limit: u64,
        ) -> Result<Caught<i64>, StoreError> {
            let after: Vec<i64> = self
                .stored
                .iter()
                .copied()
                .filter(|n| *n > position)
                .collect();
            let items: Vec<i64> = after.iter().copied().take(limit as usize).collect();
            let complete = items.len() == after.len();
            let covered = match (complete, items.last()) {
                (false, Some(last)) => *last,
                _ => self
                    .stored
                    .last()
                    .copied()
                    .unwrap_or(position)
                    .max(position),
            };
            Ok(Caught {
                items,
                complete,
                covered,
            })
        }
    }

    async fn take(subscription: &mut Subscription<Numbers>, n: usize) -> Vec<i64> {
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(subscription.next().await.expect("item"));
        }
        out
    }

    #[tokio::test]
    async fn catch_up_and_live_items_are_delivered_once_in_order_across_a_lag() {
        let (_stop, shutdown) = watch::channel(false);
        let feed = Numbers {
            stored: (1..=1200).collect(),
            live: VecDeque::from([
                // Overlaps what the catch-up read: dropped by position.
                Arrival::Items(vec![1199, 1200, 1201], 1201),
                Arrival::Lagged,
                Arrival::Items(vec![1300], 1300),
            ]),
        };
        let mut subscription = Subscription::start(feed, 0, shutdown);
        let first = take(&mut subscription, 1201).await;
        assert_eq!(first, (1..=1201).collect::<Vec<_>>());
        // After the lag, the store (which has 1202..) is read again from 1201.
        subscription.feed.stored.extend(1202..=1300);
        let rest = take(&mut subscription, 99).await;
        assert_eq!(rest, (1202..=1300).collect::<Vec<_>>());
        assert_eq!(subscription.position(), 1300);
    }

    #[tokio::test]
    async fn a_finished_feed_is_read_to_the_end_of_the_store_then_ends() {
        let (_stop, shutdown) = watch::channel(false);
        let feed = Numbers {
            stored: vec![1, 2],
            live: VecDeque::from([Arrival::Finished]),
        };
        let mut subscription = Subscription::start(feed, 0, shutdown);
        assert_eq!(take(&mut subscription, 2).await, [1, 2]);
        // The last line landed in the store just before the end was announced.
        subscription.feed.stored.push(3);
        assert_eq!(subscription.next().await, Ok(3));
        assert_eq!(subscription.next().await, Err(End::Finished));
    }
}
