//! Conversation member lists, cached in memory, and the one way a membership change is
//! committed so that every instance follows it from the commit on.
//!
//! The cache serves the hot paths (sends, typing, fan-out). A change ([`commit_change`])
//! goes: publish "changing" → commit → raise the conversation's version in Redis and publish
//! "changed". Between the two markers every instance reads the list from PostgreSQL on each
//! use instead of caching it; since a Redis subscriber receives messages in publish order,
//! any event published after the commit (a commit notice, a relayed typing event) is
//! delivered with a list read after the commit. Sends check the version the list was read
//! at against Redis's in the same script that queues them ([`crate::queue`]), so a send that
//! starts after the change was answered is authorised by the new list, even on an instance
//! whose subscription lags or is down. Every other route asks PostgreSQL ([`readable`]), but
//! history pages served from memory ask the cache ([`readable_cached`]).
//!
//! Ids that name no conversation are remembered for a few seconds, so a client repeating
//! one does not cost a query each time; creating a conversation clears that on every instance.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use platform_core::pools::PgPool;

use crate::State;
use platform_core::sync;
use platform_core::ApiError;
use uuid::Uuid;

/// The sorted member ids of one conversation, as of one membership version.
#[derive(Debug)]
pub(crate) struct Members {
    ids: Box<[Box<str>]>,
    /// `conversations.member_version` when the list was read.
    version: i64,
}

impl Members {
    pub(crate) fn new(mut ids: Vec<String>, version: i64) -> Self {
        ids.sort_unstable();
        Members {
            ids: ids.into_iter().map(String::into_boxed_str).collect(),
            version,
        }
    }

