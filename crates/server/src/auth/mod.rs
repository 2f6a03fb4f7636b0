//! Who is calling. Six ways of presenting the same credentials are accepted on
//! every API: `Authorization: Bearer <token>`, `Authorization: Token <token>`,
//! `Authorization: ApiKey ...` (Elasticsearch clients),
//! `X-Auth-Token: <token>`, HTTP Basic with `user:password` or `user:token`, and the
//! session cookie set by a login. The result is a [`Principal`]; what it may see and
//! do is decided by its role and domain (tenancy), here and in core.

pub mod audit;
mod bootstrap;
mod credentials;
pub mod cross_site;
pub mod rate_limit;
pub mod secrets;
pub mod sessions;
pub mod tokens;

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use logbook_core::{Query, Role, Timestamp};
use logbook_store::User;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

pub use bootstrap::{ensure_admin, Bootstrap, DEFAULT_DOMAIN};
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
            Some(_) => Err(ApiError::forbidden("may only name your own domain").at(field)),
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
        if presented.is_ambient() {
            cross_site::check(&parts.method, &parts.headers)?;
        }
        let client = client_address(parts);
        let principal = authenticate_from(state, presented, client).await?;
        parts.extensions.insert(principal.clone());
        Ok(principal)
    }
}

/// The caller's IP address, when the server was started with connect info.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(client_address(parts)))
    }
}

fn client_address(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

/// Checks presented credentials against the store; see [`authenticate_from`].
pub async fn authenticate(state: &AppState, presented: Presented) -> Result<Principal, ApiError> {
    authenticate_from(state, presented, None).await
}

/// Checks presented credentials against the store, on every request: a revoked or
/// expired token, an ended session or a disabled account is refused at once, on
/// every node sharing the store. A password sent with HTTP Basic is a login attempt
/// like any other: throttled per account and address, and journaled when wrong.
pub async fn authenticate_from(
    state: &AppState,
    presented: Presented,
    client: Option<IpAddr>,
) -> Result<Principal, ApiError> {
    let store = &state.store;
    let now = Timestamp::now();
    let active = |user: Option<User>| {
        user.filter(|u| !u.disabled)
            .ok_or_else(ApiError::unauthorized)
    };
    match presented {
        Presented::Token(secret) => {
            let (token, owner) = store
                .token_by_digest(&secrets::digest(&secret))
                .await?
                .filter(|(token, _)| token.is_usable(now))
                .ok_or_else(ApiError::unauthorized)?;
            let user = active(Some(owner))?;
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
            // An API key is tried first: it is a cheap lookup, a password is argon2.
            if let Some((token, owner)) = store.token_by_digest(&secrets::digest(&secret)).await? {
                if owner.name == user && token.is_usable(now) && !owner.disabled {
                    return Ok(Principal::from_user(
                        &owner,
                        Credential::Token { id: token.id },
                    ));
                }
                // A token of someone else, revoked or expired: not a password either.
                return Err(ApiError::unauthorized());
            }
            state.logins.check(&user, client)?;
            match sessions::check_password(state, &user, &secret).await? {
                Ok(account) => {
                    state.logins.succeeded(&user);
                    Ok(Principal::from_user(&account, Credential::Password))
                }
                Err(domain) => {
                    state.logins.failed(&user, client);
                    let mut event =
                        audit::SecurityEvent::new(audit::actions::LOGIN, "failure", &user)
                            .message(format!("HTTP Basic login failed for user {user:?}."))
                            .from_client(client);
                    event.domain = domain;
                    audit::journal(state.store.as_ref(), event).await;
                    Err(ApiError::unauthorized())
                }
            }
        }
    }
}
