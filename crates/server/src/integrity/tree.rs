//! Subtree roots for proofs. RFC 9162 proofs are made of the roots of subtrees;
//! recomputing one of 10M leaves from the leaves is 10M hashes, so the roots of
//! every complete chunk of [`CHUNK`] leaves are read once from the store, which
//! keeps them (leaves never change: a removal keeps them), and held here with the
//! roots above them; only the leaves of at most one chunk per subtree are read for
//! the rest. A proof is planned first (which ranges it
//! needs, which does not depend on any hash), then its data read, then computed.

use logbook_core::integrity::merkle::{
    complete_subtrees, consistency_proof, empty_root, fold_subtrees, inclusion_path, node_hash,
    root_of,
};
use logbook_core::integrity::Hash;
use logbook_store::{Store, StoreError};
use std::collections::HashMap;
use std::convert::Infallible;

pub use logbook_store::integrity::CHUNK;
/// Chunks whose leaves are read per query when filling the cache from leaves (a
/// chunk the store has not kept yet).
const FILL_CHUNKS: u64 = 64;
/// Kept chunk roots read per query when filling the cache.
const FILL_ROOTS: u64 = 65536;

type Result<T> = std::result::Result<T, StoreError>;

#[derive(Debug, Default)]
pub struct Tree {
    chunks: tokio::sync::Mutex<Levels>,
}

/// The roots of every complete aligned subtree of at least [`CHUNK`] leaves:
/// `levels[0][k]` is chunk k's root (leaves k*CHUNK..(k+1)*CHUNK), `levels[j][i]`
/// the root of the 2^j chunks from chunk i*2^j. A proof's complete subtrees are
/// each one lookup, not a fold over their chunk roots (which, at 10M leaves, was
/// thousands of hashes per proof: the proofs' tail).
#[derive(Debug, Default)]
struct Levels {
    levels: Vec<Vec<Hash>>,
}

impl Levels {
    /// Complete chunks known.
    fn len(&self) -> usize {
        self.levels.first().map_or(0, Vec::len)
    }

    fn push(&mut self, chunk_root: Hash) {
        let mut carry = chunk_root;
        for j in 0.. {
            if self.levels.len() == j {
                self.levels.push(Vec::new());
            }
            let level = &mut self.levels[j];
            level.push(carry);
            if level.len() % 2 == 1 {
                return;
            }
            carry = node_hash(&level[level.len() - 2], &level[level.len() - 1]);
        }
    }

    /// The root of leaves `a..b`, a complete aligned subtree of at least a chunk.
    fn subtree(&self, a: u64, b: u64) -> Option<Hash> {
        let chunks = (b - a) / CHUNK;
        if !chunks.is_power_of_two() || !(b - a).is_multiple_of(CHUNK) || !a.is_multiple_of(b - a) {
            return None;
        }
        let level = chunks.trailing_zeros() as usize;
        self.levels.get(level)?.get((a / (b - a)) as usize).copied()
    }
}

/// Which subtree ranges a computation asks for.
fn plan(
    run: impl FnOnce(&mut dyn FnMut(u64, u64) -> std::result::Result<Hash, Infallible>),
) -> Vec<(u64, u64)> {
    let mut asked = Vec::new();
    run(&mut |a, b| {
        asked.push((a, b));
        Ok([0; 32])
    });
    asked
}

impl Tree {
    /// MTH of the first `size` leaves.
    pub async fn root(&self, store: &dyn Store, size: u64) -> Result<Hash> {
        if size == 0 {
            return Ok(empty_root());
        }
        let roots = self.resolve(store, &[(0, size)]).await?;
        Ok(roots[&(0, size)])
    }

    /// The audit path of leaf `index` in the tree of `size` leaves.
    pub async fn inclusion(&self, store: &dyn Store, index: u64, size: u64) -> Result<Vec<Hash>> {
        let ranges = plan(|f| {
            let mut f = f;
            let _ = inclusion_path(index, size, &mut f);
        });
        let roots = self.resolve(store, &ranges).await?;
        inclusion_path(index, size, &mut |a, b| lookup(&roots, a, b))
    }

    /// The consistency proof from the tree of `old` leaves to that of `new`.
    pub async fn consistency(&self, store: &dyn Store, old: u64, new: u64) -> Result<Vec<Hash>> {
        let ranges = plan(|f| {
            let mut f = f;
            let _ = consistency_proof(old, new, &mut f);
        });
        let roots = self.resolve(store, &ranges).await?;
        consistency_proof(old, new, &mut |a, b| lookup(&roots, a, b))
    }

