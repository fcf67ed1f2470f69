//! Recent history pages in memory: the encoded answers of `GET /conversations/:id/messages`,
//! kept per conversation and served without a database round trip.
//!
//! Safe because every change to a conversation's messages reaches every instance through
//! its Redis subscription (commit notices; `message:updated`/`message:deleted`; the
//! membership markers; [`HISTORY_CHANGED`] for changes whose socket event is coalesced or
//! absent: reactions, thumbnails) and drops all the conversation's pages there; the instance
//! that made a change drops them itself before answering. A page read from PostgreSQL is kept
//! only if nothing was dropped for its conversation while it was read (a [`Ticket`] taken
//! before the read). While the subscription is down nothing is served or kept, and it starts
//! empty when it is back. Pages hold signed attachment URLs: they are kept at most
//! [`MAX_AGE`] and at most half the URLs' lifetime. The byte budget is
//! `HISTORY_CACHE_BYTES` (0 turns the cache off).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::HeaderValue;
use platform_core::sync;
use uuid::Uuid;

use crate::history::Cursor;

/// The internal event (never delivered to sockets) that drops a conversation's pages on
/// every instance, for changes that have no event of their own at once.
pub(crate) const HISTORY_CHANGED: &str = "_history";

/// The event that drops `conversation`'s pages on every instance.
pub(crate) fn changed(conversation: Uuid) -> platform_core::events::Envelope<()> {
    platform_core::events::Envelope {
        event: HISTORY_CHANGED.to_string(),
        conversation: Some(conversation),
        users: Vec::new(),
        except: None,
        data: (),
    }
}

/// The longest a page is kept when nothing changes (a bound on any invalidation that was
/// lost while the subscription still looked up, e.g. a failed publish).
pub(crate) const MAX_AGE: Duration = Duration::from_secs(60);

/// Distinct pages (limit and cursor) kept per conversation: the newest page at one or two
/// sizes and a few older ones.
const PAGES_PER_CONVERSATION: usize = 4;

/// Bytes counted for an entry beyond its body (map slots, header, bookkeeping).
const OVERHEAD: usize = 160;

/// Which page of a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key {
    pub limit: i64,
    pub cursor: Cursor,
}

/// An encoded page: the JSON body and its `Link` header.
#[derive(Clone)]
pub(crate) struct Page {
    pub body: Bytes,
    pub link: Option<HeaderValue>,
}

struct Entry {
    key: Key,
    page: Page,
    at: Instant,
}

impl Entry {
    fn size(&self) -> usize {
        self.page.body.len() + self.page.link.as_ref().map_or(0, HeaderValue::len) + OVERHEAD
    }
}

/// One conversation: its pages, the version every drop raises, and the reads in flight (the
/// slot outlives its pages while one is, so its version is not lost).
#[derive(Default)]
struct Slot {
    version: u64,
    readers: u32,
    entries: Vec<Entry>,
}

#[derive(Default)]
struct Inner {
    /// The subscription is up: pages may be served and kept.
    live: bool,
    slots: HashMap<Uuid, Slot>,
    bytes: usize,
}

pub(crate) struct PageCache {
    inner: Mutex<Inner>,
    budget: usize,
    max_age: Duration,
    hits: Arc<AtomicU64>,
    misses: Arc<AtomicU64>,
}

impl PageCache {
    /// `budget` bytes of pages (0: off); `url_ttl` is the lifetime of the attachment URLs
    /// the pages hold.
    pub(crate) fn new(
        budget: usize,
        url_ttl: Duration,
        hits: Arc<AtomicU64>,
        misses: Arc<AtomicU64>,
    ) -> Self {
        PageCache {
            inner: Mutex::new(Inner::default()),
            budget,
            max_age: MAX_AGE.min(url_ttl / 2),
            hits,
            misses,
        }
    }