    pub(crate) fn contains(&self, user: &str) -> bool {
        self.ids.binary_search_by(|m| (**m).cmp(user)).is_ok()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &str> {
        self.ids.iter().map(|s| &**s)
    }

    pub(crate) fn version(&self) -> i64 {
        self.version
    }
}

/// How long an id that names no conversation is remembered as such.
const UNKNOWN_TTL: Duration = Duration::from_secs(10);
/// Unknown ids remembered at most; past this the set starts over.
const UNKNOWN_MAX: usize = 10_000;
/// How long a conversation stays uncached after its "changing" marker when the "changed"
/// one never comes (the changing instance died between the two).
const CHANGING_TTL: Duration = Duration::from_secs(10);
/// How long nothing is cached after the subscription came back: a change whose "changing"
/// marker was missed while it was down may still be committing (its "changed" follows
/// within milliseconds).
const RESUBSCRIBED_QUIET: Duration = Duration::from_secs(2);

pub(crate) struct MemberCache {
    map: RwLock<HashMap<Uuid, Arc<Members>>>,
    /// Conversations between their "changing" and "changed" markers: never cached.
    changing: Mutex<HashMap<Uuid, Instant>>,
    /// Nothing is cached before this (set when the subscription comes back).
    quiet_until: Mutex<Option<Instant>>,
    /// Bumped (under the map's lock) whenever lists are dropped: a list read from
    /// PostgreSQL before that is not kept, however late its query returns.
    epoch: AtomicU64,
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
            changing: Mutex::new(HashMap::new()),
            quiet_until: Mutex::new(None),
            epoch: AtomicU64::new(0),
            unknown: RwLock::new(HashMap::new()),
            capacity,
            lookups,
        }
    }

    /// Drops a conversation's cached list (its members changed, or it was deleted).
    pub(crate) fn forget(&self, conversation: Uuid) {
        let mut map = sync::write(&self.map);
        self.epoch.fetch_add(1, Ordering::AcqRel);
        map.remove(&conversation);
    }

    /// A change of the conversation's members is about to commit: read it from PostgreSQL
    /// on every use until [`MemberCache::changed`].
    pub(crate) fn changing(&self, conversation: Uuid) {
        let mut map = sync::write(&self.map);
        self.epoch.fetch_add(1, Ordering::AcqRel);
        map.remove(&conversation);
        sync::lock(&self.changing).insert(conversation, Instant::now());
    }

    /// The change committed (or failed): cache the conversation's list again.
    pub(crate) fn changed(&self, conversation: Uuid) {
        let mut map = sync::write(&self.map);
        self.epoch.fetch_add(1, Ordering::AcqRel);
        map.remove(&conversation);
        sync::lock(&self.changing).remove(&conversation);
    }

    /// Drops everything, and caches nothing for a moment: markers may have been missed
    /// while the subscription was down.
    pub(crate) fn clear(&self) {
        let mut map = sync::write(&self.map);
        self.epoch.fetch_add(1, Ordering::AcqRel);
        map.clear();
        sync::lock(&self.changing).clear();
        *sync::lock(&self.quiet_until) = Some(Instant::now() + RESUBSCRIBED_QUIET);
    }

    fn is_quiet(&self) -> bool {
        let mut quiet = sync::lock(&self.quiet_until);
        match *quiet {
            Some(until) if Instant::now() < until => true,
            Some(_) => {
                *quiet = None;
                false
            }
            None => false,
        }
    }

    fn is_changing(&self, conversation: &Uuid) -> bool {
        let mut changing = sync::lock(&self.changing);
        if changing.is_empty() {
            return false;
        }
        match changing.get(conversation) {
            Some(at) if at.elapsed() < CHANGING_TTL => true,
            Some(_) => {
                changing.remove(conversation);
                false
            }
            None => false,
        }
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
        let epoch = self.epoch.load(Ordering::Acquire);
        self.lookups.fetch_add(1, Ordering::Relaxed);
        let client = pg.get().await?;
        let stmt = client
            .prepare_cached(
                "SELECT c.member_version, m.user_id FROM conversations c
                 JOIN conversation_members m ON m.conversation_id = c.id WHERE c.id = $1",
            )
            .await?;
        let rows = client.query(&stmt, &[&conversation]).await?;
        // A conversation nobody is left in is deleted: none means it does not exist.
        let Some(first) = rows.first() else {
            let mut unknown = sync::write(&self.unknown);
            if unknown.len() >= UNKNOWN_MAX {
                unknown.clear();
            }
            unknown.insert(conversation, Instant::now());
            return Ok(None);
        };
        let version = first.get(0);
        let members = Arc::new(Members::new(
            rows.iter().map(|r| r.get(1)).collect(),
            version,
        ));
        self.keep(conversation, &members, epoch);
        Ok(Some(members))
    }

    /// Caches a list read at `epoch`, unless lists were dropped since or it is mid-change.
    fn keep(&self, conversation: Uuid, members: &Arc<Members>, epoch: u64) {
        let mut map = sync::write(&self.map);
        if self.epoch.load(Ordering::Acquire) != epoch
            || self.is_changing(&conversation)
            || self.is_quiet()
        {
            return;
        }
        if map.len() >= self.capacity {
            // Rare and cheap to refill: simpler than tracking recency on every read.
            map.clear();
        }
        map.insert(conversation, members.clone());
    }

    /// Caches the list of a conversation this instance just created.
    pub(crate) fn insert(&self, conversation: Uuid, members: Arc<Members>) {
        let epoch = self.epoch.load(Ordering::Acquire);
        self.keep(conversation, &members, epoch);
    }
}

/// 404 when the conversation does not exist, 403 when an authenticated caller is not a
/// member. Asks PostgreSQL, not the cache: these routes query it anyway, and so they follow
/// a membership change from its commit on, on every instance.
pub(crate) async fn readable(
    state: &State,
    caller: Option<&str>,
    conversation: Uuid,
) -> Result<(), ApiError> {
    let client = state.pg.get().await?;
    let stmt = client
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM conversation_members
                            WHERE conversation_id = $1 AND user_id = $2)
             FROM conversations WHERE id = $1",
        )
        .await?;
    let me = caller.unwrap_or("");
    match client.query_opt(&stmt, &[&conversation, &me]).await? {
        None => Err(crate::conversations::not_found(&conversation)),
        Some(row) if caller.is_some() && !row.get::<_, bool>(0) => Err(ApiError::forbidden(
            format!("you are not a member of conversation {conversation}"),
        )),
        Some(_) => Ok(()),
    }
}

/// [`readable`] from the member cache: for reads served from memory ([`crate::pages`]),
/// which would otherwise query PostgreSQL for this alone. A removal counts from the moment
/// its "changing" marker reaches this instance (on the removing one, before it answers).
pub(crate) async fn readable_cached(
    state: &State,
    caller: Option<&str>,
    conversation: Uuid,
) -> Result<(), ApiError> {
    match state.members.get(&state.pg, conversation).await? {
        None => Err(crate::conversations::not_found(&conversation)),
        Some(m) if caller.is_some_and(|me| !m.contains(me)) => Err(ApiError::forbidden(format!(
            "you are not a member of conversation {conversation}"
        ))),
        Some(_) => Ok(()),
    }
}

