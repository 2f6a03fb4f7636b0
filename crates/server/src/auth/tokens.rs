//! Issuing and revoking API tokens, shared by the native API and the CLI so both
//! apply the same rules and leave the same audit trail.

use super::audit::{self, actions, SecurityEvent};
use super::secrets;
use logbook_core::time::parse_duration;
use logbook_core::Timestamp;
use logbook_store::{Store, Token, User};
use serde_json::{json, Value};

/// A lifetime (`30d`, `12h`, `1w`) from now, or an absolute RFC 3339 time.
/// `None` when the text is neither or the moment is not in the future.
pub fn parse_expiry(text: &str, now: Timestamp) -> Option<Timestamp> {
    let at = match parse_duration(text) {
        Some(d) => Timestamp(
            now.micros()
                .saturating_add(i64::try_from(d.as_micros()).ok()?),
        ),
        None => Timestamp::parse(text)?,
    };
    (at > now).then_some(at)
}

/// Who issues or revokes a token, for the journal.
#[derive(Debug, Clone)]
pub struct Issuer {
    pub name: String,
    pub user_id: Option<String>,
    pub domain: Option<String>,
}

impl Issuer {
    pub fn cli() -> Issuer {
        Issuer {
            name: "cli".into(),
            user_id: None,
            domain: None,
        }
    }

    pub fn of(principal: &super::Principal) -> Issuer {
        Issuer {
            name: principal.name.clone(),
            user_id: Some(principal.user_id.to_string()),
            domain: Some(principal.domain.clone()),
        }
    }

    fn event(&self, action: &'static str, owner: &User) -> SecurityEvent {
        let mut event = SecurityEvent::new(action, "success", &self.name);
        event.user_id = self.user_id.clone();
        // Filed in the owner's domain: the token belongs to that tenant's account.
        event.domain = Some(owner.domain.clone());
        event.detail("token_owner", json!(owner.name))
    }
}

/// Creates a token for `owner`; returns the secret (to show once) and the token.
pub async fn issue(
    store: &dyn Store,
    issuer: &Issuer,
    owner: &User,
    name: Option<String>,
    expires: Option<Timestamp>,
) -> logbook_store::Result<(String, Token)> {
    let secret = secrets::new_token();
    let token = store
        .create_token(owner.id, name, secrets::digest(&secret), expires)
        .await?;
    let event = issuer
        .event(actions::TOKEN_CREATE, owner)
        .about("token", token.id.to_string())
        .message(format!(
            "Token {} ({}) created for user {:?}.",
            token.id,
            token.name.as_deref().unwrap_or("unnamed"),
            owner.name
        ))
        .detail("expires", json!(token.expires.map(Timestamp::rfc3339)));
    audit::journal(store, event).await;
    Ok((secret, token))
}

/// Revokes a token (it is refused from the next request on, on every node).
/// Returns false when no token has that id.
pub async fn revoke(
    store: &dyn Store,
    issuer: &Issuer,
    token: &Token,
) -> logbook_store::Result<bool> {
    if !store.revoke_token(token.id).await? {
        return Ok(false);
    }
    let owner = store.user_by_id(token.user_id).await?;
    let event = match &owner {
        Some(owner) => issuer.event(actions::TOKEN_REVOKE, owner),
        None => SecurityEvent::new(actions::TOKEN_REVOKE, "success", &issuer.name),
    }
    .about("token", token.id.to_string())
    .message(format!(
        "Token {} ({}) of user {:?} revoked.",
        token.id,
        token.name.as_deref().unwrap_or("unnamed"),
        token.user_name
    ));
    audit::journal(store, event).await;
    Ok(true)
}

/// `active`, `expired` or `revoked`.
pub fn state(token: &Token, now: Timestamp) -> &'static str {
    if token.revoked {
        "revoked"
    } else if !token.is_usable(now) {
        "expired"
    } else {
        "active"
    }
}

/// A token as listed (never its secret).
pub fn token_json(token: &Token, now: Timestamp) -> Value {
    json!({
        "id": token.id,
        "user": token.user_name,
        "name": token.name,
        "created": token.created.rfc3339(),
        "expires": token.expires.map(Timestamp::rfc3339),
        "state": state(token, now),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_a_lifetime_or_a_future_time() {
        let now = Timestamp::parse("2030-01-01T00:00:00Z").expect("time");
        let day = parse_expiry("1d", now).expect("1d");
        assert_eq!(day.micros() - now.micros(), 86_400_000_000);
        assert!(parse_expiry("2031-01-01T00:00:00Z", now).is_some());
        assert!(parse_expiry("2029-01-01T00:00:00Z", now).is_none());
        assert!(parse_expiry("soon", now).is_none());
    }
}
