//! Conversation member lists, cached in memory. A list changes with a membership change
//! (`lifecycle`), committed through [`commit_change`]: the instance that commits it tells
//! every instance (`realtime::MEMBERS_CHANGED`), and each forgets its copy. Ids that name no
//! conversation are remembered for a few seconds, so a client repeating one (typing into a
//! conversation that does not exist) does not cost a query each time; creating a
//! conversation clears that on every instance.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use platform_core::pools::PgPool;

use crate::State;
use platform_core::sync;
use platform_core::ApiError;
use uuid::Uuid;

/// The sorted member ids of one conversation.
#[derive(Debug)]
pub(crate) struct Members {
    ids: Box<[Box<str>]>,
}

impl Members {
    pub(crate) fn new(mut ids: Vec<String>) -> Self {
        ids.sort_unstable();
        Members {
            ids: ids.into_iter().map(String::into_boxed_str).collect(),
        }
    }

    pub(crate) fn contains(&self, user: &str) -> bool {
        self.ids.binary_search_by(|m| (**m).cmp(user)).is_ok()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &str> {
        self.ids.iter().map(|s| &**s)
    }
}

/// How long an id that names no conversation is remembered as such.
const UNKNOWN_TTL: Duration = Duration::from_secs(10);
/// Unknown ids remembered at most; past this the set starts over.
const UNKNOWN_MAX: usize = 10_000;

pub(crate) struct MemberCache {
    map: RwLock<HashMap<Uuid, Arc<Members>>>,
    /// Ids found to name no conversation, and when.
    unknown: RwLock<HashMap<Uuid, Instant>>,
    capacity: usize,
    /// Member lists read from PostgreSQL (the `chat_member_lookups_total` metric).
    lookups: Arc<AtomicU64>,
}

impl MemberCache {
    pub(crate) fn new(capacity: usize, lookups: Arc<AtomicU64>) -> Self {
        MemberCache {
            map: RwLock::new(HashMap::new()),
            unknown: RwLock::new(HashMap::new()),
            capacity,
            lookups,
        }
    }

    /// Drops a conversation's cached list (its members changed, or it was deleted).
    pub(crate) fn forget(&self, conversation: Uuid) {
        sync::write(&self.map).remove(&conversation);
    }

    /// A conversation now exists: it is no longer remembered as unknown.
    pub(crate) fn created(&self, conversation: Uuid) {
        let mut unknown = sync::write(&self.unknown);
        if !unknown.is_empty() {
            unknown.remove(&conversation);
        }
    }

    fn known_unknown(&self, conversation: &Uuid) -> bool {
        let unknown = sync::read(&self.unknown);
        unknown
            .get(conversation)
            .is_some_and(|at| at.elapsed() < UNKNOWN_TTL)
    }

    /// The members of a conversation, or `None` when it does not exist.
    pub(crate) async fn get(
        &self,
        pg: &PgPool,
        conversation: Uuid,
    ) -> Result<Option<Arc<Members>>, ApiError> {
        if let Some(m) = sync::read(&self.map).get(&conversation) {
            return Ok(Some(m.clone()));
        }
        if self.known_unknown(&conversation) {
            return Ok(None);
        }
        self.lookups.fetch_add(1, Ordering::Relaxed);
        let client = pg.get().await?;
        let stmt = client
            .prepare_cached("SELECT user_id FROM conversation_members WHERE conversation_id = $1")
            .await?;
        let rows = client.query(&stmt, &[&conversation]).await?;
        // A conversation nobody is left in is deleted: none means it does not exist.
        if rows.is_empty() {
            let mut unknown = sync::write(&self.unknown);
            if unknown.len() >= UNKNOWN_MAX {
                unknown.clear();
            }
            unknown.insert(conversation, Instant::now());
            return Ok(None);
        }
        let members = Arc::new(Members::new(rows.iter().map(|r| r.get(0)).collect()));
        self.insert(conversation, members.clone());
        Ok(Some(members))
    }

    pub(crate) fn insert(&self, conversation: Uuid, members: Arc<Members>) {
        let mut map = sync::write(&self.map);
        if map.len() >= self.capacity {
            // Rare and cheap to refill: simpler than tracking recency on every read.
            map.clear();
        }
        map.insert(conversation, members);
    }
}

/// The members of a conversation the caller may read: 404 when it does not exist, 403 when
/// an authenticated caller is not a member.
pub(crate) async fn readable(
    state: &State,
    caller: Option<&str>,
    conversation: Uuid,
) -> Result<Arc<Members>, ApiError> {
    let members = state
        .members
        .get(&state.pg, conversation)
        .await?
        .ok_or_else(|| crate::conversations::not_found(&conversation))?;
    match caller {
        Some(me) if !members.contains(me) => Err(ApiError::forbidden(format!(
            "you are not a member of conversation {conversation}"
        ))),
        _ => Ok(members),
    }
}

/// Commits a membership change of `conversation` and makes every instance follow it: this
/// one forgets its member list at once, the others on `realtime::MEMBERS_CHANGED`. Every
/// membership change ends here instead of in `tx.commit()`.
pub(crate) async fn commit_change(
    state: &State,
    conversation: Uuid,
    tx: tokio_postgres::Transaction<'_>,
) -> Result<(), ApiError> {
    tx.commit().await?;
    state.members.forget(conversation);
    let forget = platform_core::events::Envelope {
        event: crate::realtime::MEMBERS_CHANGED.to_string(),
        conversation: Some(conversation),
        users: Vec::new(),
        except: None,
        data: serde_json::Value::Null,
    };
    if let Err(e) =
        platform_core::events::publish(&state.redis, &state.queue.keys().events, &forget).await
    {
        tracing::warn!(%conversation, error = %e, "membership change not published");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn membership_is_exact() {
        let m = Members::new(vec!["user-2".into(), "user-1".into(), "a".into()]);
        assert!(m.contains("user-1"));
        assert!(m.contains("a"));
        assert!(!m.contains("user"));
        assert!(!m.contains("user-10"));
        assert_eq!(m.iter().collect::<Vec<_>>(), ["a", "user-1", "user-2"]);
    }

    #[test]
    fn cache_is_bounded() {
        let c = MemberCache::new(2, Arc::default());
        for _ in 0..5 {
            c.insert(
                Uuid::now_v7(),
                Arc::new(Members::new(vec!["a".into(), "b".into()])),
            );
        }
        assert!(c.map.read().unwrap().len() <= 2);
    }
}