    /// The page, if kept and fresh.
    pub(crate) fn get(&self, conversation: Uuid, key: Key) -> Option<Page> {
        if self.budget == 0 {
            return None;
        }
        let inner = sync::lock(&self.inner);
        let found = inner
            .live
            .then(|| inner.slots.get(&conversation))
            .flatten()
            .and_then(|s| s.entries.iter().find(|e| e.key == key))
            .filter(|e| e.at.elapsed() < self.max_age)
            .map(|e| e.page.clone());
        drop(inner);
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Starts a read from PostgreSQL of one of the conversation's pages: taken before the
    /// read, so that a change committed during it keeps its result out of the cache.
    pub(crate) fn ticket(&self, conversation: Uuid) -> Ticket<'_> {
        let mut inner = sync::lock(&self.inner);
        let slot = inner.slots.entry(conversation).or_default();
        slot.readers += 1;
        Ticket {
            cache: self,
            conversation,
            version: slot.version,
        }
    }

    /// Drops the conversation's pages (it changed), and makes reads in flight not keep
    /// theirs.
    pub(crate) fn invalidate(&self, conversation: Uuid) {
        let mut inner = sync::lock(&self.inner);
        let Some(slot) = inner.slots.get_mut(&conversation) else {
            return;
        };
        slot.version += 1;
        let freed: usize = slot.entries.drain(..).map(|e| e.size()).sum();
        let idle = slot.readers == 0;
        inner.bytes -= freed;
        if idle {
            inner.slots.remove(&conversation);
        }
    }

    /// The subscription is lost: drop everything and keep nothing until [`PageCache::resume`].
    pub(crate) fn suspend(&self) {
        let mut inner = sync::lock(&self.inner);
        inner.live = false;
        Self::drop_all(&mut inner);
    }

    /// The subscription is (back) up: start empty, since changes may have been missed.
    pub(crate) fn resume(&self) {
        let mut inner = sync::lock(&self.inner);
        Self::drop_all(&mut inner);
        inner.live = true;
    }

    fn drop_all(inner: &mut Inner) {
        inner.slots.retain(|_, s| {
            s.version += 1;
            s.entries.clear();
            s.readers > 0
        });
        inner.bytes = 0;
    }

    fn finish(&self, conversation: Uuid, version: u64, page: Option<(Key, Page)>) {
        let mut inner = sync::lock(&self.inner);
        let inner = &mut *inner;
        let Some(slot) = inner.slots.get_mut(&conversation) else {
            return;
        };
        slot.readers -= 1;
        if let Some((key, page)) = page {
            let entry = Entry {
                key,
                page,
                at: Instant::now(),
            };
            let size = entry.size();
            if inner.live && slot.version == version && size <= self.budget {
                let mut freed = 0;
                if let Some(i) = slot.entries.iter().position(|e| e.key == key) {
                    freed += slot.entries.remove(i).size();
                } else if slot.entries.len() >= PAGES_PER_CONVERSATION {
                    freed += slot.entries.remove(0).size();
                }
                slot.entries.push(entry);
                inner.bytes = inner.bytes - freed + size;
            }
        }
        if slot.readers == 0 && slot.entries.is_empty() {
            inner.slots.remove(&conversation);
        }
        // Over budget: drop other conversations' pages, whichever come first (cheap to
        // read again; simpler than tracking recency on every hit).
        while inner.bytes > self.budget {
            let Some((&victim, _)) = inner
                .slots
                .iter()
                .find(|(id, s)| **id != conversation && !s.entries.is_empty())
            else {
                break;
            };
            let slot = inner.slots.get_mut(&victim).expect("found above");
            let freed: usize = slot.entries.drain(..).map(|e| e.size()).sum();
            if slot.readers == 0 {
                inner.slots.remove(&victim);
            }
            inner.bytes -= freed;
        }
    }

    #[cfg(test)]
    fn bytes(&self) -> usize {
        sync::lock(&self.inner).bytes
    }
}

/// A read of a page in flight (see [`PageCache::ticket`]). Dropped without
/// [`Ticket::keep`] (an error, a cancelled request), it keeps nothing.
pub(crate) struct Ticket<'a> {
    cache: &'a PageCache,
    conversation: Uuid,
    version: u64,
}

