//! Accounts, tokens and sessions in PostgreSQL: every node reads the same tables,
//! so a token or a session made through one node works on all. Lookups go through
//! the node's [`AuthCache`](super::auth_cache::AuthCache); every change that takes
//! a way in away notifies all nodes in its transaction.

use super::PostgresStore;
use crate::accounts::{
    AccountStore, NewUser, Session, Token, User, UserUpdate, OWNER_COLUMNS, TOKEN_COLUMNS,
    TOKEN_COLUMN_COUNT, USER_COLUMNS,
};
use crate::{Result, StoreError};
use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use logbook_core::{Role, Timestamp};
use tokio_postgres::types::ToSql;

#[async_trait]
impl AccountStore for PostgresStore {
    async fn create_user(&self, user: NewUser) -> Result<User> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                &format!(
                    "INSERT INTO users (name, password_hash, role, domain, any_domain, created) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO NOTHING \
                     RETURNING {USER_COLUMNS}"
                ),
                &[
                    &user.name,
                    &user.password_hash,
                    &user.role.name(),
                    &user.domain,
                    &user.any_domain,
                    &Timestamp::now().micros(),
                ],
            )
            .await?;
        match row {
            Some(row) => read_user(&row),
            None => Err(StoreError::Exists {
                what: format!("user {:?}", user.name),
            }),
        }
    }

    async fn user_by_name(&self, name: &str) -> Result<Option<User>> {
        let client = self.pool.get().await?;
        user_where(&client, "name = $1", &name).await
    }

    async fn user_by_id(&self, id: i64) -> Result<Option<User>> {
        // Asked on every request authenticated by a session.
        if let Some(found) = self.auth.user(id).await {
            return Ok(Some(found));
        }
        let generation = self.auth.generation();
        let client = self.pool.get().await?;
        let found = user_where(&client, "id = $1", &id).await?;
        if let Some(found) = &found {
            self.auth.fill_user(generation, found);
        }
        Ok(found)
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &format!("SELECT {USER_COLUMNS} FROM users ORDER BY name"),
                &[],
            )
            .await?;
        rows.iter().map(read_user).collect()
    }

    async fn users_in_domain(&self, domain: &str, limit: u64) -> Result<Vec<User>> {
        let client = self.pool.get().await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = client
            .query(
                &format!(
                    "SELECT {USER_COLUMNS} FROM users WHERE domain = $1 ORDER BY name LIMIT $2"
                ),
                &[&domain, &limit],
            )
            .await?;
        rows.iter().map(read_user).collect()
    }

    async fn update_user(&self, name: &str, update: UserUpdate) -> Result<User> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let row = tx
            .query_opt(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE name = $1 FOR UPDATE"),
                &[&name],
            )
            .await?
            .ok_or(StoreError::NotFound)?;
        let mut user = read_user(&row)?;
        update.apply_to(&mut user);
        tx.execute(
            "UPDATE users SET password_hash = $1, role = $2, domain = $3, disabled = $4, \
             any_domain = $5 WHERE id = $6",
            &[
                &user.password_hash,
                &user.role.name(),
                &user.domain,
                &user.disabled,
                &user.any_domain,
                &user.id,
            ],
        )
        .await?;
        if user.disabled {
            // A disabled account keeps no way in.
            tx.execute("DELETE FROM sessions WHERE user_id = $1", &[&user.id])
                .await?;
        }
        self.notify_auth(&tx).await?;
        tx.commit().await?;
        self.auth.invalidate();
        Ok(user)
    }

    async fn count_users(&self) -> Result<u64> {
        let client = self.pool.get().await?;
        let n: i64 = client
            .query_one("SELECT count(*) FROM users", &[])
            .await?
            .get(0);
        Ok(n.max(0) as u64)
    }

    async fn create_token(
        &self,
        user_id: i64,
        name: Option<String>,
        digest: String,
        expires: Option<Timestamp>,
    ) -> Result<Token> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let id: i64 = tx
            .query_one(
                "INSERT INTO tokens (user_id, name, digest, created, expires) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
                &[
                    &user_id,
                    &name,
                    &digest,
                    &Timestamp::now().micros(),
                    &expires.map(Timestamp::micros),
                ],
            )
            .await?
            .get(0);
        let token = token_where(&tx, "t.id = $1", &id)
            .await?
            .ok_or_else(|| StoreError::Internal("inserted token vanished".into()))?;
        tx.commit().await?;
        Ok(token)
    }

    async fn token_by_digest(&self, digest: &str) -> Result<Option<(Token, User)>> {
        if let Some(found) = self.auth.token(digest).await {
            return Ok(Some(found));
        }
        let generation = self.auth.generation();
        let client = self.pool.get().await?;
        // Prepared once per connection: this runs on every request authenticated
        // by a token.
        let statement = client
            .prepare_cached(&format!(
                "SELECT {TOKEN_COLUMNS}, {OWNER_COLUMNS} FROM tokens t \
                 JOIN users u ON u.id = t.user_id WHERE t.digest = $1"
            ))
            .await?;
        let found = client
            .query_opt(&statement, &[&digest])
            .await?
            .map(|row| -> Result<(Token, User)> {
                Ok((read_token(&row)?, read_user_at(&row, TOKEN_COLUMN_COUNT)?))
            })
            .transpose()?;
        if let Some(found) = &found {
            self.auth.fill_token(generation, digest, found);
        }
        Ok(found)
    }

    async fn list_tokens(&self) -> Result<Vec<Token>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {TOKEN_COLUMNS} FROM tokens t JOIN users u ON u.id = t.user_id ORDER BY t.id"
                ),
                &[],
            )
            .await?;
        rows.iter().map(read_token).collect()
    }

    async fn revoke_token(&self, id: i64) -> Result<bool> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let existed = tx
            .execute("UPDATE tokens SET revoked = true WHERE id = $1", &[&id])
            .await?
            > 0;
        self.notify_auth(&tx).await?;
        tx.commit().await?;
        self.auth.invalidate();
        Ok(existed)
    }

    async fn create_session(&self, digest: String, user_id: i64, expires: Timestamp) -> Result<()> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let now = Timestamp::now().micros();
        // Expired sessions are swept here so the table stays small.
        tx.execute("DELETE FROM sessions WHERE expires < $1", &[&now])
            .await?;
        tx.execute(
            "INSERT INTO sessions (digest, user_id, created, expires) VALUES ($1, $2, $3, $4)",
            &[&digest, &user_id, &now, &expires.micros()],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn session_by_digest(&self, digest: &str) -> Result<Option<Session>> {
        if let Some(found) = self.auth.session(digest).await {
            return Ok(Some(found));
        }
        let generation = self.auth.generation();
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT user_id, created, expires FROM sessions WHERE digest = $1",
                &[&digest],
            )
            .await?;
        let found = row
            .map(|r| -> Result<Session> {
                Ok(Session {
                    user_id: r.try_get(0)?,
                    created: Timestamp(r.try_get(1)?),
                    expires: Timestamp(r.try_get(2)?),
                })
            })
            .transpose()?;
        if let Some(found) = &found {
            self.auth.fill_session(generation, digest, found);
        }
        Ok(found)
    }

    async fn delete_session(&self, digest: &str) -> Result<()> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute("DELETE FROM sessions WHERE digest = $1", &[&digest])
            .await?;
        self.notify_auth(&tx).await?;
        tx.commit().await?;
        self.auth.invalidate();
        Ok(())
    }
}

