//! Tamper evidence on a node (docs/integrity.md): the signing key, the tree's
//! subtree roots cached for proofs, signed checkpoints (periodic and at shutdown,
//! copied to a directory if asked) and retention. The leaves themselves are
//! written by the store in the transaction of each append.

pub mod checkpoints;
pub mod key;
pub mod retention;
pub mod tree;

use ed25519_dalek::SigningKey;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

/// How a node signs and keeps checkpoints and applies retention.
#[derive(Debug, Clone)]
pub struct IntegrityConfig {
    /// Also write every checkpoint as a file here (another disk or machine).
    pub checkpoint_dir: Option<PathBuf>,
    /// How often a checkpoint is signed when anything changed.
    pub checkpoint_interval: Duration,
    pub retention: retention::Policy,
}

impl Default for IntegrityConfig {
    fn default() -> Self {
        IntegrityConfig {
            checkpoint_dir: None,
            checkpoint_interval: Duration::from_secs(60),
            retention: retention::Policy::default(),
        }
    }
}

/// A node's integrity state.
pub struct Integrity {
    pub key: SigningKey,
    pub config: IntegrityConfig,
    pub tree: tree::Tree,
    /// What the admin status shows: the last retention run.
    pub last_retention: Mutex<Option<Value>>,
}

impl std::fmt::Debug for Integrity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Integrity")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Integrity {
    pub fn new(key: SigningKey, config: IntegrityConfig) -> Integrity {
        Integrity {
            key,
            config,
            tree: tree::Tree::default(),
            last_retention: Mutex::new(None),
        }
    }

    /// With a key that lives only in memory (tests, tools that sign nothing kept).
    pub fn ephemeral() -> Integrity {
        Integrity::new(key::generate(), IntegrityConfig::default())
    }

    /// The public key in the shape `GET /logbook/v1/integrity/key` answers.
    pub fn public_key_json(&self) -> Value {
        serde_json::json!({
            "algorithm": "ed25519",
            "public_key": key::public_base64(&self.key.verifying_key()),
        })
    }
}
