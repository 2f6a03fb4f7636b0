//! The byte-level pieces of the block format: LEB128 varints, zigzag integers,
//! length-prefixed bytes. Reading never panics: data that ends early or overflows is
//! a [`Corrupt`] error naming what was being read.

use std::fmt;

/// A block or summary that cannot be decoded (damaged on disk, or a bug).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corrupt(pub String);

impl fmt::Display for Corrupt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "corrupt block data: {}", self.0)
    }
}

impl From<Corrupt> for crate::StoreError {
    fn from(e: Corrupt) -> Self {
        crate::StoreError::Internal(e.to_string())
    }
}

pub fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

pub fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

pub fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

pub fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Reads the pieces back, in order.
pub struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, at: 0 }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.at
    }

    /// Everything not consumed yet.
    pub fn rest(&self) -> &'a [u8] {
        &self.bytes[self.at.min(self.bytes.len())..]
    }

    pub fn is_empty(&self) -> bool {
        self.at >= self.bytes.len()
    }

    pub fn varint(&mut self, what: &str) -> Result<u64, Corrupt> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .bytes
                .get(self.at)
                .ok_or_else(|| Corrupt(format!("{what} ends early")))?;
            self.at += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(Corrupt(format!("{what} is not a varint")))
    }

    pub fn signed(&mut self, what: &str) -> Result<i64, Corrupt> {
        self.varint(what).map(unzigzag)
    }

    /// A varint that must fit `usize` and be at most `limit`.
    pub fn count(&mut self, what: &str, limit: usize) -> Result<usize, Corrupt> {
        let n = self.varint(what)?;
        usize::try_from(n)
            .ok()
            .filter(|n| *n <= limit)
            .ok_or_else(|| Corrupt(format!("{what} {n} is out of range")))
    }

    pub fn u8(&mut self, what: &str) -> Result<u8, Corrupt> {
        let byte = *self
            .bytes
            .get(self.at)
            .ok_or_else(|| Corrupt(format!("{what} ends early")))?;
        self.at += 1;
        Ok(byte)
    }

    pub fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], Corrupt> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| Corrupt(format!("{what} ends early")))?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    pub fn bytes(&mut self, what: &str) -> Result<&'a [u8], Corrupt> {
        let n = self.count(what, self.bytes.len())?;
        self.take(n, what)
    }

    pub fn text(&mut self, what: &str) -> Result<&'a str, Corrupt> {
        let bytes = self.bytes(what)?;
        std::str::from_utf8(bytes).map_err(|_| Corrupt(format!("{what} is not UTF-8")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_round_trip_and_truncation_is_an_error() {
        let values = [0i64, 1, -1, 63, -64, 300, i64::MAX, i64::MIN];
        let mut out = Vec::new();
        for v in values {
            put_varint(&mut out, zigzag(v));
        }
        put_bytes(&mut out, b"abc");
        let mut r = Reader::new(&out);
        for v in values {
            assert_eq!(r.signed("v"), Ok(v));
        }
        assert_eq!(r.text("t"), Ok("abc"));
        assert!(r.is_empty());
        assert!(Reader::new(&[0x80]).varint("x").is_err());
        assert!(Reader::new(&[5, b'a']).bytes("x").is_err());
        assert!(Reader::new(&[0xff; 11]).varint("x").is_err());
    }
}
