//! Conversation member lists, cached in memory. The contract has no way to change a
//! conversation's members, so a cached list never goes stale; the cache is only bounded.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

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

pub(crate) struct MemberCache {
    map: RwLock<HashMap<Uuid, Arc<Members>>>,
    capacity: usize,
}

impl MemberCache {
    pub(crate) fn new(capacity: usize) -> Self {
        MemberCache {
            map: RwLock::new(HashMap::new()),
            capacity,
        }
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
        let client = pg.get().await?;
        let stmt = client
            .prepare_cached("SELECT user_id FROM conversation_members WHERE conversation_id = $1")
            .await?;
        let rows = client.query(&stmt, &[&conversation]).await?;
        // Every conversation has at least two members: none means it does not exist.
        if rows.is_empty() {
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
        let c = MemberCache::new(2);
        for _ in 0..5 {
            c.insert(
                Uuid::now_v7(),
                Arc::new(Members::new(vec!["a".into(), "b".into()])),
            );
        }
        assert!(c.map.read().unwrap().len() <= 2);
    }
}
