//! Signed checkpoints: at an interval when the tree grew, and once more at
//! shutdown. Each names the digest of the one before (a chain), is stored in the
//! store, and with a checkpoint directory also written there as a file: a copy
//! out of reach of whoever can write the database is what makes cutting off the
//! newest records (and the checkpoints with them) detectable.

use crate::state::AppState;
use logbook_core::integrity::{Checkpoint, SignedCheckpoint};
use logbook_core::Timestamp;
use logbook_store::StoreError;
use std::path::Path;

/// The setting the public key is kept under in the store.
pub const PUBLIC_KEY_SETTING: &str = "public_key";

/// Signs a checkpoint of the tree as it is now, if it grew since the newest one;
/// returns it if it was stored (`None`: nothing changed, or another node signed
/// first).
pub async fn checkpoint(state: &AppState) -> Result<Option<SignedCheckpoint>, StoreError> {
    let store = state.store.as_ref();
    let integrity = &state.integrity;
    let public = super::key::public_base64(&integrity.key.verifying_key());
    if store
        .integrity_setting(PUBLIC_KEY_SETTING)
        .await?
        .as_deref()
        != Some(public.as_str())
    {
        store
            .set_integrity_setting(PUBLIC_KEY_SETTING, &public)
            .await?;
    }
    let size = store.tree_size().await?;
    let newest = store.checkpoints(1).await?.into_iter().next();
    if newest
        .as_ref()
        .is_some_and(|n| n.checkpoint.tree_size == size)
    {
        return Ok(None);
    }
    let root_hash = integrity.tree.root(store, size).await?;
    let signed = Checkpoint {
        tree_size: size,
        root_hash,
        ts: Timestamp::now(),
        previous: newest.as_ref().map(|n| n.checkpoint.digest()),
    }
    .sign(&integrity.key);
    if !store.add_checkpoint(&signed).await? {
        return Ok(None);
    }
    if let Some(dir) = &integrity.config.checkpoint_dir {
        if let Err(e) = write_copy(dir, &signed, &public) {
            tracing::warn!(dir = %dir.display(), "cannot copy the checkpoint: {e}");
        }
    }
    Ok(Some(signed))
}

/// The file name of a checkpoint's copy: sorted by tree size.
pub fn file_name(checkpoint: &SignedCheckpoint) -> String {
    format!("checkpoint-{:020}.json", checkpoint.checkpoint.tree_size)
}

/// Writes the checkpoint (and the public key, `key.json`) into `dir`, each file
/// written whole under a temporary name and renamed, so a reader never sees half.
fn write_copy(dir: &Path, signed: &SignedCheckpoint, public: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let write = |name: &str, body: String| -> std::io::Result<()> {
        let tmp = dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, body)?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, dir.join(name))
    };
    let key = serde_json::json!({"algorithm": "ed25519", "public_key": public});
    write("key.json", format!("{key}\n"))?;
    write(&file_name(signed), format!("{}\n", signed.to_json()))
}

/// Reads every checkpoint file of a checkpoint directory (what `logbook verify
/// --checkpoints` trusts), skipping nothing silently: a file that does not parse is
/// an error naming it.
pub fn read_dir(dir: &Path) -> anyhow::Result<Vec<SignedCheckpoint>> {
    let mut out = Vec::new();
    for entry in
        std::fs::read_dir(dir).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", dir.display()))?
    {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if !(name.starts_with("checkpoint-") && name.ends_with(".json")) {
            continue;
        }
        let text = std::fs::read_to_string(&path)?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{} is not JSON: {e}", path.display()))?;
        out.push(
            SignedCheckpoint::from_json(&value)
                .map_err(|e| anyhow::anyhow!("{} is not a checkpoint: {e}", path.display()))?,
        );
    }
    Ok(out)
}

/// Signs checkpoints every interval until the node shuts down (the final one is
/// signed by whoever stops the node, after the last write: `checkpoint` again).
pub async fn run(state: AppState) {
    let mut shutdown = state.shutdown.clone();
    let interval = state.integrity.config.checkpoint_interval;
    if let Err(e) = state.integrity.tree.warm(state.store.as_ref()).await {
        tracing::warn!("cannot compute the tree's subtree roots: {e}");
    }
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        if let Err(e) = checkpoint(&state).await {
            tracing::warn!("cannot sign a checkpoint: {e}");
        }
    }
}