impl Ticket<'_> {
    /// Keeps the page read, unless the conversation changed since the ticket was taken.
    pub(crate) fn keep(self, key: Key, page: Page) {
        let me = std::mem::ManuallyDrop::new(self);
        me.cache
            .finish(me.conversation, me.version, Some((key, page)));
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        self.cache.finish(self.conversation, self.version, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(budget: usize) -> PageCache {
        let c = PageCache::new(
            budget,
            Duration::from_secs(3600),
            Arc::default(),
            Arc::default(),
        );
        c.resume();
        c
    }

    fn page(n: usize) -> Page {
        Page {
            body: Bytes::from(vec![b'x'; n]),
            link: None,
        }
    }

    const NEWEST: Key = Key {
        limit: 100,
        cursor: Cursor::Newest,
    };

    #[test]
    fn kept_then_dropped_by_a_change() {
        let c = cache(1 << 20);
        let conv = Uuid::now_v7();
        c.ticket(conv).keep(NEWEST, page(10));
        assert!(c.get(conv, NEWEST).is_some());
        assert!(c
            .get(
                conv,
                Key {
                    limit: 50,
                    cursor: Cursor::Newest
                }
            )
            .is_none());
        c.invalidate(conv);
        assert!(c.get(conv, NEWEST).is_none());
        assert_eq!(c.bytes(), 0);
    }

    #[test]
    fn a_page_read_across_a_change_is_not_kept() {
        let c = cache(1 << 20);
        let conv = Uuid::now_v7();
        let t = c.ticket(conv);
        c.invalidate(conv);
        t.keep(NEWEST, page(10));
        assert!(c.get(conv, NEWEST).is_none());
        // Another conversation's change does not matter.
        let t = c.ticket(conv);
        c.invalidate(Uuid::now_v7());
        t.keep(NEWEST, page(10));
        assert!(c.get(conv, NEWEST).is_some());
    }

    #[test]
    fn nothing_while_the_subscription_is_down() {
        let c = cache(1 << 20);
        let conv = Uuid::now_v7();
        c.ticket(conv).keep(NEWEST, page(10));
        let t = c.ticket(conv);
        c.suspend();
        assert!(c.get(conv, NEWEST).is_none());
        c.ticket(conv).keep(NEWEST, page(10));
        assert!(c.get(conv, NEWEST).is_none());
        c.resume();
        // Started before the subscription came back: it may have missed a change.
        t.keep(NEWEST, page(10));
        assert!(c.get(conv, NEWEST).is_none());
        c.ticket(conv).keep(NEWEST, page(10));
        assert!(c.get(conv, NEWEST).is_some());
    }

    #[test]
    fn bounded_by_bytes_and_pages() {
        let c = cache(10 * (1000 + OVERHEAD));
        for _ in 0..50 {
            c.ticket(Uuid::now_v7()).keep(NEWEST, page(1000));
            assert!(c.bytes() <= 10 * (1000 + OVERHEAD));
        }
        let conv = Uuid::now_v7();
        for limit in 1..=10 {
            let key = Key {
                limit,
                cursor: Cursor::Newest,
            };
            c.ticket(conv).keep(key, page(10));
        }
        let inner = sync::lock(&c.inner);
        assert_eq!(inner.slots[&conv].entries.len(), PAGES_PER_CONVERSATION);
        let sum: usize = inner
            .slots
            .values()
            .flat_map(|s| &s.entries)
            .map(Entry::size)
            .sum();
        assert_eq!(sum, inner.bytes);
        drop(inner);
        // Larger than the whole budget: not kept.
        let big = Uuid::now_v7();
        c.ticket(big).keep(NEWEST, page(100_000));
        assert!(c.get(big, NEWEST).is_none());
    }

    #[test]
    fn an_abandoned_read_leaves_nothing() {
        let c = cache(1 << 20);
        let conv = Uuid::now_v7();
        drop(c.ticket(conv));
        assert!(sync::lock(&c.inner).slots.is_empty());
    }

    #[test]
    fn off_with_no_budget() {
        let c = cache(0);
        let conv = Uuid::now_v7();
        c.ticket(conv).keep(NEWEST, page(1));
        assert!(c.get(conv, NEWEST).is_none());
    }
}
