//! Bloom filters of a block's summary: of the case-folded byte trigrams of its
//! messages (so a substring that is absent skips the block without decompressing
//! it), and of the values of high-cardinality fields (`object_id`, `request_id`,
//! `user_id`, ...). Sized from the number of distinct keys the block really has, at
//! about 1% false positives.

use super::wire::{put_varint, Corrupt, Reader};
use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

/// Bits per distinct key: about 1% false positives with 7 probes.
const BITS_PER_KEY: usize = 10;
const PROBES: u32 = 7;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bloom {
    words: Vec<u64>,
}

/// A 64-bit hash of bytes (FNV-1a folded through a multiply-xorshift finaliser):
/// stable across versions and machines, because filters are stored.
pub fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix(h)
}

fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Double hashing: probe `i` of `hash` is `h1 + i * h2` (mod the filter's bits).
fn probe(hash: u64, i: u64, bits: u64) -> u64 {
    let (h1, h2) = (hash & 0xffff_ffff, (hash >> 32) | 1);
    h1.wrapping_add(i.wrapping_mul(h2)) % bits
}

/// The hasher of a set of keys that are hashes already (of [`hash_bytes`] or
/// trigram mixes): it passes the key through.
#[derive(Default)]
struct Premixed(u64);

impl Hasher for Premixed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, key: u64) {
        self.0 = key;
    }
}

/// The distinct keys of a filter being collected. Through a hash set rather than
/// sort and dedup: sorting every trigram of a batch's messages was the largest item
/// of preparing an append (13% of the request tasks' samples), and the set grows
/// only with the distinct keys (a batch's 100k trigrams are some 5k distinct ones,
/// so they are not gathered in a list first either).
#[derive(Default)]
pub struct Keys(HashSet<u64, BuildHasherDefault<Premixed>>);

impl Keys {
    pub fn insert(&mut self, hash: u64) {
        self.0.insert(hash);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The keys, in no particular order, as a compact list to keep.
    pub fn to_list(&self) -> Box<[u64]> {
        self.0.iter().copied().collect()
    }

    /// The filter of the keys, sized from their number.
    pub fn bloom(&self) -> Bloom {
        let bits = (self.0.len() * BITS_PER_KEY).max(64);
        let mut bloom = Bloom {
            words: vec![0; bits.div_ceil(64)],
        };
        for &h in &self.0 {
            bloom.insert(h);
        }
        bloom
    }
}

impl Extend<u64> for Keys {
    fn extend<I: IntoIterator<Item = u64>>(&mut self, hashes: I) {
        self.0.extend(hashes);
    }
}

impl Bloom {
    /// A filter of these key hashes (duplicates allowed).
    pub fn from_hashes(hashes: &[u64]) -> Bloom {
        let mut keys = Keys::default();
        keys.extend(hashes.iter().copied());
        keys.bloom()
    }

    fn bits(&self) -> u64 {
        self.words.len() as u64 * 64
    }

    fn probes(&self, hash: u64) -> impl Iterator<Item = u64> {
        let bits = self.bits();
        (0..u64::from(PROBES)).map(move |i| probe(hash, i, bits))
    }

    fn insert(&mut self, hash: u64) {
        for bit in self.probes(hash) {
            self.words[(bit / 64) as usize] |= 1 << (bit % 64);
        }
    }

    /// False means the key is certainly absent.
    pub fn may_contain(&self, hash: u64) -> bool {
        self.probes(hash)
            .all(|bit| self.words[(bit / 64) as usize] & (1 << (bit % 64)) != 0)
    }

    pub fn size_bytes(&self) -> usize {
        self.words.len() * 8
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        put_varint(out, self.words.len() as u64);
        for w in &self.words {
            out.extend_from_slice(&w.to_le_bytes());
        }
    }

