//! The Ed25519 signing key: generated on first start into a file (base64 of the 32
//! secret bytes, readable by the owner only) or read from one given with
//! `--signing-key`, so it can live outside the data directory.

use base64::Engine;
use ed25519_dalek::{SigningKey, VerifyingKey};
use rand::RngCore;
use std::io::Write;
use std::path::Path;

pub fn generate() -> SigningKey {
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    SigningKey::from_bytes(&seed)
}

pub fn public_base64(key: &VerifyingKey) -> String {
    base64::engine::general_purpose::STANDARD.encode(key.as_bytes())
}

/// The public key from base64 of its 32 bytes.
pub fn parse_public(text: &str) -> Option<VerifyingKey> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()?;
    VerifyingKey::from_bytes(&<[u8; 32]>::try_from(bytes).ok()?).ok()
}

/// Reads the key in `path`; with `create`, generates it there if the file does not
/// exist yet.
pub fn load(path: &Path, create: bool) -> anyhow::Result<SigningKey> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|_| {
                    anyhow::anyhow!("{} is not base64 of a 32-byte key", path.display())
                })?;
            let seed = <[u8; 32]>::try_from(bytes)
                .map_err(|_| anyhow::anyhow!("{} does not hold 32 bytes", path.display()))?;
            Ok(SigningKey::from_bytes(&seed))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
            let key = generate();
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut file = options
                .open(path)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", path.display()))?;
            let encoded = base64::engine::general_purpose::STANDARD.encode(key.to_bytes());
            writeln!(file, "{encoded}")?;
            file.sync_all()?;
            tracing::info!(path = %path.display(), "generated the checkpoint signing key");
            Ok(key)
        }
        Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
    }
}