/// Commits a membership change made in `tx` (which bumped `conversations.member_version`,
/// or deleted the conversation) so that every instance follows it from the commit on (see
/// the module's documentation); `contacts` are the users whose contacts it changes (who
/// sees whom online); `added` are the users the change added to an existing conversation
/// (their recovery replay of it starts after the commit). 503 when Redis cannot carry the "changing" marker: the change is then
/// not made at all.
pub(crate) async fn commit_change(
    state: &State,
    conversation: Uuid,
    tx: tokio_postgres::Transaction<'_>,
    contacts: &[&str],
    added: &[&str],
) -> Result<(), ApiError> {
    // A deleted conversation outranks every version: stale lists of it are all refused.
    let version: i64 = tx
        .query_opt(
            "SELECT member_version FROM conversations WHERE id = $1",
            &[&conversation],
        )
        .await?
        .map_or(i64::MAX, |r| r.get(0));
    crate::realtime::publish_members(state, conversation, crate::realtime::MEMBERS_CHANGING, &[])
        .await?;
    let committed = tx.commit().await;
    // Removal revokes attachment URLs and deletion removes messages: this instance's pages
    // go before it answers (the others drop theirs on the markers).
    state.pages.invalidate(conversation);
    // Only a committed version is raised: one that was not would refuse every send.
    let raised = match committed {
        Ok(()) => {
            state
                .queue
                .raise_version(
                    &state.redis,
                    state.config.recovery_window,
                    &conversation,
                    version,
                    added,
                )
                .await
        }
        Err(_) => Ok(()),
    };
    state.members.changed(conversation);
    let published = crate::realtime::publish_members(
        state,
        conversation,
        crate::realtime::MEMBERS_CHANGED,
        contacts,
    )
    .await;
    committed?;
    // Committed: the change holds. What could not be told is logged; instances that missed
    // it follow once their markers expire (CHANGING_TTL) or their subscription restarts.
    if let Err(e) = raised {
        tracing::error!(%conversation, error = %e, "membership version not raised in Redis");
    }
    if let Err(e) = published {
        tracing::error!(%conversation, error = %e, "membership change not announced");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn membership_is_exact() {
        let m = Members::new(vec!["user-2".into(), "user-1".into(), "a".into()], 1);
        assert!(m.contains("user-1"));
        assert!(m.contains("a"));
        assert!(!m.contains("user"));
        assert!(!m.contains("user-10"));
        assert_eq!(m.iter().collect::<Vec<_>>(), ["a", "user-1", "user-2"]);
    }

    #[test]
    fn a_list_read_around_a_change_is_not_kept() {
        let c = MemberCache::new(10, Arc::default());
        let conv = Uuid::now_v7();
        let list = Arc::new(Members::new(vec!["a".into()], 1));
        let cached = |c: &MemberCache| c.map.read().unwrap().contains_key(&conv);
        // Read before the "changing" marker, answered after it.
        let before = c.epoch.load(Ordering::Acquire);
        c.changing(conv);
        c.keep(conv, &list, before);
        assert!(!cached(&c));
        // Read while the change is under way.
        let during = c.epoch.load(Ordering::Acquire);
        c.keep(conv, &list, during);
        assert!(!cached(&c), "mid-change lists are read on every use");
        // Read during the change, answered after "changed".
        c.changed(conv);
        c.keep(conv, &list, during);
        assert!(!cached(&c));
        // Read after: kept again.
        let after = c.epoch.load(Ordering::Acquire);
        c.keep(conv, &list, after);
        assert!(cached(&c));
        // Losing the subscription drops everything, markers included, and nothing is kept
        // for a moment after it comes back.
        c.changing(conv);
        c.clear();
        let now = c.epoch.load(Ordering::Acquire);
        c.keep(conv, &list, now);
        assert!(!cached(&c), "a change may still be committing");
        *c.quiet_until.lock().unwrap() = Some(Instant::now());
        c.keep(conv, &list, now);
        assert!(cached(&c));
    }

    #[test]
    fn cache_is_bounded() {
        let c = MemberCache::new(2, Arc::default());
        for _ in 0..5 {
            c.insert(
                Uuid::now_v7(),
                Arc::new(Members::new(vec!["a".into(), "b".into()], 1)),
            );
        }
        assert!(c.map.read().unwrap().len() <= 2);
    }
}