    /// The roots of the asked ranges (each a node of some tree).
    async fn resolve(
        &self,
        store: &dyn Store,
        ranges: &[(u64, u64)],
    ) -> Result<HashMap<(u64, u64), Hash>> {
        let parts: Vec<Vec<(u64, u64)>> = ranges
            .iter()
            .map(|(a, b)| complete_subtrees(*a, *b))
            .collect();
        let needed_chunks = parts
            .iter()
            .flatten()
            .filter(|(a, b)| b - a >= CHUNK)
            .map(|(_, b)| b / CHUNK)
            .max()
            .unwrap_or(0);
        self.fill(store, needed_chunks).await?;
        let chunks = self.chunks.lock().await;
        let mut chunk_leaves: HashMap<u64, Vec<Hash>> = HashMap::new();
        let mut out = HashMap::new();
        for (range, parts) in ranges.iter().zip(&parts) {
            let mut roots = Vec::with_capacity(parts.len());
            for &(a, b) in parts {
                if b - a >= CHUNK {
                    let root = chunks
                        .subtree(a, b)
                        .ok_or_else(|| StoreError::Internal("chunk roots missing".into()))?;
                    roots.push(root);
                } else {
                    let k = a / CHUNK;
                    if let std::collections::hash_map::Entry::Vacant(slot) = chunk_leaves.entry(k) {
                        slot.insert(read_leaves(store, k * CHUNK, (k + 1) * CHUNK).await?);
                    }
                    let leaves = &chunk_leaves[&k];
                    let slice = leaves
                        .get((a - k * CHUNK) as usize..(b - k * CHUNK) as usize)
                        .ok_or_else(|| {
                            StoreError::Internal(format!("leaves {a}..{b} are missing"))
                        })?;
                    roots.push(root_of(slice));
                }
            }
            out.insert(*range, fold_subtrees(&roots));
        }
        Ok(out)
    }

    /// Computes the roots of chunks up to `count` (all complete), if not yet known.
    async fn fill(&self, store: &dyn Store, count: u64) -> Result<()> {
        let mut chunks = self.chunks.lock().await;
        while (chunks.len() as u64) < count {
            let first = chunks.len() as u64;
            let kept = store
                .chunk_roots(first, FILL_ROOTS.min(count - first))
                .await?;
            if !kept.is_empty() {
                for root in kept {
                    chunks.push(root);
                }
                continue;
            }
            let n = FILL_CHUNKS.min(count - first);
            let leaves = read_leaves(store, first * CHUNK, (first + n) * CHUNK).await?;
            if leaves.len() as u64 != n * CHUNK {
                return Err(StoreError::Internal(format!(
                    "leaves {}..{} are missing",
                    first * CHUNK,
                    (first + n) * CHUNK
                )));
            }
            for chunk in leaves.chunks(CHUNK as usize) {
                chunks.push(root_of(chunk));
            }
        }
        Ok(())
    }

    /// Reads every complete chunk's root now (at start, so the first proof on a
    /// large store is as fast as the others).
    pub async fn warm(&self, store: &dyn Store) -> Result<()> {
        let size = store.tree_size().await?;
        self.fill(store, size / CHUNK).await
    }
}

fn lookup(roots: &HashMap<(u64, u64), Hash>, a: u64, b: u64) -> Result<Hash> {
    roots
        .get(&(a, b))
        .copied()
        .ok_or_else(|| StoreError::Internal(format!("subtree {a}..{b} was not planned")))
}

/// The leaf hashes with index in `start..end` (fewer at the tree's end), checked to
/// be contiguous.
async fn read_leaves(store: &dyn Store, start: u64, end: u64) -> Result<Vec<Hash>> {
    let leaves = store.leaves(start, end).await?;
    for (i, leaf) in leaves.iter().enumerate() {
        if leaf.index != start + i as u64 {
            return Err(StoreError::Internal(format!(
                "leaf {} is missing",
                start + i as u64
            )));
        }
    }
    Ok(leaves.into_iter().map(|l| l.hash).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use logbook_core::integrity::merkle::leaf_hash;

    #[test]
    fn every_cached_subtree_is_the_root_of_its_leaves() {
        let leaves: Vec<Hash> = (0..13 * CHUNK)
            .map(|i| leaf_hash(&i.to_be_bytes()))
            .collect();
        let mut levels = Levels::default();
        for chunk in leaves.chunks(CHUNK as usize) {
            levels.push(root_of(chunk));
        }
        assert_eq!(levels.len(), 13);
        for size in [1, 2, 4, 8].map(|n| n * CHUNK) {
            for a in (0..13 * CHUNK).step_by(size as usize) {
                let b = a + size;
                let expected = (b <= 13 * CHUNK).then(|| root_of(&leaves[a as usize..b as usize]));
                assert_eq!(levels.subtree(a, b), expected, "{a}..{b}");
            }
        }
        assert_eq!(levels.subtree(CHUNK, 3 * CHUNK), None, "not aligned");
        assert_eq!(levels.subtree(0, 3 * CHUNK), None, "not a power of two");
    }
}
