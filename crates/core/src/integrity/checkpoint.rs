//! Signed checkpoints: the tree's size and root at an instant, with the digest of the
//! checkpoint before it, signed with Ed25519 over the RFC 8785 form. A chain of them
//! kept outside the store is what makes cutting off the newest records detectable.

use super::merkle::{from_hex, to_hex, Hash};
use crate::error::FieldError;
use crate::time::Timestamp;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub tree_size: u64,
    pub root_hash: Hash,
    pub ts: Timestamp,
    /// SHA-256 of the previous checkpoint's canonical form; `None` for the first.
    pub previous: Option<Hash>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    pub checkpoint: Checkpoint,
    pub signature: [u8; 64],
}

impl Checkpoint {
    pub fn to_json(&self) -> Value {
        json!({
            "tree_size": self.tree_size,
            "root_hash": to_hex(&self.root_hash),
            "ts": self.ts.rfc3339(),
            "previous": self.previous.as_ref().map(to_hex),
        })
    }

    /// What is signed and what the next checkpoint's `previous` hashes.
    pub fn canonical_form(&self) -> Vec<u8> {
        serde_json_canonicalizer::to_vec(&self.to_json()).unwrap_or_default()
    }

    pub fn digest(&self) -> Hash {
        Sha256::digest(self.canonical_form()).into()
    }

    pub fn sign(self, key: &SigningKey) -> SignedCheckpoint {
        let signature = key.sign(&self.canonical_form()).to_bytes();
        SignedCheckpoint {
            checkpoint: self,
            signature,
        }
    }

    pub fn from_json(value: &Value) -> Result<Checkpoint, FieldError> {
        let hash = |name: &str| -> Result<Option<Hash>, FieldError> {
            match value.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(text)) => from_hex(text)
                    .map(Some)
                    .ok_or_else(|| FieldError::new(name, "is not 64 hex digits")),
                Some(_) => Err(FieldError::new(name, "must be a hex string")),
            }
        };
        Ok(Checkpoint {
            tree_size: value
                .get("tree_size")
                .and_then(Value::as_u64)
                .ok_or_else(|| FieldError::new("tree_size", "must be a non-negative integer"))?,
            root_hash: hash("root_hash")?
                .ok_or_else(|| FieldError::new("root_hash", "is required"))?,
            ts: value
                .get("ts")
                .and_then(Value::as_str)
                .and_then(Timestamp::parse)
                .ok_or_else(|| FieldError::new("ts", "must be an RFC 3339 timestamp"))?,
            previous: hash("previous")?,
        })
    }
}

impl SignedCheckpoint {
    /// The checkpoint's fields plus `signature` (base64 of the 64 raw bytes).
    pub fn to_json(&self) -> Value {
        let mut value = self.checkpoint.to_json();
        value["signature"] =
            Value::from(base64::engine::general_purpose::STANDARD.encode(self.signature));
        value
    }

    pub fn from_json(value: &Value) -> Result<SignedCheckpoint, FieldError> {
        let checkpoint = Checkpoint::from_json(value)?;
        let signature = value
            .get("signature")
            .and_then(Value::as_str)
            .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
            .and_then(|bytes| <[u8; 64]>::try_from(bytes).ok())
            .ok_or_else(|| FieldError::new("signature", "must be base64 of 64 bytes"))?;
        Ok(SignedCheckpoint {
            checkpoint,
            signature,
        })
    }

    pub fn verify(&self, key: &VerifyingKey) -> bool {
        key.verify(
            &self.checkpoint.canonical_form(),
            &Signature::from_bytes(&self.signature),
        )
        .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_checkpoint_round_trips_and_verifies_only_unchanged() {
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let first = Checkpoint {
            tree_size: 3,
            root_hash: [1; 32],
            ts: Timestamp(1_000_000),
            previous: None,
        };
        let second = Checkpoint {
            tree_size: 5,
            root_hash: [2; 32],
            ts: Timestamp(2_000_000),
            previous: Some(first.digest()),
        }
        .sign(&key);
        let parsed = SignedCheckpoint::from_json(&second.to_json()).expect("parses");
        assert_eq!(parsed, second);
        assert!(parsed.verify(&key.verifying_key()));
        let mut forged = parsed.clone();
        forged.checkpoint.tree_size = 4;
        assert!(!forged.verify(&key.verifying_key()));
        assert!(!parsed.verify(&SigningKey::from_bytes(&[8u8; 32]).verifying_key()));
        assert_eq!(
            String::from_utf8(first.canonical_form()).expect("utf-8"),
            format!(
                "{{\"previous\":null,\"root_hash\":\"{}\",\"tree_size\":3,\"ts\":\"1970-01-01T00:00:01.000000Z\"}}",
                "01".repeat(32)
            )
        );
    }
}