async fn user_where(
    client: &impl GenericClient,
    clause: &str,
    param: &(dyn ToSql + Sync),
) -> Result<Option<User>> {
    client
        .query_opt(
            &format!("SELECT {USER_COLUMNS} FROM users WHERE {clause}"),
            &[param],
        )
        .await?
        .map(|row| read_user(&row))
        .transpose()
}

fn read_user(row: &tokio_postgres::Row) -> Result<User> {
    read_user_at(row, 0)
}

/// Reads [`USER_COLUMNS`] starting at column `at`.
fn read_user_at(row: &tokio_postgres::Row, at: usize) -> Result<User> {
    let role: String = row.try_get(at + 3)?;
    let role = Role::parse(&role)
        .ok_or_else(|| StoreError::Internal(format!("user has unknown role {role:?}")))?;
    Ok(User {
        id: row.try_get(at)?,
        name: row.try_get(at + 1)?,
        password_hash: row.try_get(at + 2)?,
        role,
        domain: row.try_get(at + 4)?,
        disabled: row.try_get(at + 5)?,
        any_domain: row.try_get(at + 6)?,
        created: Timestamp(row.try_get(at + 7)?),
    })
}

async fn token_where(
    client: &impl GenericClient,
    clause: &str,
    param: &(dyn ToSql + Sync),
) -> Result<Option<Token>> {
    client
        .query_opt(
            &format!(
                "SELECT {TOKEN_COLUMNS} FROM tokens t JOIN users u ON u.id = t.user_id WHERE {clause}"
            ),
            &[param],
        )
        .await?
        .map(|row| read_token(&row))
        .transpose()
}

fn read_token(row: &tokio_postgres::Row) -> Result<Token> {
    Ok(Token {
        id: row.try_get(0)?,
        user_id: row.try_get(1)?,
        user_name: row.try_get(2)?,
        name: row.try_get(3)?,
        created: Timestamp(row.try_get(4)?),
        expires: row.try_get::<_, Option<i64>>(5)?.map(Timestamp),
        revoked: row.try_get(6)?,
    })
}

impl PostgresStore {
    /// Tells every node, when `tx` commits, to forget cached authentication.
    async fn notify_auth(&self, tx: &deadpool_postgres::Transaction<'_>) -> Result<()> {
        self.notify(tx, serde_json::json!({"k": "auth"})).await
    }
}
