//! Accounts, API tokens and login sessions as stored. Secrets never reach the store:
//! it keeps argon2id password hashes and SHA-256 digests of tokens and session ids.

use crate::Result;
use async_trait::async_trait;
use logbook_core::{Role, Timestamp};

/// Columns of `users`, in the order both stores read them.
pub(crate) const USER_COLUMNS: &str =
    "id, name, password_hash, role, domain, disabled, any_domain, created";
/// Columns of `tokens t` joined with its owner's name from `users u`.
pub(crate) const TOKEN_COLUMNS: &str =
    "t.id, t.user_id, u.name, t.name, t.created, t.expires, t.revoked";
pub(crate) const TOKEN_COLUMN_COUNT: usize = 7;
/// [`USER_COLUMNS`] of the token's owner `u`, read after [`TOKEN_COLUMNS`].
pub(crate) const OWNER_COLUMNS: &str =
    "u.id, u.name, u.password_hash, u.role, u.domain, u.disabled, u.any_domain, u.created";

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub password_hash: Option<String>,
    pub role: Role,
    pub domain: String,
    pub disabled: bool,
    /// A writer granted to ingest into any domain.
    pub any_domain: bool,
    pub created: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewUser {
    pub name: String,
    pub password_hash: Option<String>,
    pub role: Role,
    pub domain: String,
    pub any_domain: bool,
}

/// A change to an account; `None` keeps the field.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UserUpdate {
    pub password_hash: Option<String>,
    pub role: Option<Role>,
    pub domain: Option<String>,
    pub disabled: Option<bool>,
    pub any_domain: Option<bool>,
}

impl UserUpdate {
    /// Applies the change to the account as read (every store writes the result back).
    pub fn apply_to(self, user: &mut User) {
        if let Some(hash) = self.password_hash {
            user.password_hash = Some(hash);
        }
        if let Some(role) = self.role {
            user.role = role;
        }
        if let Some(domain) = self.domain {
            user.domain = domain;
        }
        if let Some(disabled) = self.disabled {
            user.disabled = disabled;
        }
        if let Some(any) = self.any_domain {
            user.any_domain = any;
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub id: i64,
    pub user_id: i64,
    pub user_name: String,
    pub name: Option<String>,
    pub created: Timestamp,
    pub expires: Option<Timestamp>,
    pub revoked: bool,
}

impl Token {
    pub fn is_usable(&self, now: Timestamp) -> bool {
        !self.revoked && self.expires.is_none_or(|e| e > now)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub user_id: i64,
    pub created: Timestamp,
    pub expires: Timestamp,
}

#[async_trait]
pub trait AccountStore: Send + Sync {
    async fn create_user(&self, user: NewUser) -> Result<User>;
    async fn user_by_name(&self, name: &str) -> Result<Option<User>>;
    async fn user_by_id(&self, id: i64) -> Result<Option<User>>;
    async fn list_users(&self) -> Result<Vec<User>>;
    /// The accounts of `domain`, by name, at most `limit` of them.
    async fn users_in_domain(&self, domain: &str, limit: u64) -> Result<Vec<User>>;
    async fn update_user(&self, name: &str, update: UserUpdate) -> Result<User>;
    async fn count_users(&self) -> Result<u64>;

    /// Registers a token by the SHA-256 hex digest of its secret.
    async fn create_token(
        &self,
        user_id: i64,
        name: Option<String>,
        digest: String,
        expires: Option<Timestamp>,
    ) -> Result<Token>;
    /// The token with that digest and the account it belongs to, in one lookup:
    /// every request authenticated by a token asks this.
    async fn token_by_digest(&self, digest: &str) -> Result<Option<(Token, User)>>;
    async fn list_tokens(&self) -> Result<Vec<Token>>;
    /// Returns whether a token with that id existed (revoking twice is harmless).
    async fn revoke_token(&self, id: i64) -> Result<bool>;

    async fn create_session(&self, digest: String, user_id: i64, expires: Timestamp) -> Result<()>;
    async fn session_by_digest(&self, digest: &str) -> Result<Option<Session>>;
    async fn delete_session(&self, digest: &str) -> Result<()>;
}
