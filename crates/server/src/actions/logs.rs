//! An action's log lines: appending them, and following them for every API that
//! streams them. Following is a subscription of the stream engine over a feed of
//! one action's lines: the last `tail` lines, then (with `follow`) each new line as
//! it is committed until the action reaches a final state; a follower that falls
//! behind is caught up from the store, and the lines committed before the final
//! state are always delivered before the end.

use crate::auth::Principal;
use crate::error::ApiError;
use crate::scoped;
use crate::state::AppState;
use crate::stream::{Arrival, Caught, Feed, Subscription};
use logbook_core::Action;
use logbook_store::notifier::ActionLogAppended;
use logbook_store::{ActionLogLine, Store, StoreError};
use std::sync::Arc;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

/// Appends log lines to an action the caller may write to.
pub async fn append_logs(
    state: &AppState,
    principal: &Principal,
    uuid: &str,
    lines: Vec<String>,
) -> Result<Vec<ActionLogLine>, ApiError> {
    principal.require_write()?;
    scoped::action(state, principal, uuid).await?;
    Ok(state.store.append_action_logs(uuid, lines).await?)
}

/// Follows the log of an action the caller may read: its last `tail` lines, then,
/// with `follow`, the lines to come until the action ends (at once if it has).
pub async fn follow_logs(
    state: &AppState,
    principal: &Principal,
    uuid: &str,
    tail: u64,
    follow: bool,
) -> Result<Subscription<LogFeed>, ApiError> {
    let action = scoped::action(state, principal, uuid).await?;
    // Live first, then the backlog read: no line falls between the two.
    let mut feed = LogFeed {
        store: Arc::clone(&state.store),
        uuid: action.uuid.clone(),
        lines: state.store.notifier().subscribe_action_logs(),
        changes: state.store.notifier().subscribe_actions(),
        finished: !follow,
    };
    // The action may have finished before the subscription started.
    feed.finished |= state
        .store
        .get_action(uuid)
        .await?
        .is_none_or(|a| a.state.is_final());
    let backlog = state.store.action_logs(uuid, tail.max(1)).await?;
    let start = match (tail, backlog.first(), backlog.last()) {
        (0, _, Some(last)) => last.seq,
        (_, Some(first), _) => first.seq - 1,
        _ => 0,
    };
    Ok(Subscription::start(feed, start, state.shutdown.clone()))
}

/// One action's log lines: live from the notifier, caught up from the store.
pub struct LogFeed {
    store: Arc<dyn Store>,
    uuid: String,
    lines: broadcast::Receiver<ActionLogAppended>,
    changes: broadcast::Receiver<Arc<Action>>,
    /// The action is in a final state: no line can follow what the store holds.
    finished: bool,
}

impl std::fmt::Debug for LogFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogFeed")
            .field("uuid", &self.uuid)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl LogFeed {
    async fn has_ended(&self) -> bool {
        matches!(self.store.get_action(&self.uuid).await, Ok(Some(a)) if a.state.is_final())
    }
}

impl Feed for LogFeed {
    type Item = ActionLogLine;

    fn position(line: &ActionLogLine) -> i64 {
        line.seq
    }

    async fn arrival(&mut self) -> Arrival<ActionLogLine> {
        loop {
            if self.finished {
                return Arrival::Finished;
            }
            tokio::select! {
                appended = self.lines.recv() => match appended {
                    Ok(appended) if appended.uuid == self.uuid => {
                        let covered = appended.lines.last().map_or(0, |l| l.seq);
                        return Arrival::Items(appended.lines.to_vec(), covered);
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => return Arrival::Lagged,
                    Err(RecvError::Closed) => return Arrival::Closed,
                },
                changed = self.changes.recv() => match changed {
                    Ok(action) if action.uuid == self.uuid => {
                        self.finished = action.state.is_final();
                    }
                    Ok(_) => {}
                    // Missed changes say nothing about lines; the store says
                    // whether the action ended meanwhile.
                    Err(RecvError::Lagged(_)) => self.finished = self.has_ended().await,
                    Err(RecvError::Closed) => return Arrival::Closed,
                },
            }
        }
    }

    async fn read_after(
        &mut self,
        position: i64,
        limit: u64,
    ) -> Result<Caught<ActionLogLine>, StoreError> {
        let items = self
            .store
            .action_logs_after(&self.uuid, position, limit)
            .await?;
        let complete = (items.len() as u64) < limit;
        let covered = items.last().map_or(position, |l| l.seq);
        Ok(Caught {
            items,
            complete,
            covered,
        })
    }
}
