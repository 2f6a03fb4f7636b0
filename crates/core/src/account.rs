//! Roles and what each may do. The server authenticates; these rules decide.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Everything, in every domain.
    Admin,
    /// Reads every domain, writes nothing.
    Auditor,
    /// Reads its own domain.
    User,
    /// A service account: ingests into its own domain (or any, if granted) and
    /// records journal entries on behalf of users.
    Writer,
}

impl Role {
    pub fn parse(text: &str) -> Option<Role> {
        match text.trim().to_ascii_lowercase().as_str() {
            "admin" => Some(Role::Admin),
            "auditor" => Some(Role::Auditor),
            "user" => Some(Role::User),
            "writer" => Some(Role::Writer),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Auditor => "auditor",
            Role::User => "user",
            Role::Writer => "writer",
        }
    }

    pub fn reads_every_domain(self) -> bool {
        matches!(self, Role::Admin | Role::Auditor)
    }

    pub fn may_write(self) -> bool {
        matches!(self, Role::Admin | Role::Writer)
    }

    /// Whether the role may record its own actions in the journal (a dashboard writes
    /// what a user did with that user's token). Auditors stay read-only.
    pub fn may_journal_own_actions(self) -> bool {
        !matches!(self, Role::Auditor)
    }

    pub fn may_act_for_others(self) -> bool {
        matches!(self, Role::Admin | Role::Writer)
    }

    pub fn is_admin(self) -> bool {
        self == Role::Admin
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
