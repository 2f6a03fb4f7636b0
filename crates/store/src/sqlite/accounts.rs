//! Accounts, tokens and sessions in SQLite.

use super::SqliteStore;
use crate::accounts::{
    AccountStore, NewUser, Session, Token, User, UserUpdate, OWNER_COLUMNS, TOKEN_COLUMNS,
    TOKEN_COLUMN_COUNT, USER_COLUMNS,
};
use crate::{Result, StoreError};
use async_trait::async_trait;
use logbook_core::{Role, Timestamp};
use rusqlite::{Connection, OptionalExtension};

#[async_trait]
impl AccountStore for SqliteStore {
    async fn create_user(&self, user: NewUser) -> Result<User> {
        self.writer
            .write(move |conn, _| {
                let exists: bool = conn.query_row(
                    "SELECT EXISTS (SELECT 1 FROM users WHERE name = ?1)",
                    [&user.name],
                    |r| r.get(0),
                )?;
                if exists {
                    return Err(StoreError::Exists {
                        what: format!("user {:?}", user.name),
                    });
                }
                conn.execute(
                    "INSERT INTO users (name, password_hash, role, domain, any_domain, created) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    rusqlite::params![
                        user.name,
                        user.password_hash,
                        user.role.name(),
                        user.domain,
                        user.any_domain,
                        Timestamp::now().micros()
                    ],
                )?;
                user_where(conn, "id = ?1", conn.last_insert_rowid())?
                    .ok_or_else(|| StoreError::Internal("inserted user vanished".into()))
            })
            .await
    }

    async fn user_by_name(&self, name: &str) -> Result<Option<User>> {
        let name = name.to_string();
        self.readers
            .read(move |conn| user_where(conn, "name = ?1", name))
            .await
    }

    async fn user_by_id(&self, id: i64) -> Result<Option<User>> {
        self.readers
            .read(move |conn| user_where(conn, "id = ?1", id))
            .await
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        self.readers
            .read(|conn| {
                let mut stmt =
                    conn.prepare(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY name"))?;
                let rows = stmt.query_map([], read_user)?;
                let mut users = Vec::new();
                for row in rows {
                    users.push(row??);
                }
                Ok(users)
            })
            .await
    }

    async fn users_in_domain(&self, domain: &str, limit: u64) -> Result<Vec<User>> {
        let domain = domain.to_string();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.readers
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(&format!(
                    "SELECT {USER_COLUMNS} FROM users WHERE domain = ?1 ORDER BY name LIMIT ?2"
                ))?;
                let rows = stmt.query_map(rusqlite::params![domain, limit], read_user)?;
                let mut users = Vec::new();
                for row in rows {
                    users.push(row??);
                }
                Ok(users)
            })
            .await
    }

    async fn update_user(&self, name: &str, update: UserUpdate) -> Result<User> {
        let name = name.to_string();
        self.writer
            .write(move |conn, _| {
                let mut user = user_where(conn, "name = ?1", name.clone())?.ok_or(StoreError::NotFound)?;
                update.clone().apply_to(&mut user);
                conn.execute(
                    "UPDATE users SET password_hash = ?1, role = ?2, domain = ?3, disabled = ?4, any_domain = ?5 WHERE id = ?6",
                    rusqlite::params![user.password_hash, user.role.name(), user.domain, user.disabled, user.any_domain, user.id],
                )?;
                if user.disabled {
                    // A disabled account keeps no way in.
                    conn.execute("DELETE FROM sessions WHERE user_id = ?1", [user.id])?;
                }
                Ok(user)
            })
            .await
    }

    async fn count_users(&self) -> Result<u64> {
        self.readers
            .read(|conn| {
                Ok(conn
                    .query_row("SELECT count(*) FROM users", [], |r| r.get::<_, i64>(0))?
                    .max(0) as u64)
            })
            .await
    }

    async fn create_token(
        &self,
        user_id: i64,
        name: Option<String>,
        digest: String,
        expires: Option<Timestamp>,
    ) -> Result<Token> {
        self.writer
            .write(move |conn, _| {
                conn.execute(
                    "INSERT INTO tokens (user_id, name, digest, created, expires) VALUES (?1, ?2, ?3, ?4, ?5)",
                    rusqlite::params![user_id, name, digest, Timestamp::now().micros(), expires.map(Timestamp::micros)],
                )?;
                token_where(conn, "t.id = ?1", conn.last_insert_rowid())?
                    .ok_or_else(|| StoreError::Internal("inserted token vanished".into()))
            })
            .await
    }

    async fn token_by_digest(&self, digest: &str) -> Result<Option<(Token, User)>> {
        let digest = digest.to_string();
        self.readers
            .read(move |conn| {
                // Cached: this runs on every request authenticated by a token.
                conn.prepare_cached(&format!(
                    "SELECT {TOKEN_COLUMNS}, {OWNER_COLUMNS} FROM tokens t \
                     JOIN users u ON u.id = t.user_id WHERE t.digest = ?1"
                ))?
                .query_row([digest], |row| {
                    let token = read_token(row)?;
                    Ok(read_user_at(row, TOKEN_COLUMN_COUNT)?.map(|user| (token, user)))
                })
                .optional()?
                .transpose()
            })
            .await
    }

    async fn list_tokens(&self) -> Result<Vec<Token>> {
        self.readers
            .read(|conn| {
                let mut stmt = conn.prepare(&format!(
                    "SELECT {TOKEN_COLUMNS} FROM tokens t JOIN users u ON u.id = t.user_id ORDER BY t.id"
                ))?;
                let rows = stmt.query_map([], read_token)?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .await
    }

    async fn revoke_token(&self, id: i64) -> Result<bool> {
        self.writer
            .write(move |conn, _| {
                Ok(conn.execute("UPDATE tokens SET revoked = 1 WHERE id = ?1", [id])? > 0)
            })
            .await
    }

    async fn create_session(&self, digest: String, user_id: i64, expires: Timestamp) -> Result<()> {
        self.writer
            .write(move |conn, _| {
                let now = Timestamp::now().micros();
                // Expired sessions are swept here so the table stays small.
                conn.execute("DELETE FROM sessions WHERE expires < ?1", [now])?;
                conn.execute(
                    "INSERT INTO sessions (digest, user_id, created, expires) VALUES (?1, ?2, ?3, ?4)",
                    rusqlite::params![digest, user_id, now, expires.micros()],
                )?;
                Ok(())
            })
            .await
    }

    async fn session_by_digest(&self, digest: &str) -> Result<Option<Session>> {
        let digest = digest.to_string();
        self.readers
            .read(move |conn| {
                Ok(conn
                    .query_row(
                        "SELECT user_id, created, expires FROM sessions WHERE digest = ?1",
                        [digest],
                        |r| {
                            Ok(Session {
                                user_id: r.get(0)?,
                                created: Timestamp(r.get(1)?),
                                expires: Timestamp(r.get(2)?),
                            })
                        },
                    )
                    .optional()?)
            })
            .await
    }

    async fn delete_session(&self, digest: &str) -> Result<()> {
        let digest = digest.to_string();
        self.writer
            .write(move |conn, _| {
                conn.execute("DELETE FROM sessions WHERE digest = ?1", [&digest])?;
                Ok(())
            })
            .await
    }
}

fn user_where<P: rusqlite::ToSql>(
    conn: &Connection,
    clause: &str,
    param: P,
) -> Result<Option<User>> {
    // Cached: this runs on every authenticated request.
    conn.prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE {clause}"))?
        .query_row([param], read_user)
        .optional()?
        .transpose()
}

fn read_user(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<User>> {
    read_user_at(row, 0)
}

/// Reads [`USER_COLUMNS`] starting at column `at`.
fn read_user_at(row: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Result<User>> {
    let role: String = row.get(at + 3)?;
    let Some(role) = Role::parse(&role) else {
        return Ok(Err(StoreError::Internal(format!(
            "user has unknown role {role:?}"
        ))));
    };
    Ok(Ok(User {
        id: row.get(at)?,
        name: row.get(at + 1)?,
        password_hash: row.get(at + 2)?,
        role,
        domain: row.get(at + 4)?,
        disabled: row.get(at + 5)?,
        any_domain: row.get(at + 6)?,
        created: Timestamp(row.get(at + 7)?),
    }))
}

fn token_where<P: rusqlite::ToSql>(
    conn: &Connection,
    clause: &str,
    param: P,
) -> Result<Option<Token>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens t JOIN users u ON u.id = t.user_id WHERE {clause}"
        ))?
        .query_row([param], read_token)
        .optional()?)
}

fn read_token(row: &rusqlite::Row<'_>) -> rusqlite::Result<Token> {
    Ok(Token {
        id: row.get(0)?,
        user_id: row.get(1)?,
        user_name: row.get(2)?,
        name: row.get(3)?,
        created: Timestamp(row.get(4)?),
        expires: row.get::<_, Option<i64>>(5)?.map(Timestamp),
        revoked: row.get(6)?,
    })
}
