//! Decoded pages and dictionaries of sealed blocks, kept for reuse across queries
//! within a byte budget; both stores' block readers share it. Keys are (a number
//! unique to one block's content, column, page), so a rewritten block's pages are
//! never served.

use super::format::{Dictionary, Page};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

pub fn page_bytes(page: &Page) -> usize {
    match page {
        Page::Absent => 16,
        Page::Ints(v) => v.len() * 8,
        Page::Bytes(v) => v.len(),
        Page::Codes { codes, .. } => codes.len() * 2,
        Page::Text { spans, bytes } => spans.len() * 8 + bytes.len(),
    }
}

pub fn dictionary_bytes(d: &Dictionary) -> usize {
    d.values.iter().map(|v| v.len() + 16).sum()
}

#[derive(Clone)]
pub enum CacheEntry {
    Page(Arc<Page>),
    Dictionary(Arc<Dictionary>),
}

pub type CacheKey = (u64, u16, u32);

/// Decoded pages, evicted oldest first beyond a byte budget.
pub struct PageCache {
    inner: Mutex<CacheInner>,
    limit: usize,
}

struct CacheInner {
    map: HashMap<CacheKey, (CacheEntry, usize)>,
    order: VecDeque<CacheKey>,
    bytes: usize,
}

impl PageCache {
    pub fn new(limit: usize) -> PageCache {
        PageCache {
            inner: Mutex::new(CacheInner {
                map: HashMap::new(),
                order: VecDeque::new(),
                bytes: 0,
            }),
            limit,
        }
    }

    pub fn get(&self, key: &CacheKey) -> Option<CacheEntry> {
        let inner = self.inner.lock().ok()?;
        inner.map.get(key).map(|(e, _)| e.clone())
    }

    /// Forgets every page, as a full cache evicting them would (tests).
    #[cfg(test)]
    pub fn clear(&self) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.map.clear();
            inner.order.clear();
            inner.bytes = 0;
        }
    }

    pub fn put(&self, key: CacheKey, entry: CacheEntry, bytes: usize) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        if inner.map.insert(key, (entry, bytes)).is_none() {
            inner.order.push_back(key);
            inner.bytes += bytes;
        }
        while inner.bytes > self.limit {
            let Some(old) = inner.order.pop_front() else {
                break;
            };
            if let Some((_, size)) = inner.map.remove(&old) {
                inner.bytes -= size;
            }
        }
    }
}
