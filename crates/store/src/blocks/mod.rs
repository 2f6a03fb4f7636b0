//! Sealed column blocks, the format both stores keep their older records in (see
//! docs/storage.md): [`format`] encodes a run of records as one block (each field a
//! column, each column in zstd-compressed pages) and decodes its pages;
//! [`summary`] is what lets a query skip a block or count it without decoding it;
//! [`filter`] the bloom filters the summary uses. No I/O here: the stores keep the
//! blobs and summaries in their own database.

pub mod cache;
pub mod engine;
pub mod filter;
pub mod format;
pub mod rows;
pub mod segment;
pub mod summary;
pub mod tiers;
pub mod wire;

#[cfg(test)]
mod tests;