    pub fn read(r: &mut Reader<'_>) -> Result<Bloom, Corrupt> {
        let n = r.count("filter length", 1 << 24)?;
        if n == 0 {
            return Err(Corrupt("an empty filter".into()));
        }
        let bytes = r.take(n * 8, "filter")?;
        let words = bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect();
        Ok(Bloom { words })
    }
}

/// The byte trigrams a message contributes to its block's filter: of its ASCII
/// case fold, and (when it has other letters) of its full lowercase form. A
/// case-insensitive match of an ASCII needle is a match of its ASCII fold in the
/// first; of any other needle, of its lowercase form in the second (exactly how
/// `Query::matches` compares), so every trigram of a matching needle is present.
pub fn message_trigrams(message: &str, out: &mut Keys) {
    // The ASCII fold is taken byte by byte as the windows pass (a folded copy of
    // every message was an allocation a row).
    push_trigrams(message.bytes().map(|b| b.to_ascii_lowercase()), out);
    if !message.is_ascii() {
        push_trigrams(message.to_lowercase().bytes(), out);
    }
}

/// The trigrams a block must have for some message in it to contain `needle`
/// case-insensitively; `None` if the needle is too short to tell.
pub fn needle_trigrams(needle: &str) -> Option<Vec<u64>> {
    let folded = if needle.is_ascii() {
        needle.to_ascii_lowercase()
    } else {
        needle.to_lowercase()
    };
    if folded.len() < 3 {
        return None;
    }
    let mut out = Vec::new();
    push_trigrams(folded.bytes(), &mut out);
    out.sort_unstable();
    out.dedup();
    Some(out)
}

/// The trigram at each window of three bytes (a 24-bit window rolled along).
fn push_trigrams(bytes: impl Iterator<Item = u8>, out: &mut impl Extend<u64>) {
    let mut window = 0u64;
    let mut seen = 0;
    out.extend(bytes.filter_map(|b| {
        window = (window << 8 | u64::from(b)) & 0xff_ffff;
        seen += 1;
        (seen >= 3).then(|| trigram_key(window))
    }));
}

/// The key of trigram `b0 b1 b2`, given as `b0 << 16 | b1 << 8 | b2`.
fn trigram_key(window: u64) -> u64 {
    let (b0, b1, b2) = (window >> 16, (window >> 8) & 0xff, window & 0xff);
    mix(b0 | b1 << 8 | b2 << 16 | 1 << 24)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keys_make_the_same_filter_as_distinct_ones() {
        let hashes: Vec<u64> = (0..3000u64).map(|i| hash_bytes(&i.to_le_bytes())).collect();
        let twice: Vec<u64> = hashes.iter().chain(hashes.iter().rev()).copied().collect();
        let bloom = Bloom::from_hashes(&hashes);
        assert_eq!(Bloom::from_hashes(&twice), bloom);
        assert_eq!(bloom.bits(), (3000 * BITS_PER_KEY).div_ceil(64) as u64 * 64);
    }

    #[test]
    fn present_keys_always_pass_and_absent_ones_rarely() {
        let hashes: Vec<u64> = (0..5000u64).map(|i| hash_bytes(&i.to_le_bytes())).collect();
        let bloom = Bloom::from_hashes(&hashes);
        assert!(hashes.iter().all(|h| bloom.may_contain(*h)));
        let false_positives = (5000..105_000u64)
            .filter(|i| bloom.may_contain(hash_bytes(&i.to_le_bytes())))
            .count();
        assert!(false_positives < 2000, "{false_positives} of 100000");
        let mut out = Vec::new();
        bloom.write(&mut out);
        assert_eq!(Bloom::read(&mut Reader::new(&out)), Ok(bloom));
    }

    /// The trigrams as they were taken before the rolling window: of a folded copy.
    fn trigrams_of_a_folded_copy(message: &str) -> Vec<u64> {
        let key = |w: &[u8]| {
            mix(u64::from(w[0]) | u64::from(w[1]) << 8 | u64::from(w[2]) << 16 | 1 << 24)
        };
        let mut out: Vec<u64> = message
            .to_ascii_lowercase()
            .as_bytes()
            .windows(3)
            .map(key)
            .collect();
        if !message.is_ascii() {
            out.extend(message.to_lowercase().as_bytes().windows(3).map(key));
        }
        out
    }

    #[test]
    fn trigrams_are_the_keys_stored_filters_were_made_of() {
        for m in [
            "",
            "ab",
            "abc",
            "Disk TIMEOUT on /var",
            "Größe ÜBER alles",
            "caf\u{e9} K",
            "\u{1F600}x",
        ] {
            let mut expected = trigrams_of_a_folded_copy(m);
            let mut keys = Keys::default();
            message_trigrams(m, &mut keys);
            let mut got: Vec<u64> = keys.0.iter().copied().collect();
            got.sort_unstable();
            expected.sort_unstable();
            expected.dedup();
            assert_eq!(got, expected, "{m}");
        }
    }

    #[test]
    fn a_matching_needle_has_every_trigram_in_the_filter() {
        let messages = [
            "Disk TIMEOUT on /var",
            "Größe ÜBER alles",
            "ab",
            "caf\u{e9} K",
        ];
        let mut keys = Keys::default();
        for m in messages {
            message_trigrams(m, &mut keys);
        }
        let bloom = keys.bloom();
        for needle in ["timeout", "DISK t", "über", "GRÖßE", "größe", "afé"] {
            let trigrams = needle_trigrams(needle).expect("long enough");
            assert!(trigrams.iter().all(|t| bloom.may_contain(*t)), "{needle}");
        }
        assert_eq!(needle_trigrams("ab"), None);
        let absent = needle_trigrams("zebrafish").expect("long enough");
        assert!(!absent.iter().all(|t| bloom.may_contain(*t)));
    }
}
