//! The Merkle tree of RFC 9162 (Certificate Transparency 2.0), section 2.1, over the
//! records in id order: leaf hash = SHA-256(0x00 || leaf), node = SHA-256(0x01 ||
//! left || right), the left subtree of `n` leaves holding the largest power of two
//! below `n`. Proofs are built from the hashes of *subtrees*, asked of the caller
//! through a closure, so a store can answer them from cached subtree roots instead of
//! rehashing millions of leaves, and tests can answer them from a plain list.

use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

/// The hash of an empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

pub fn leaf_hash(leaf: &[u8]) -> Hash {
    leaf_hash_of_parts(&[leaf])
}

/// The leaf hash of the concatenation of `parts`, without concatenating them.
pub fn leaf_hash_of_parts(parts: &[&[u8]]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0u8]);
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([1u8]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The largest power of two strictly below `n` (n >= 2): where RFC 9162 splits.
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// MTH of a list of leaf hashes: the reference definition (recursive, O(n)).
pub fn root_of(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n as u64) as usize;
            node_hash(&root_of(&leaves[..k]), &root_of(&leaves[k..]))
        }
    }
}

/// The hashes of the subtrees a proof needs: `subtree(start, end)` must return MTH of
/// leaves `start..end`. Every range asked for is a node of the tree of the proof's
/// size: either a complete subtree (its size a power of two, `start` a multiple of
/// it) or the right edge of the tree (`end` equals the tree size).
pub trait Subtrees {
    type Error;
    fn subtree(&mut self, start: u64, end: u64) -> Result<Hash, Self::Error>;
}

impl<F, E> Subtrees for F
where
    F: FnMut(u64, u64) -> Result<Hash, E>,
{
    type Error = E;
    fn subtree(&mut self, start: u64, end: u64) -> Result<Hash, E> {
        self(start, end)
    }
}

/// Splits `start..end` (a node of some tree) into the complete subtrees it is made of,
/// left to right, largest first: what a store with cached complete-subtree roots looks
/// up to answer [`Subtrees::subtree`] for a right-edge node.
pub fn complete_subtrees(start: u64, end: u64) -> Vec<(u64, u64)> {
    let mut parts = Vec::new();
    let mut at = start;
    while at < end {
        // The largest power of two that is aligned at `at` and fits before `end`.
        let align = if at == 0 {
            1 << 62
        } else {
            at & at.wrapping_neg()
        };
        let mut size = align;
        while size > end - at {
            size >>= 1;
        }
        parts.push((at, at + size));
        at += size;
    }
    parts
}

/// The root of a node from the roots of its complete subtrees (as
/// [`complete_subtrees`] lists them): the right edge folds from the right.
pub fn fold_subtrees(roots: &[Hash]) -> Hash {
    match roots.split_last() {
        None => empty_root(),
        Some((last, rest)) => rest
            .iter()
            .rev()
            .fold(*last, |right, left| node_hash(left, &right)),
    }
}

/// RFC 9162 2.1.3.1: the audit path of leaf `index` in the tree of `size` leaves.
pub fn inclusion_path<S: Subtrees>(
    index: u64,
    size: u64,
    subtrees: &mut S,
) -> Result<Vec<Hash>, S::Error> {
    let mut path = Vec::new();
    let (mut start, mut end) = (0, size);
    // Walk down from the root, collecting the sibling of each step; the path lists
    // them bottom-up, so reverse at the end.
    while end - start > 1 {
        let k = split(end - start);
        if index < start + k {
            path.push(subtrees.subtree(start + k, end)?);
            end = start + k;
        } else {
            path.push(subtrees.subtree(start, start + k)?);
            start += k;
        }
    }
    path.reverse();
    Ok(path)
}

/// RFC 9162 2.1.4.1: the consistency proof from the tree of `old` leaves to the tree of
/// `new` leaves (0 < old <= new).
pub fn consistency_proof<S: Subtrees>(
    old: u64,
    new: u64,
    subtrees: &mut S,
) -> Result<Vec<Hash>, S::Error> {
    let mut proof = Vec::new();
    if old == 0 || old >= new {
        return Ok(proof);
    }
    let (mut start, mut end, mut m, mut complete) = (0u64, new, old, true);
    loop {
        let n = end - start;
        if m == n {
            if !complete {
                proof.push(subtrees.subtree(start, end)?);
            }
            break;
        }
        let k = split(n);
        if m <= k {
            proof.push(subtrees.subtree(start + k, end)?);
            end = start + k;
        } else {
            proof.push(subtrees.subtree(start, start + k)?);
            start += k;
            m -= k;
            complete = false;
        }
    }
    proof.reverse();
    Ok(proof)
}

