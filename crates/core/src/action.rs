//! Actions: tracked operations with a lifecycle users can follow, cancel and retry.
//! The legal transitions live here, once, so every API refuses the same moves.

use crate::error::Error;
use crate::time::Timestamp;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionState {
    Pending,
    InProgress,
    Canceling,
    Canceled,
    Success,
    Failed,
}

impl ActionState {
    pub const ALL: [ActionState; 6] = [
        ActionState::Pending,
        ActionState::InProgress,
        ActionState::Canceling,
        ActionState::Canceled,
        ActionState::Success,
        ActionState::Failed,
    ];

    /// The Docker Cloud spelling, which is also the native one.
    pub fn name(self) -> &'static str {
        match self {
            ActionState::Pending => "Pending",
            ActionState::InProgress => "In progress",
            ActionState::Canceling => "Canceling",
            ActionState::Canceled => "Canceled",
            ActionState::Success => "Success",
            ActionState::Failed => "Failed",
        }
    }

    /// Case-insensitive; accepts `In progress`, `in_progress` and `inprogress`.
    pub fn parse(text: &str) -> Option<ActionState> {
        let folded: String = text
            .chars()
            .filter(|c| !matches!(c, ' ' | '_' | '-'))
            .collect::<String>()
            .to_ascii_lowercase();
        ActionState::ALL
            .into_iter()
            .find(|s| s.name().replace(' ', "").to_ascii_lowercase() == folded)
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            ActionState::Canceled | ActionState::Success | ActionState::Failed
        )
    }

    /// The document's lifecycle: Pending waits, In progress runs, Canceling is asked to
    /// stop; Canceled, Success and Failed are final.
    pub fn may_become(self, next: ActionState) -> bool {
        use ActionState::*;
        matches!(
            (self, next),
            (Pending, InProgress | Canceling | Canceled | Failed)
                | (InProgress, Success | Failed | Canceling)
                | (Canceling, Canceled | Success | Failed)
        )
    }
}

impl fmt::Display for ActionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a platform says when it starts tracking an operation.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewAction {
    pub object: Option<String>,
    pub action: String,
    pub method: Option<String>,
    pub path: Option<String>,
    pub user_agent: Option<String>,
    pub start_date: Option<Timestamp>,
    pub end_date: Option<Timestamp>,
    pub state: Option<ActionState>,
    pub ip: Option<String>,
    pub location: Option<String>,
    pub is_user_action: bool,
    pub can_be_canceled: bool,
    pub can_be_retried: bool,
    pub user: Option<String>,
    pub domain_id: Option<String>,
    /// The action this one retries.
    pub retry_of: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    pub uuid: String,
    pub object: Option<String>,
    pub action: String,
    pub method: Option<String>,
    pub path: Option<String>,
    pub user_agent: Option<String>,
    pub start_date: Timestamp,
    pub end_date: Option<Timestamp>,
    pub state: ActionState,
    pub ip: Option<String>,
    pub location: Option<String>,
    pub is_user_action: bool,
    pub can_be_canceled: bool,
    pub can_be_retried: bool,
    pub user: Option<String>,
    pub domain_id: Option<String>,
    pub retry_of: Option<String>,
}

impl NewAction {
    /// The action as stored under `uuid`: defaults filled in (starts now, In
    /// progress). Every store builds its actions here, so they agree.
    pub fn into_action(self, uuid: String) -> Action {
        Action {
            uuid,
            object: self.object,
            action: self.action,
            method: self.method,
            path: self.path,
            user_agent: self.user_agent,
            start_date: self.start_date.unwrap_or_else(Timestamp::now),
            end_date: self.end_date,
            state: self.state.unwrap_or(ActionState::InProgress),
            ip: self.ip,
            location: self.location,
            is_user_action: self.is_user_action,
            can_be_canceled: self.can_be_canceled,
            can_be_retried: self.can_be_retried,
            user: self.user,
            domain_id: self.domain_id,
            retry_of: self.retry_of,
        }
    }
}

impl Action {
    /// Moves the action to `to` if its lifecycle allows it, setting the end date on a
    /// final state (now unless given); otherwise leaves it as it is and returns the
    /// state it is in.
    pub fn transition(
        &mut self,
        to: ActionState,
        end_date: Option<Timestamp>,
    ) -> Result<(), ActionState> {
        if !self.state.may_become(to) {
            return Err(self.state);
        }
        self.state = to;
        if to.is_final() {
            self.end_date = Some(end_date.unwrap_or_else(Timestamp::now));
        } else if end_date.is_some() {
            self.end_date = end_date;
        }
        Ok(())
    }

    /// Whether a user may cancel it now (the document: Pending or In progress, and
    /// the platform said it can be canceled).
    pub fn cancelable(&self) -> bool {
        self.can_be_canceled && matches!(self.state, ActionState::Pending | ActionState::InProgress)
    }

    /// Whether a user may retry it now (Success, Failed or Canceled, and retryable).
    pub fn retryable(&self) -> bool {
        self.can_be_retried
            && matches!(
                self.state,
                ActionState::Success | ActionState::Failed | ActionState::Canceled
            )
    }

    /// A user's request to cancel: refused unless [`Action::cancelable`].
    pub fn request_cancel(&self) -> Result<(), Error> {
        self.refuse_unless(self.cancelable(), "canceled", self.can_be_canceled)
    }

    /// A user's request to run it again: the new action, refused unless
    /// [`Action::retryable`].
    pub fn request_retry(&self, now: Timestamp) -> Result<NewAction, Error> {
        self.refuse_unless(self.retryable(), "retried", self.can_be_retried)?;
        Ok(self.retry(now))
    }

    fn refuse_unless(&self, allowed: bool, verb: &str, ever: bool) -> Result<(), Error> {
        if allowed {
            return Ok(());
        }
        let why = if ever {
            format!("an action in state {} cannot be {verb}", self.state)
        } else {
            format!("this action cannot be {verb}")
        };
        Err(Error::Refused {
            field: "state",
            why,
        })
    }

    /// The operation to run again, as a new Pending action linked to this one.
    pub fn retry(&self, now: Timestamp) -> NewAction {
        NewAction {
            object: self.object.clone(),
            action: self.action.clone(),
            method: self.method.clone(),
            path: self.path.clone(),
            user_agent: self.user_agent.clone(),
            start_date: Some(now),
            end_date: None,
            state: Some(ActionState::Pending),
            ip: self.ip.clone(),
            location: self.location.clone(),
            is_user_action: true,
            can_be_canceled: self.can_be_canceled,
            can_be_retried: self.can_be_retried,
            user: self.user.clone(),
            domain_id: self.domain_id.clone(),
            retry_of: Some(self.uuid.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ActionState::*;

    #[test]
    fn final_states_are_final() {
        for from in [Canceled, Success, Failed] {
            for to in ActionState::ALL {
                assert!(!from.may_become(to), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn the_lifecycle_moves_forward_only() {
        assert!(Pending.may_become(InProgress));
        assert!(InProgress.may_become(Success));
        assert!(InProgress.may_become(Canceling));
        assert!(Canceling.may_become(Canceled));
        assert!(!InProgress.may_become(Pending));
        assert!(!Canceling.may_become(InProgress));
        assert!(!Pending.may_become(Pending));
    }

    #[test]
    fn state_names_parse_loosely() {
        assert_eq!(ActionState::parse("In progress"), Some(InProgress));
        assert_eq!(ActionState::parse("in_progress"), Some(InProgress));
        assert_eq!(ActionState::parse("SUCCESS"), Some(Success));
        assert_eq!(ActionState::parse("done"), None);
    }
}
