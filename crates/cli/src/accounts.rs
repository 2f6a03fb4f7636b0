//! `logbook user ...` and `logbook token ...`: account administration straight on
//! the store, so it works before the first start and beside a running server.

use crate::store::{self, StoreArgs};
use clap::Subcommand;
use logbook_core::time::parse_duration;
use logbook_core::{Role, Timestamp};
use logbook_server::auth::secrets;
use logbook_store::accounts::UserUpdate;
use logbook_store::NewUser;

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create an account. The password comes from LOGBOOK_PASSWORD or a prompt.
    Add {
        name: String,
        /// admin, auditor, user or writer.
        #[arg(long, default_value = "user")]
        role: String,
        /// The tenant the account belongs to.
        #[arg(long, default_value = "default")]
        domain: String,
        /// Let a writer ingest into any domain.
        #[arg(long)]
        any_domain: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List accounts.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Set an account's password (from LOGBOOK_PASSWORD or a prompt).
    Passwd {
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Disable an account: its sessions end and its tokens stop working.
    Disable {
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create an API token and print it (only it) on stdout. It is shown once.
    Create {
        #[arg(long)]
        user: String,
        /// A label to recognise the token by.
        #[arg(long)]
        name: Option<String>,
        /// Lifetime such as 30d, 12h or 1w; no expiry when absent.
        #[arg(long)]
        expires: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List tokens (never their secrets).
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Revoke a token by id; it is refused at once.
    Revoke {
        id: i64,
        #[command(flatten)]
        store: StoreArgs,
    },
}

pub async fn user(command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Add {
            name,
            role,
            domain,
            any_domain,
            store,
        } => {
            let role = Role::parse(&role).ok_or_else(|| {
                anyhow::anyhow!("unknown role {role:?} (admin, auditor, user, writer)")
            })?;
            let store = store::open(&store).await?;
            let password = read_password(&format!("Password for {name}: "))?;
            let user = store
                .create_user(NewUser {
                    name,
                    password_hash: Some(secrets::hash_password(&password)?),
                    role,
                    domain,
                    any_domain,
                })
                .await?;
            eprintln!(
                "created {} ({}, domain {})",
                user.name, user.role, user.domain
            );
        }
        UserCommand::List { store } => {
            let store = store::open(&store).await?;
            println!("{:<24} {:<8} {:<20} STATUS", "NAME", "ROLE", "DOMAIN");
            for u in store.list_users().await? {
                let status = if u.disabled { "disabled" } else { "active" };
                println!(
                    "{:<24} {:<8} {:<20} {status}",
                    u.name,
                    u.role.name(),
                    u.domain
                );
            }
        }
        UserCommand::Passwd { name, store } => {
            let store = store::open(&store).await?;
            let password = read_password(&format!("New password for {name}: "))?;
            let update = UserUpdate {
                password_hash: Some(secrets::hash_password(&password)?),
                ..UserUpdate::default()
            };
            store
                .update_user(&name, update)
                .await
                .map_err(|e| not_found(e, &name))?;
            eprintln!("password changed for {name}");
        }
        UserCommand::Disable { name, store } => {
            let store = store::open(&store).await?;
            let update = UserUpdate {
                disabled: Some(true),
                ..UserUpdate::default()
            };
            store
                .update_user(&name, update)
                .await
                .map_err(|e| not_found(e, &name))?;
            eprintln!("disabled {name}");
        }
    }
    Ok(())
}

pub async fn token(command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create {
            user,
            name,
            expires,
            store,
        } => {
            let expires = expires
                .map(|text| {
                    parse_duration(&text)
                        .map(|d| Timestamp(Timestamp::now().micros() + d.as_micros() as i64))
                        .ok_or_else(|| {
                            anyhow::anyhow!("--expires {text:?} is not a duration like 30d or 12h")
                        })
                })
                .transpose()?;
            let store = store::open(&store).await?;
            let account = store
                .user_by_name(&user)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no user named {user:?}"))?;
            let secret = secrets::new_token();
            let token = store
                .create_token(account.id, name, secrets::digest(&secret), expires)
                .await?;
            eprintln!(
                "token {} created for {user}; it is shown only now:",
                token.id
            );
            println!("{secret}");
        }
        TokenCommand::List { store } => {
            let store = store::open(&store).await?;
            println!(
                "{:<6} {:<20} {:<24} {:<28} STATUS",
                "ID", "USER", "NAME", "EXPIRES"
            );
            let now = Timestamp::now();
            for t in store.list_tokens().await? {
                let expires = t
                    .expires
                    .map(|e| e.rfc3339())
                    .unwrap_or_else(|| "never".into());
                let status = if t.revoked {
                    "revoked"
                } else if !t.is_usable(now) {
                    "expired"
                } else {
                    "active"
                };
                let name = t.name.clone().unwrap_or_default();
                println!(
                    "{:<6} {:<20} {:<24} {:<28} {status}",
                    t.id, t.user_name, name, expires
                );
            }
        }
        TokenCommand::Revoke { id, store } => {
            let store = store::open(&store).await?;
            if !store.revoke_token(id).await? {
                anyhow::bail!("no token with id {id}");
            }
            eprintln!("token {id} revoked");
        }
    }
    Ok(())
}

fn read_password(prompt: &str) -> anyhow::Result<String> {
    let password = match std::env::var("LOGBOOK_PASSWORD") {
        Ok(p) => p,
        Err(_) => rpassword::prompt_password(prompt).map_err(|e| {
            anyhow::anyhow!("set LOGBOOK_PASSWORD or run in a terminal to be prompted ({e})")
        })?,
    };
    if password.len() < 8 {
        anyhow::bail!("the password must be at least 8 characters long");
    }
    Ok(password)
}

fn not_found(e: logbook_store::StoreError, name: &str) -> anyhow::Error {
    match e {
        logbook_store::StoreError::NotFound => anyhow::anyhow!("no user named {name:?}"),
        other => other.into(),
    }
}
