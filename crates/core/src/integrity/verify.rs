//! The verification of a store against its own leaves and signed checkpoints, as
//! plain values: the caller feeds the stored leaves in index order and the stored
//! records in id order (from a database file, PostgreSQL or the HTTP API), then
//! asks for the [`Report`]. Everything `logbook verify` concludes is decided here.

use super::checkpoint::SignedCheckpoint;
use super::kept::{Kept, CHUNK};
use super::merkle::{root_of, to_hex, Frontier, Hash};
use crate::record::Record;
use ed25519_dalek::VerifyingKey;
use std::collections::VecDeque;
use std::fmt;

/// What disagrees, in the words `logbook verify` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disagreement {
    /// The record's content is not what its leaf hashed.
    Altered,
    /// A leaf whose record is gone without a recorded removal.
    Missing,
    /// A record without a leaf.
    Inserted,
    /// Two records' contents changed places.
    Reordered,
    /// A signed checkpoint covers more leaves than the tree has.
    Truncated,
    /// The tree at a checkpoint's size does not have the checkpoint's root.
    Root,
    /// A checkpoint's signature does not verify.
    Signature,
    /// A checkpoint's `previous` is not the digest of the one before it.
    Chain,
}

impl fmt::Display for Disagreement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Disagreement::Altered => "altered",
            Disagreement::Missing => "missing",
            Disagreement::Inserted => "inserted",
            Disagreement::Reordered => "reordered",
            Disagreement::Truncated => "tree shorter than a signed checkpoint",
            Disagreement::Root => "tree root differs from a signed checkpoint",
            Disagreement::Signature => "checkpoint signature invalid",
            Disagreement::Chain => "checkpoint chain broken",
        })
    }
}

/// One disagreement: its kind and the first record id it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: Disagreement,
    pub id: Option<i64>,
    pub detail: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.id {
            Some(id) => write!(f, "record {id}: {} ({})", self.kind, self.detail),
            None => write!(f, "{} ({})", self.kind, self.detail),
        }
    }
}

