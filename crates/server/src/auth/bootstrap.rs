//! The first start: with no account at all, create `admin` so the node is usable,
//! with the password from `LOGBOOK_ADMIN_PASSWORD` (else a generated one, printed
//! once) and, if `LOGBOOK_ADMIN_TOKEN` is set, that token registered for it.

use super::secrets;
use logbook_core::Role;
use logbook_store::{NewUser, Store, StoreError};

pub(super) const ADMIN_NAME: &str = "admin";
pub const DEFAULT_DOMAIN: &str = "default";

#[derive(Debug, Default, Clone)]
pub struct Bootstrap {
    pub admin_password: Option<String>,
    pub admin_token: Option<String>,
}

/// Returns the generated password when one had to be made (to print once).
pub async fn ensure_admin(
    store: &dyn Store,
    settings: &Bootstrap,
) -> anyhow::Result<Option<String>> {
    let mut generated = None;
    let admin = match store.user_by_name(ADMIN_NAME).await? {
        Some(admin) => admin,
        None if store.count_users().await? == 0 => {
            let password = match &settings.admin_password {
                Some(p) if !p.is_empty() => p.clone(),
                _ => {
                    let p = secrets::new_token()[secrets::TOKEN_PREFIX.len()..][..24].to_string();
                    generated = Some(p.clone());
                    p
                }
            };
            let created = store
                .create_user(NewUser {
                    name: ADMIN_NAME.into(),
                    password_hash: Some(secrets::hash_password(&password)?),
                    role: Role::Admin,
                    domain: DEFAULT_DOMAIN.into(),
                    any_domain: true,
                })
                .await;
            match created {
                Ok(admin) => admin,
                // Another node sharing the database created it first: use theirs.
                Err(StoreError::Exists { .. }) => {
                    generated = None;
                    store
                        .user_by_name(ADMIN_NAME)
                        .await?
                        .ok_or_else(|| anyhow::anyhow!("the admin account vanished at start"))?
                }
                Err(e) => return Err(e.into()),
            }
        }
        None => return Ok(None),
    };
    if let Some(token) = settings.admin_token.as_deref().filter(|t| !t.is_empty()) {
        let digest = secrets::digest(token);
        if store.token_by_digest(&digest).await?.is_none() {
            let created = store
                .create_token(admin.id, Some("LOGBOOK_ADMIN_TOKEN".into()), digest, None)
                .await;
            // Exists: another node registered the same token at the same moment.
            if let Err(e) = created {
                if !matches!(e, StoreError::Exists { .. }) {
                    return Err(e.into());
                }
            }
        }
    }
    Ok(generated)
}
