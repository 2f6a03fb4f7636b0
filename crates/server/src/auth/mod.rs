//! Who is calling. Five ways of presenting the same credentials are accepted on
//! every API: `Authorization: Bearer <token>`, `Authorization: Token <token>`,
//! `X-Auth-Token: <token>`, HTTP Basic with `user:password` or `user:token`, and the
//! session cookie set by a login. The result is a [`Principal`]; what it may see and
//! do is decided by its role and domain (tenancy), here and in core.

mod bootstrap;
mod credentials;
pub mod secrets;
pub mod sessions;

use crate::error::ApiError;
use crate::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use logbook_core::{Query, Role, Timestamp};
use logbook_store::User;

pub use bootstrap::{ensure_admin, Bootstrap};
pub use credentials::Presented;

/// How the caller proved who it is.
#[derive(Debug, Clone, PartialEq)]
pub enum Credential {
    Token { id: i64 },
    Session { digest: String },
    Password,
}

#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: i64,
    pub name: String,
    pub role: Role,
    pub domain: String,
    /// A writer granted to write into any domain.
    pub any_domain: bool,
    pub credential: Credential,
}

impl Principal {
    pub fn from_user(user: &User, credential: Credential) -> Principal {
        Principal {
            user_id: user.id,
            name: user.name.clone(),
            role: user.role,
            domain: user.domain.clone(),
            any_domain: user.any_domain,
            credential,
        }
    }

    /// The domains whose records this principal may read; `None` means all.
    pub fn readable_domains(&self) -> Option<Vec<String>> {
        (!self.role.reads_every_domain()).then(|| vec![self.domain.clone()])
    }

    /// Restricts a query to what this principal may read.
    pub fn scope(&self, query: Query) -> Query {
        match self.readable_domains() {
            Some(domains) => query.within_domains(&domains),
            None => query,
        }
    }

    /// Whether a record or object of `domain` is visible to this principal.
    pub fn can_read_domain(&self, domain: Option<&str>) -> bool {
        self.role.reads_every_domain() || domain == Some(self.domain.as_str())
    }

    pub fn require_write(&self) -> Result<(), ApiError> {
        if self.role.may_write() {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "the {} role cannot write",
                self.role
            )))
        }
    }

    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.role.is_admin() {
            Ok(())
        } else {
            Err(ApiError::forbidden("only administrators may do this"))
        }
    }

    /// The domain a write lands in: the principal's own, unless it may write to any
    /// domain and names another.
    pub fn write_domain(&self, requested: Option<&str>, field: &str) -> Result<String, ApiError> {
        match requested {
            None => Ok(self.domain.clone()),
            Some(d) if d == self.domain => Ok(self.domain.clone()),
            Some(d) if self.role.is_admin() || self.any_domain => Ok(d.to_string()),
            Some(_) => Err(ApiError::field(
                axum::http::StatusCode::FORBIDDEN,
                field,
                "may only name your own domain",
            )),
        }
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(principal) = parts.extensions.get::<Principal>() {
            return Ok(principal.clone());
        }
        let presented =
            Presented::from_headers(&parts.headers).ok_or_else(ApiError::unauthorized)?;
        let principal = authenticate(state, presented).await?;
        parts.extensions.insert(principal.clone());
        Ok(principal)
    }
}

/// Checks presented credentials against the store.
pub async fn authenticate(state: &AppState, presented: Presented) -> Result<Principal, ApiError> {
    let store = &state.store;
    let now = Timestamp::now();
    let active = |user: Option<User>| {
        user.filter(|u| !u.disabled)
            .ok_or_else(ApiError::unauthorized)
    };
    match presented {
        Presented::Token(secret) => {
            let token = store
                .token_by_digest(&secrets::digest(&secret))
                .await?
                .filter(|t| t.is_usable(now))
                .ok_or_else(ApiError::unauthorized)?;
            let user = active(store.user_by_id(token.user_id).await?)?;
            Ok(Principal::from_user(
                &user,
                Credential::Token { id: token.id },
            ))
        }
        Presented::Session(secret) => {
            let digest = secrets::digest(&secret);
            let session = store
                .session_by_digest(&digest)
                .await?
                .filter(|s| s.expires > now)
                .ok_or_else(ApiError::unauthorized)?;
            let user = active(store.user_by_id(session.user_id).await?)?;
            Ok(Principal::from_user(&user, Credential::Session { digest }))
        }
        Presented::Basic { user, secret } => {
            let account = active(store.user_by_name(&user).await?)?;
            // An API key is tried first: it is a cheap lookup, a password is argon2.
            if let Some(token) = store.token_by_digest(&secrets::digest(&secret)).await? {
                if token.user_id == account.id && token.is_usable(now) {
                    return Ok(Principal::from_user(
                        &account,
                        Credential::Token { id: token.id },
                    ));
                }
            }
            match &account.password_hash {
                Some(hash) if secrets::verify_password(secret, hash.clone()).await => {
                    Ok(Principal::from_user(&account, Credential::Password))
                }
                _ => Err(ApiError::unauthorized()),
            }
        }
    }
}
