//! The security audit trail: logins, failed logins, logouts, token creation and
//! revocation, and account changes are journal records like any other, so the
//! people who audit the platform audit Logbook's own access with the same tools.
//! Written straight to the store (not through `ingest::append`): an auditor's login
//! is recorded although an auditor cannot write, and the CLI has no principal.

use super::Principal;
use logbook_core::{Kind, Level, NewRecord};
use logbook_store::Store;
use serde_json::{json, Map};
use std::net::IpAddr;

/// Journal `action` names of the security events.
pub mod actions {
    pub const LOGIN: &str = "dashboard.user.login";
    pub const LOGOUT: &str = "dashboard.user.logout";
    pub const TOKEN_CREATE: &str = "logbook.token.create";
    pub const TOKEN_REVOKE: &str = "logbook.token.revoke";
    pub const USER_CREATE: &str = "logbook.user.create";
    pub const USER_UPDATE: &str = "logbook.user.update";
}

#[derive(Debug, Clone)]
pub struct SecurityEvent {
    pub action: &'static str,
    /// `success` or `failure`.
    pub status: &'static str,
    pub object_type: &'static str,
    pub object_id: String,
    pub message: String,
    /// Who acted (or tried to): a login name, or `cli` for the command line.
    pub user: String,
    pub user_id: Option<String>,
    /// The domain the record belongs to, so a tenant's own events stay in it.
    pub domain: Option<String>,
    pub client: Option<IpAddr>,
    /// Free-form details (never secrets).
    pub details: Map<String, serde_json::Value>,
}

impl SecurityEvent {
    pub fn new(action: &'static str, status: &'static str, user: &str) -> SecurityEvent {
        SecurityEvent {
            action,
            status,
            object_type: "user",
            object_id: user.to_string(),
            message: String::new(),
            user: user.to_string(),
            user_id: None,
            domain: None,
            client: None,
            details: Map::new(),
        }
    }

    /// An event done by `principal`, filed in its domain.
    pub fn by(action: &'static str, principal: &Principal) -> SecurityEvent {
        SecurityEvent {
            user_id: Some(principal.user_id.to_string()),
            domain: Some(principal.domain.clone()),
            ..SecurityEvent::new(action, "success", &principal.name)
        }
    }

    pub fn about(mut self, object_type: &'static str, object_id: impl Into<String>) -> Self {
        self.object_type = object_type;
        self.object_id = object_id.into();
        self
    }

    /// Files the event in `domain` (that of the account concerned).
    pub fn in_domain(mut self, domain: &str) -> Self {
        self.domain = Some(domain.to_string());
        self
    }

    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }

    pub fn from_client(mut self, client: Option<IpAddr>) -> Self {
        self.client = client;
        self
    }

    pub fn detail(mut self, key: &str, value: serde_json::Value) -> Self {
        self.details.insert(key.to_string(), value);
        self
    }

    fn into_record(self) -> NewRecord {
        let mut record = NewRecord::new(Kind::Journal);
        record.level = Some(if self.status == "success" {
            Level::Info
        } else {
            Level::Warn
        });
        record.category = Some("security".into());
        record.source = Some("logbook".into());
        record.action = Some(self.action.into());
        record.status = Some(self.status.into());
        record.object_type = Some(self.object_type.into());
        record.object_id = Some(self.object_id);
        record.user = Some(self.user);
        record.user_id = self.user_id;
        record.domain_id = self.domain;
        record.message = Some(self.message);
        let mut data = self.details;
        if let Some(ip) = self.client {
            data.insert("client_address".into(), json!(ip.to_string()));
        }
        record.data = (!data.is_empty()).then_some(data);
        record
    }
}

/// Appends the event. A failure to record is logged, not fatal: the operation
/// itself already succeeded or failed on its own terms.
pub async fn journal(store: &dyn Store, event: SecurityEvent) {
    let action = event.action;
    if let Err(e) = store.append(vec![event.into_record()]).await {
        tracing::warn!(error = %e, action, "could not journal a security event");
    }
}
