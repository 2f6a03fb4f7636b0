//! `logbook user ...` and `logbook token ...`: account administration straight on
//! the store, so it works before the first start and beside a running server.

use crate::store::{self, StoreArgs};
use clap::Subcommand;
use logbook_core::{Role, Timestamp};
use logbook_server::auth::audit::{self, actions, SecurityEvent};
use logbook_server::auth::secrets;
use logbook_server::auth::tokens::{self, Issuer};
use logbook_server::native::accounts::{valid_name, MIN_PASSWORD_CHARS};
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
            let name = valid_name(name).map_err(|e| anyhow::anyhow!(e.describe()))?;
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
            let message = format!(
                "User {:?} created with role {} in domain {:?}.",
                user.name, user.role, user.domain
            );
            journal_cli(store.as_ref(), actions::USER_CREATE, &user, message).await;
            eprintln!(
                "created {} ({}, domain {})",
                user.name, user.role, user.domain
            );
        }
        UserCommand::List { store } => {
            let store = store::open(&store).await?;
            println!(
                "{:<24} {:<8} {:<20} {:<10} STATUS",
                "NAME", "ROLE", "DOMAIN", "ANY_DOMAIN"
            );
            for u in store.list_users().await? {
                let status = if u.disabled { "disabled" } else { "active" };
                let any = if u.any_domain { "yes" } else { "no" };
                println!(
                    "{:<24} {:<8} {:<20} {:<10} {status}",
                    u.name,
                    u.role.name(),
                    u.domain,
                    any
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
            let user = store
                .update_user(&name, update)
                .await
                .map_err(|e| not_found(e, &name))?;
            let message = format!("User {name:?} changed: password.");
            journal_cli(store.as_ref(), actions::USER_UPDATE, &user, message).await;
            eprintln!("password changed for {name}");
        }
        UserCommand::Disable { name, store } => {
            let store = store::open(&store).await?;
            let update = UserUpdate {
                disabled: Some(true),
                ..UserUpdate::default()
            };
            let user = store
                .update_user(&name, update)
                .await
                .map_err(|e| not_found(e, &name))?;
            let message = format!("User {name:?} changed: disabled.");
            journal_cli(store.as_ref(), actions::USER_UPDATE, &user, message).await;
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
                    tokens::parse_expiry(&text, Timestamp::now()).ok_or_else(|| {
                        anyhow::anyhow!(
                            "--expires {text:?} is not a lifetime like 30d or 12h, nor a future RFC 3339 time"
                        )
                    })
                })
                .transpose()?;
            let store = store::open(&store).await?;
            let account = store
                .user_by_name(&user)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no user named {user:?}"))?;
            let (secret, token) =
                tokens::issue(store.as_ref(), &Issuer::cli(), &account, name, expires).await?;
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
                let status = tokens::state(&t, now);
                let name = t.name.clone().unwrap_or_default();
                println!(
                    "{:<6} {:<20} {:<24} {:<28} {status}",
                    t.id, t.user_name, name, expires
                );
            }
        }
        TokenCommand::Revoke { id, store } => {
            let store = store::open(&store).await?;
            let token = store
                .list_tokens()
                .await?
                .into_iter()
                .find(|t| t.id == id)
                .ok_or_else(|| anyhow::anyhow!("no token with id {id}"))?;
            tokens::revoke(store.as_ref(), &Issuer::cli(), &token).await?;
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
    if password.chars().count() < MIN_PASSWORD_CHARS {
        anyhow::bail!("the password must be at least {MIN_PASSWORD_CHARS} characters long");
    }
    Ok(password)
}

/// Account changes made on the command line are journaled like those of the API,
/// attributed to `cli` and filed in the account's domain.
async fn journal_cli(
    store: &dyn logbook_store::Store,
    action: &'static str,
    user: &logbook_store::User,
    message: String,
) {
    let mut event = SecurityEvent::new(action, "success", "cli")
        .about("user", user.name.clone())
        .message(message);
    event.domain = Some(user.domain.clone());
    audit::journal(store, event).await;
}

fn not_found(e: logbook_store::StoreError, name: &str) -> anyhow::Error {
    match e {
        logbook_store::StoreError::NotFound => anyhow::anyhow!("no user named {name:?}"),
        other => other.into(),
    }
}