/// What a verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub records: u64,
    pub tree_size: u64,
    pub root: Hash,
    pub checkpoints: usize,
    pub newest_checkpoint: Option<u64>,
    /// Stretches of removed records (first id, last id), their leaves kept.
    pub removed: Vec<(i64, i64)>,
    /// Every disagreement, the one with the lowest id first.
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.findings.is_empty()
    }

    /// The one line `logbook verify` prints.
    pub fn summary(&self) -> String {
        if let Some(first) = self.findings.first() {
            return format!("FAILED: {first}");
        }
        let removed: u64 = self
            .removed
            .iter()
            .map(|(a, b)| (b - a + 1).max(0) as u64)
            .sum();
        let ranges = self
            .removed
            .iter()
            .take(5)
            .map(|(a, b)| {
                if a == b {
                    format!("{a}")
                } else {
                    format!("{a}-{b}")
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        let more = if self.removed.len() > 5 { ", ..." } else { "" };
        format!(
            "OK: {} records, tree of {} leaves, root {}, {} signed checkpoints{}{}",
            self.records,
            self.tree_size,
            to_hex(&self.root),
            self.checkpoints,
            self.newest_checkpoint
                .map(|n| format!(" (newest at {n} leaves)"))
                .unwrap_or_default(),
            if removed > 0 {
                format!(", {removed} removed (ids {ranges}{more})")
            } else {
                String::new()
            }
        )
    }
}

/// Findings kept at most: the first names the id; the rest are context.
const MAX_FINDINGS: usize = 100;
/// How far apart two swapped records may be and still be recognised as a swap.
const SWAP_WINDOW: usize = 4096;

/// A record whose leaf disagreed, kept to recognise swaps.
#[derive(Debug)]
struct Mismatch {
    id: i64,
    record: Record,
    leaf: Kept,
}

/// The chunk being read whose root the store kept (its leaves only as
/// fingerprints): the leaves' hashes as the records give them, to compare with
/// the kept root at its end.
#[derive(Debug)]
struct KeptChunk {
    /// The tree before the chunk: the kept root is pushed onto it at the end.
    before: Frontier,
    first_id: i64,
    hashes: Vec<Hash>,
    /// A leaf of the chunk could not be recomputed, or was already named.
    spoiled: bool,
}

/// Feeds leaves and records, in order; see the module comment.
#[derive(Debug)]
pub struct Verifier {
    frontier: Frontier,
    /// Signed checkpoints by tree size, ascending; `next` is the first not reached.
    checkpoints: Vec<SignedCheckpoint>,
    next: usize,
    /// Removed stretches, ascending.
    removed: Vec<(i64, i64)>,
    records: u64,
    /// Records read but not yet matched with a leaf, with their leaf hashes.
    waiting: VecDeque<(Record, Hash)>,
    last_leaf_id: i64,
    last_good_checkpoint_id: i64,
    mismatches: Vec<Mismatch>,
    findings: Vec<Finding>,
    /// The kept roots of the first chunks (`[i]` of leaves `i*CHUNK..(i+1)*CHUNK`).
    chunk_roots: Vec<Hash>,
    chunk: Option<KeptChunk>,
}

impl Verifier {
    /// `checkpoints` from every source (the store, copies elsewhere); duplicates
    /// are dropped, signatures checked with `key` and the chain followed here.
    pub fn new(
        mut checkpoints: Vec<SignedCheckpoint>,
        key: Option<&VerifyingKey>,
        removed: Vec<(i64, i64)>,
    ) -> Verifier {
        checkpoints.sort_by_key(|c| (c.checkpoint.tree_size, c.checkpoint.ts));
        checkpoints.dedup();
        let mut findings = Vec::new();
        for (i, c) in checkpoints.iter().enumerate() {
            if let Some(key) = key {
                if !c.verify(key) {
                    findings.push(Finding {
                        kind: Disagreement::Signature,
                        id: None,
                        detail: format!("checkpoint of {} leaves", c.checkpoint.tree_size),
                    });
                }
            }
            let expected = i.checked_sub(1).map(|p| checkpoints[p].checkpoint.digest());
            if c.checkpoint.previous != expected {
                findings.push(Finding {
                    kind: Disagreement::Chain,
                    id: None,
                    detail: format!(
                        "checkpoint of {} leaves does not follow the one before",
                        c.checkpoint.tree_size
                    ),
                });
            }
        }
        Verifier {
            frontier: Frontier::new(),
            checkpoints,
            next: 0,
            removed,
            records: 0,
            waiting: VecDeque::new(),
            last_leaf_id: 0,
            last_good_checkpoint_id: 0,
            mismatches: Vec::new(),
            findings,
            chunk_roots: Vec::new(),
            chunk: None,
        }
    }

    /// The roots the store kept of its first complete chunks, before their leaves.
    pub fn chunk_roots(&mut self, roots: Vec<Hash>) {
        self.chunk_roots = roots;
    }

    fn find(&mut self, kind: Disagreement, id: i64, detail: String) {
        if self.findings.len() < MAX_FINDINGS {
            self.findings.push(Finding {
                kind,
                id: Some(id),
                detail,
            });
        }
    }

    fn is_removed(&self, id: i64) -> bool {
        let at = self.removed.partition_point(|(_, last)| *last < id);
        self.removed.get(at).is_some_and(|(first, _)| *first <= id)
    }

    /// The next stored records, in id order.
    pub fn records(&mut self, records: impl IntoIterator<Item = Record>) {
        self.hashed_records(records.into_iter().map(|record| {
            let hash = super::leaf_hash(&record);
            (record, hash)
        }));
    }

    /// The next stored records, in id order, each with its [`super::leaf_hash`]
    /// computed by the caller (on other threads: hashing is most of a verify).
    pub fn hashed_records(&mut self, records: impl IntoIterator<Item = (Record, Hash)>) {
        for pair in records {
            self.records += 1;
            self.waiting.push_back(pair);
        }
    }

    /// How many records wait for their leaves (the caller feeds leaves until few do).
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// The id of the last record fed, if any waits.
    pub fn last_waiting_id(&self) -> Option<i64> {
        self.waiting.back().map(|(r, _)| r.id)
    }

    /// The next stored leaf: `id` is the record it hashes.
    pub fn leaf(&mut self, id: i64, hash: Hash) {
        self.stored_leaf(id, Kept::Hash(hash));
    }

    /// The next stored leaf as the store kept it: `id` is the record it hashes.
    pub fn stored_leaf(&mut self, id: i64, kept: Kept) {
        let mut tree_hash = kept.hash();
        while let Some((front, _)) = self.waiting.front().filter(|(r, _)| r.id < id) {
            let stray = front.id;
            self.waiting.pop_front();
            self.find(
                Disagreement::Inserted,
                stray,
                "a record without a leaf".into(),
            );
        }
        match self.waiting.front() {
            Some((record, _)) if record.id == id => {
                if let Some((record, computed)) = self.waiting.pop_front() {
                    if kept.matches(&computed) {
                        tree_hash = Some(computed);
                    } else {
                        tree_hash = kept.hash();
                        self.mismatch(record, kept);
                        if let Some(chunk) = &mut self.chunk {
                            chunk.spoiled = true;
                        }
                    }
                }
            }
            _ if self.is_removed(id) => {}
            _ => self.find(
                Disagreement::Missing,
                id,
                "its leaf is in the tree, the record is gone and no removal was recorded".into(),
            ),
        }
        self.last_leaf_id = id;
        self.push(id, tree_hash);
    }

    /// Adds a leaf to the tree: its hash where known; inside a chunk whose root
    /// was kept, the chunk's hashes are collected and its kept root is what the
    /// tree takes at the chunk's end (checkpoints inside the chunk are compared
    /// only while every hash so far is known and agrees).
    fn push(&mut self, id: i64, hash: Option<Hash>) {
        let position = self.frontier.size();
        let chunk_root = self.chunk_roots.get((position / CHUNK) as usize).copied();
        let Some(chunk_root) = chunk_root else {
            // A fingerprint without a kept root: the store is inconsistent, and
            // a Missing or Altered finding already names the leaf.
            self.frontier.push(hash.unwrap_or_default());
            self.check_checkpoints();
            return;
        };
        if position.is_multiple_of(CHUNK) {
            self.chunk = Some(KeptChunk {
                before: self.frontier.clone(),
                first_id: id,
                hashes: Vec::with_capacity(CHUNK as usize),
                spoiled: false,
            });
        }
        let Some(chunk) = &mut self.chunk else {
            self.frontier.push(hash.unwrap_or_default());
            self.check_checkpoints();
            return;
        };
        match hash {
            Some(hash) => chunk.hashes.push(hash),
            None => chunk.spoiled = true,
        }
        self.frontier.push(hash.unwrap_or_default());
        if position % CHUNK != CHUNK - 1 {
            if !chunk.spoiled {
                self.check_checkpoints();
            }
            return;
        }
        let Some(chunk) = self.chunk.take() else {
            return;
        };
        if !chunk.spoiled && root_of(&chunk.hashes) != chunk_root {
            self.find(
                Disagreement::Altered,
                chunk.first_id,
                format!(
                    "a record in ids {}..={id} does not hash to the root kept for its chunk, though every fingerprint agrees",
                    chunk.first_id
                ),
            );
        }
        self.frontier = chunk.before;
        self.frontier.push_subtree(chunk_root, CHUNK);
        self.check_checkpoints();
    }

    fn mismatch(&mut self, record: Record, leaf: Kept) {
        let id = record.id;
        let swapped_with = self.mismatches.iter().position(|m| {
            let mut mine = record.clone();
            mine.id = m.id;
            let mut theirs = m.record.clone();
            theirs.id = id;
            m.leaf.matches(&super::leaf_hash(&mine)) && leaf.matches(&super::leaf_hash(&theirs))
        });
        match swapped_with {
            Some(at) => {
                let other = self.mismatches.remove(at);
                self.find(
                    Disagreement::Reordered,
                    other.id,
                    format!(
                        "its content is now at record {id}, and {id}'s at {}",
                        other.id
                    ),
                );
            }
            None => {
                if self.mismatches.len() >= SWAP_WINDOW {
                    let old = self.mismatches.remove(0);
                    self.altered(old.id);
                }
                self.mismatches.push(Mismatch { id, record, leaf });
            }
        }
    }

    fn altered(&mut self, id: i64) {
        self.find(
            Disagreement::Altered,
            id,
            "its content does not hash to its leaf".into(),
        );
    }

    fn check_checkpoints(&mut self) {
        while let Some(c) = self.checkpoints.get(self.next) {
            let size = c.checkpoint.tree_size;
            if size > self.frontier.size() {
                return;
            }
            // Checkpoints of an empty tree have nothing to compare here.
            if size == self.frontier.size() && size > 0 {
                if self.frontier.root() == c.checkpoint.root_hash {
                    self.last_good_checkpoint_id = self.last_leaf_id;
                } else {
                    let from = self.last_good_checkpoint_id + 1;
                    self.find(
                        Disagreement::Root,
                        from,
                        format!(
                            "the first {size} leaves do not have the signed root: the leaves themselves were rewritten somewhere in ids {from}..={}",
                            self.last_leaf_id
                        ),
                    );
                }
            }
            self.next += 1;
        }
    }

    /// Ends the verification: records left without leaves are inserted ones;
    /// checkpoints beyond the tree mean it was cut short.
    pub fn finish(mut self) -> Report {
        while let Some((record, _)) = self.waiting.pop_front() {
            self.find(
                Disagreement::Inserted,
                record.id,
                "a record without a leaf".into(),
            );
        }
        for m in std::mem::take(&mut self.mismatches) {
            self.altered(m.id);
        }
        if let Some(c) = self.checkpoints.last() {
            let size = c.checkpoint.tree_size;
            if size > self.frontier.size() {
                let first = self.last_leaf_id + 1;
                self.find(
                    Disagreement::Truncated,
                    first,
                    format!(
                        "a checkpoint signed {} leaves, the tree has {}: the records from id {first} on are gone",
                        size,
                        self.frontier.size()
                    ),
                );
            }
        }
        self.findings.sort_by_key(|f| f.id.unwrap_or(i64::MIN));
        Report {
            records: self.records,
            tree_size: self.frontier.size(),
            root: self.frontier.root(),
            checkpoints: self.checkpoints.len(),
            newest_checkpoint: self.checkpoints.last().map(|c| c.checkpoint.tree_size),
            removed: self.removed,
            findings: self.findings,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrity::{leaf_hash, Checkpoint};
    use crate::record::{Kind, NewRecord};
    use crate::time::Timestamp;
    use ed25519_dalek::SigningKey;

    fn records(n: i64) -> Vec<Record> {
        (1..=n)
            .map(|id| {
                let mut r = NewRecord::new(Kind::Log);
                r.message = Some(format!("line {id}"));
                r.into_record(id, Timestamp(id))
            })
            .collect()
    }

    fn checkpoint(leaves: &[Hash], key: &SigningKey) -> SignedCheckpoint {
        Checkpoint {
            tree_size: leaves.len() as u64,
            root_hash: crate::integrity::merkle::root_of(leaves),
            ts: Timestamp(1),
            previous: None,
        }
        .sign(key)
    }

    fn run(
        stored: &[Record],
        leaves: &[(i64, Hash)],
        checkpoints: Vec<SignedCheckpoint>,
        key: &SigningKey,
    ) -> Report {
        let mut v = Verifier::new(checkpoints, Some(&key.verifying_key()), Vec::new());
        v.records(stored.iter().cloned());
        for (id, hash) in leaves {
            v.leaf(*id, *hash);
        }
        v.finish()
    }

    #[test]
    fn each_kind_of_tampering_is_named_with_its_id() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let original = records(10);
        let leaves: Vec<(i64, Hash)> = original.iter().map(|r| (r.id, leaf_hash(r))).collect();
        let hashes: Vec<Hash> = leaves.iter().map(|(_, h)| *h).collect();
        let signed = checkpoint(&hashes, &key);
        let clean = run(&original, &leaves, vec![signed.clone()], &key);
        assert!(clean.ok(), "{}", clean.summary());

        let mut altered = original.clone();
        altered[3].message = Some("changed".into());
        let report = run(&altered, &leaves, vec![signed.clone()], &key);
        assert_eq!(report.findings[0].kind, Disagreement::Altered);
        assert_eq!(report.findings[0].id, Some(4));

        let mut missing = original.clone();
        missing.remove(5);
        let report = run(&missing, &leaves, vec![signed.clone()], &key);
        assert_eq!(
            (report.findings[0].kind, report.findings[0].id),
            (Disagreement::Missing, Some(6))
        );

        // Two records change places: each keeps its position's id.
        let mut swapped = original.clone();
        swapped.swap(2, 7);
        swapped[2].id = 3;
        swapped[7].id = 8;
        let report = run(&swapped, &leaves, vec![signed.clone()], &key);
        assert_eq!(
            (report.findings[0].kind, report.findings[0].id),
            (Disagreement::Reordered, Some(3))
        );

        let mut inserted = original.clone();
        inserted.push(records(11).remove(10));
        let report = run(&inserted, &leaves, vec![signed.clone()], &key);
        assert_eq!(
            (report.findings[0].kind, report.findings[0].id),
            (Disagreement::Inserted, Some(11))
        );

        let report = run(&original[..7], &leaves[..7], vec![signed.clone()], &key);
        assert_eq!(
            (report.findings[0].kind, report.findings[0].id),
            (Disagreement::Truncated, Some(8))
        );

        let other = SigningKey::from_bytes(&[4; 32]);
        let report = run(&original, &leaves, vec![checkpoint(&hashes, &other)], &key);
        assert_eq!(report.findings[0].kind, Disagreement::Signature);

        // Leaves rewritten along with the record: only the signed root sees it.
        let mut rewritten = leaves.clone();
        rewritten[3].1 = leaf_hash(&altered[3]);
        let report = run(&altered, &rewritten, vec![signed], &key);
        assert_eq!(
            (report.findings[0].kind, report.findings[0].id),
            (Disagreement::Root, Some(1))
        );
    }

    #[test]
    fn removed_records_pass_and_are_reported() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let original = records(6);
        let leaves: Vec<(i64, Hash)> = original.iter().map(|r| (r.id, leaf_hash(r))).collect();
        let mut v = Verifier::new(Vec::new(), Some(&key.verifying_key()), vec![(2, 3)]);
        v.records(original.iter().filter(|r| r.id != 2 && r.id != 3).cloned());
        for (id, hash) in &leaves {
            v.leaf(*id, *hash);
        }
        let report = v.finish();
        assert!(report.ok(), "{}", report.summary());
        assert!(
            report.summary().contains("2 removed (ids 2-3)"),
            "{}",
            report.summary()
        );
    }

    /// Feeds `stored` and the leaves as a store keeps them once compacted: the
    /// first `kept` chunks as fingerprints (removed ids whole) with their roots.
    fn run_kept(
        stored: &[Record],
        leaves: &[(i64, Hash)],
        roots: Vec<Hash>,
        removed: Vec<(i64, i64)>,
        checkpoints: Vec<SignedCheckpoint>,
        key: &SigningKey,
    ) -> Report {
        let kept_leaves = roots.len() * CHUNK as usize;
        let mut v = Verifier::new(checkpoints, Some(&key.verifying_key()), removed.clone());
        v.chunk_roots(roots);
        v.records(stored.iter().cloned());
        for (i, (id, hash)) in leaves.iter().enumerate() {
            let is_removed = removed.iter().any(|(a, b)| a <= id && id <= b);
            let kept = if i < kept_leaves && !is_removed {
                Kept::Fingerprint(crate::integrity::fingerprint(hash))
            } else {
                Kept::Hash(*hash)
            };
            v.stored_leaf(*id, kept);
        }
        v.finish()
    }

    #[test]
    fn chunks_kept_as_fingerprints_and_roots_verify_and_name_what_changed() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let original = records(2 * CHUNK as i64 + 100);
        let leaves: Vec<(i64, Hash)> = original.iter().map(|r| (r.id, leaf_hash(r))).collect();
        let hashes: Vec<Hash> = leaves.iter().map(|(_, h)| *h).collect();
        let roots: Vec<Hash> = hashes.chunks(CHUNK as usize).take(2).map(root_of).collect();
        // Checkpoints inside a kept chunk, at its end and beyond the kept ones.
        let mut signed = Vec::new();
        let mut previous = None;
        for size in [700, 1024, 2048 + 50] {
            let c = Checkpoint {
                tree_size: size,
                root_hash: root_of(&hashes[..size as usize]),
                ts: Timestamp(1),
                previous,
            }
            .sign(&key);
            previous = Some(c.checkpoint.digest());
            signed.push(c);
        }
        let present: Vec<Record> = original.iter().filter(|r| r.id != 1500).cloned().collect();
        let clean = run_kept(
            &present,
            &leaves,
            roots.clone(),
            vec![(1500, 1500)],
            signed.clone(),
            &key,
        );
        assert!(clean.ok(), "{}", clean.summary());
        assert_eq!(clean.root, root_of(&hashes));

        let mut altered = original.clone();
        altered[1300].message = Some("changed".into());
        let report = run_kept(
            &altered,
            &leaves,
            roots.clone(),
            Vec::new(),
            signed.clone(),
            &key,
        );
        assert_eq!(
            (report.findings[0].kind, report.findings[0].id),
            (Disagreement::Altered, Some(1301)),
            "{}",
            report.summary()
        );
        assert_eq!(report.findings.len(), 1, "{:?}", report.findings);

        let mut swapped = original.clone();
        swapped.swap(20, 30);
        swapped[20].id = 21;
        swapped[30].id = 31;
        let report = run_kept(
            &swapped,
            &leaves,
            roots.clone(),
            Vec::new(),
            signed.clone(),
            &key,
        );
        assert_eq!(
            (report.findings[0].kind, report.findings[0].id),
            (Disagreement::Reordered, Some(21))
        );

        // A change the fingerprints miss (here: a kept root rewritten) is named by
        // its chunk.
        let mut rewritten = roots.clone();
        rewritten[1] = roots[0];
        let report = run_kept(&original, &leaves, rewritten, Vec::new(), signed, &key);
        assert_eq!(
            (report.findings[0].kind, report.findings[0].id),
            (Disagreement::Altered, Some(CHUNK as i64 + 1)),
            "{}",
            report.summary()
        );
    }
}