/// RFC 9162 2.1.3.2: whether `path` proves `leaf` at `index` in a tree with `root`.
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, path: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut f_n, mut s_n) = (index, size - 1);
    let mut r = *leaf;
    for p in path {
        if s_n == 0 {
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    s_n == 0 && r == *root
}

/// RFC 9162 2.1.4.2: whether `proof` shows the tree of `old` leaves with `old_root` is a
/// prefix of the tree of `new` leaves with `new_root`.
pub fn verify_consistency(
    old: u64,
    new: u64,
    proof: &[Hash],
    old_root: &Hash,
    new_root: &Hash,
) -> bool {
    if old == 0 || old > new {
        return false;
    }
    if old == new {
        return proof.is_empty() && old_root == new_root;
    }
    if proof.is_empty() {
        return false;
    }
    // With `old` a power of two, the old root is the first node of the path.
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    let (mut f_n, mut s_n) = (old - 1, new - 1);
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if s_n == 0 {
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    fr == *old_root && sr == *new_root && s_n == 0
}

/// The right edge of a growing tree: the roots of its complete subtrees, largest
/// first. Appending a leaf and reading the root cost O(log n), so the writer keeps the
/// tree current at ingest without rereading old leaves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// One root per set bit of `size`, from the highest bit down.
    roots: Vec<Hash>,
}

impl Frontier {
    pub fn new() -> Frontier {
        Frontier::default()
    }

    /// A frontier from the roots [`complete_subtrees`]`(0, size)` lists; `None` if their
    /// number does not fit `size`.
    pub fn from_roots(size: u64, roots: Vec<Hash>) -> Option<Frontier> {
        (roots.len() == size.count_ones() as usize).then_some(Frontier { size, roots })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn roots(&self) -> &[Hash] {
        &self.roots
    }

    pub fn push(&mut self, leaf: Hash) {
        let mut node = leaf;
        // Each trailing one bit of the old size is a complete subtree of the same size
        // as the carry: merge them, as binary addition carries.
        let mut size = self.size;
        while size & 1 == 1 {
            if let Some(left) = self.roots.pop() {
                node = node_hash(&left, &node);
            }
            size >>= 1;
        }
        self.roots.push(node);
        self.size += 1;
    }

    /// Appends a complete subtree of `leaves` leaves (a power of two) given by its
    /// root, as if its leaves were pushed one by one; false (and nothing changes)
    /// unless the tree's size is a multiple of `leaves`, where such a subtree starts.
    pub fn push_subtree(&mut self, root: Hash, leaves: u64) -> bool {
        if !leaves.is_power_of_two() || !self.size.is_multiple_of(leaves) {
            return false;
        }
        let mut node = root;
        let mut size = self.size / leaves;
        while size & 1 == 1 {
            if let Some(left) = self.roots.pop() {
                node = node_hash(&left, &node);
            }
            size >>= 1;
        }
        self.roots.push(node);
        self.size += leaves;
        true
    }

    pub fn root(&self) -> Hash {
        fold_subtrees(&self.roots)
    }
}

pub fn to_hex(hash: &Hash) -> String {
    use std::fmt::Write;
    hash.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

pub fn from_hex(text: &str) -> Option<Hash> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut hash = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let pair = std::str::from_utf8(pair).ok()?;
        hash[i] = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(hash)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    fn from_list(leaves: &[Hash]) -> impl FnMut(u64, u64) -> Result<Hash, Infallible> + '_ {
        move |a, b| Ok(root_of(&leaves[a as usize..b as usize]))
    }

    #[test]
    fn the_empty_tree_and_one_leaf_follow_the_rfc() {
        assert_eq!(
            to_hex(&empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        // RFC 6962's test vector: the leaf hash of the empty string.
        assert_eq!(
            to_hex(&leaf_hash(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
    }

    #[test]
    fn the_certificate_transparency_test_vectors_hold() {
        // The eight leaves and roots of RFC 6962's reference tests.
        let inputs: [&[u8]; 8] = [
            b"",
            b"\x00",
            b"\x10",
            b"\x20\x21",
            b"\x30\x31",
            b"\x40\x41\x42\x43",
            b"\x50\x51\x52\x53\x54\x55\x56\x57",
            b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
        ];
        let roots = [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        let leaves: Vec<Hash> = inputs.iter().map(|i| leaf_hash(i)).collect();
        for (n, root) in roots.iter().enumerate() {
            assert_eq!(to_hex(&root_of(&leaves[..=n])), *root, "size {}", n + 1);
        }
    }

    #[test]
    fn a_pushed_subtree_is_as_good_as_its_leaves() {
        let all = leaves(40);
        let mut frontier = Frontier::new();
        for leaf in &all[..8] {
            frontier.push(*leaf);
        }
        assert!(frontier.push_subtree(root_of(&all[8..16]), 8));
        assert!(
            !frontier.push_subtree(root_of(&all[16..40]), 24),
            "not a power of two"
        );
        assert!(frontier.push_subtree(root_of(&all[16..32]), 16));
        assert!(
            !frontier.push_subtree(root_of(&all[32..40]), 64),
            "not where one starts"
        );
        assert_eq!(
            (frontier.size(), frontier.root()),
            (32, root_of(&all[..32]))
        );
        for leaf in &all[32..] {
            frontier.push(*leaf);
        }
        assert_eq!(frontier.root(), root_of(&all));
    }

    #[test]
    fn the_frontier_gives_the_reference_root_at_every_size() {
        let all = leaves(70);
        let mut frontier = Frontier::new();
        assert_eq!(frontier.root(), empty_root());
        for (i, leaf) in all.iter().enumerate() {
            frontier.push(*leaf);
            assert_eq!(frontier.root(), root_of(&all[..=i]), "size {}", i + 1);
            let parts = complete_subtrees(0, i as u64 + 1);
            let roots: Vec<Hash> = parts
                .iter()
                .map(|(a, b)| root_of(&all[*a as usize..*b as usize]))
                .collect();
            assert_eq!(frontier.roots(), roots.as_slice());
        }
    }

    #[test]
    fn every_inclusion_proof_verifies_and_a_wrong_one_does_not() {
        let all = leaves(33);
        for size in 1..=all.len() as u64 {
            let root = root_of(&all[..size as usize]);
            for index in 0..size {
                let path = inclusion_path(index, size, &mut from_list(&all)).expect("infallible");
                let leaf = &all[index as usize];
                assert!(verify_inclusion(leaf, index, size, &path, &root));
                let other = &all[(index as usize + 1) % all.len()];
                assert!(!verify_inclusion(other, index, size, &path, &root));
                if size > 1 {
                    assert!(!verify_inclusion(
                        leaf,
                        (index + 1) % size,
                        size,
                        &path,
                        &root
                    ));
                }
            }
        }
    }

    #[test]
    fn every_consistency_proof_verifies_and_a_changed_history_does_not() {
        let all = leaves(33);
        for new in 1..=all.len() as u64 {
            let new_root = root_of(&all[..new as usize]);
            for old in 1..=new {
                let old_root = root_of(&all[..old as usize]);
                let proof = consistency_proof(old, new, &mut from_list(&all)).expect("infallible");
                assert!(
                    verify_consistency(old, new, &proof, &old_root, &new_root),
                    "{old} -> {new}"
                );
                let mut other = all.clone();
                other[0] = leaf_hash(b"rewritten");
                let forged_old = root_of(&other[..old as usize]);
                assert!(
                    !verify_consistency(old, new, &proof, &forged_old, &new_root),
                    "{old} -> {new}"
                );
            }
        }
    }

    #[test]
    fn a_right_edge_node_splits_into_aligned_complete_subtrees() {
        assert_eq!(complete_subtrees(0, 13), [(0, 8), (8, 12), (12, 13)]);
        assert_eq!(complete_subtrees(8, 13), [(8, 12), (12, 13)]);
        assert_eq!(complete_subtrees(6, 7), [(6, 7)]);
        let all = leaves(13);
        let roots: Vec<Hash> = complete_subtrees(8, 13)
            .iter()
            .map(|(a, b)| root_of(&all[*a as usize..*b as usize]))
            .collect();
        assert_eq!(fold_subtrees(&roots), root_of(&all[8..13]));
    }

    #[test]
    fn hex_round_trips() {
        let h = leaf_hash(b"x");
        assert_eq!(from_hex(&to_hex(&h)), Some(h));
        assert_eq!(from_hex("zz"), None);
    }
}
