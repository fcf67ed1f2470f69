//! Who is online, shared by every chat instance through Redis, and the `presence:update`
//! lists sent to each user: itself plus the online users it shares a conversation with.
//!
//! Each instance keeps its online users in a Redis hash of its own and refreshes a heartbeat
//! in a sorted set; the hash expires when the instance stops refreshing it, so a crashed
//! instance's users go offline within `presence_stale` by themselves. A user's first socket or last
//! socket on an instance publishes a change; every instance then re-reads the live hashes,
//! works out whose lists changed, and sends them. One pass at most every `presence_coalesce`, so a
//! thousand users coming online costs each recipient a few updates, always ending with the
//! current list.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use platform_core::events::Envelope;
use platform_core::socketio::SocketIo;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{emit_to_users, PRESENCE_CHANGED};
use crate::State;
use platform_core::events::name;
use platform_core::sync;

const CONTACTS_TTL: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Online {
    pub user_id: String,
    pub display_name: String,
}

/// When a user's contacts were read, and who they are.
type Contacts = (Instant, Arc<ContactSets>);

/// A user's contacts: the member list of each of its conversations. Lists are shared by
/// every local user of a conversation (interned by [`Presence::contacts_of`]), so a group of
/// N members online here costs N names rather than N for each of them (a 1,000-member group
/// online on one instance held a million names, about 56 MB, when each user had its own).
#[derive(Debug, Default)]
pub(crate) struct ContactSets(Vec<Arc<HashSet<String>>>);

impl ContactSets {
    fn contains(&self, user: &str) -> bool {
        self.0.iter().any(|s| s.contains(user))
    }

    /// Names held, counting a user once per shared conversation.
    fn names(&self) -> usize {
        self.0.iter().map(|s| s.len()).sum()
    }
}

struct LocalUser {
    display_name: String,
    sockets: usize,
}

pub(crate) struct Presence {
    state: Arc<State>,
    io: SocketIo,
    instance: String,
    local: Mutex<HashMap<String, LocalUser>>,
    /// Local users owed a list whatever changed (just joined, or new contacts).
    owed: Mutex<HashSet<String>>,
    contacts: Mutex<HashMap<String, Contacts>>,
    /// The member list of each conversation some cached [`ContactSets`] holds.
    member_lists: Mutex<HashMap<uuid::Uuid, Weak<HashSet<String>>>>,
    wake: Notify,
    /// Sockets that dropped without meaning to, by pid, whose user is shown offline only at
    /// the end of the grace: the user, and the timer that will apply the departure.
    departing: Mutex<HashMap<Box<str>, (String, tokio::task::AbortHandle)>>,
}

impl Presence {
    pub(crate) fn new(state: Arc<State>, io: SocketIo) -> Self {
        Presence {
            state,
            io,
            instance: uuid::Uuid::now_v7().simple().to_string(),
            local: Mutex::new(HashMap::new()),
            owed: Mutex::new(HashSet::new()),
            contacts: Mutex::new(HashMap::new()),
            member_lists: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            departing: Mutex::new(HashMap::new()),
        }
    }

    fn hash_key(&self, instance: &str) -> String {
        format!(
            "{}:presence:{instance}",
            self.state.queue.keys().namespace()
        )
    }

    /// This instance's id in the shared view.
    pub(crate) fn instance(&self) -> &str {
        &self.instance
    }

    /// The sorted set of live instances, scored by their last heartbeat (ms).
    pub(crate) fn instances_key(&self) -> String {
        format!("{}:presence:instances", self.state.queue.keys().namespace())
    }

    /// A socket of `user` said who it is.
    pub(crate) async fn joined(&self, user: &str, display_name: &str) {
        let first = {
            let mut local = sync::lock(&self.local);
            let entry = local.entry(user.to_string()).or_insert_with(|| LocalUser {
                display_name: display_name.to_string(),
                sockets: 0,
            });
            entry.sockets += 1;
            entry.display_name = display_name.to_string();
            entry.sockets == 1
        };
        sync::lock(&self.owed).insert(user.to_string());
        if first {
            let write = async {
                let mut conn = self.state.redis.get().await?;
                redis::pipe()
                    .cmd("HSET")
                    .arg(self.hash_key(&self.instance))
                    .arg(user)
                    .arg(display_name)
                    .ignore()
                    .cmd("ZADD")
                    .arg(self.instances_key())
                    .arg(platform_core::time::now_millis())
                    .arg(&self.instance)
                    .ignore()
                    .query_async::<()>(&mut *conn)
                    .await?;
                Ok(())
            };
            self.change(user, "recorded", write).await;
        }
        self.wake.notify_one();
    }

    /// A socket of `user` closed.
    pub(crate) async fn left(&self, user: &str) {
        let last = {
            let mut local = sync::lock(&self.local);
            match local.get_mut(user) {
                Some(u) if u.sockets > 1 => {
                    u.sockets -= 1;
                    false
                }
                Some(_) => {
                    local.remove(user);
                    true
                }
                None => false,
            }
        };
        if last {
            let write = async {
                let mut conn = self.state.redis.get().await?;
                let _: i64 = redis::cmd("HDEL")
                    .arg(self.hash_key(&self.instance))
                    .arg(user)
                    .query_async(&mut *conn)
                    .await?;
                Ok(())
            };
            self.change(user, "cleared", write).await;
        }
    }

    /// A socket of `user` (session `pid`) dropped without meaning to: its departure is
    /// applied after `grace`, or as soon as the session is resumed anywhere
    /// ([`Presence::resumed`]), whichever comes first. So a recovery shows nothing, and a user
    /// who then leaves on purpose is shown offline at once.
    pub(crate) fn leave_later(self: &Arc<Self>, pid: &str, user: &str, grace: Duration) {
        let me = self.clone();
        let key: Box<str> = pid.into();
        // The timer is registered under the lock it takes when it fires: however short the
        // grace, it finds its own entry.
        let mut departing = sync::lock(&self.departing);
        let timer = {
            let key = key.clone();
            tokio::spawn(async move {
                tokio::time::sleep(grace).await;
                let due = sync::lock(&me.departing).remove(&key);
                if let Some((user, _)) = due {
                    me.left(&user).await;
                }
            })
        };
        let earlier = departing.insert(key, (user.to_string(), timer.abort_handle()));
        drop(departing);
        if let Some((user, timer)) = earlier {
            // The same session dropped twice here: the first departure is due now.
            timer.abort();
            let me = self.clone();
            tokio::spawn(async move { me.left(&user).await });
        }
    }

    /// Session `pid` was resumed (on any instance, which counts its user online again): a
    /// departure still waiting for it here is applied now.
    pub(crate) async fn resumed(&self, pid: &str) {
        let due = sync::lock(&self.departing).remove(pid);
        if let Some((user, timer)) = due {
            timer.abort();
            self.left(&user).await;
        }
    }

    /// Applies `write`, a change of `user`'s entry in the shared view, then announces it. A
    /// failed write is only logged: the next heartbeat writes this instance's whole view.
    async fn change(
        &self,
        user: &str,
        what: &str,
        write: impl std::future::Future<Output = Result<(), platform_core::ApiError>>,
    ) {
        if let Err(e) = write.await {
            tracing::warn!(user, error = %e, "presence not {what}; the next heartbeat retries");
        }
        self.announce().await;
    }

    async fn announce(&self) {
        let env = Envelope {
            event: PRESENCE_CHANGED.to_string(),
            conversation: None,
            users: Vec::new(),
            except: None,
            data: Value::Null,
        };
        if let Err(e) = crate::realtime::publish(&self.state, &env).await {
            tracing::warn!(error = %e, "presence change not published");
            self.wake.notify_one();
        }
    }

    /// Some instance's online users changed.
    pub(crate) fn changed(&self) {
        self.wake.notify_one();
    }

    /// A conversation was created or its members changed: these users' contacts changed.
    pub(crate) fn contacts_changed(&self, users: &[String]) {
        {
            let mut contacts = sync::lock(&self.contacts);
            for u in users {
                contacts.remove(u);
            }
        }
        {
            let local = sync::lock(&self.local);
            let mut owed = sync::lock(&self.owed);
            owed.extend(users.iter().filter(|u| local.contains_key(*u)).cloned());
        }
        self.wake.notify_one();
    }

    /// The presence loop: heartbeats, re-reads, coalesced updates. Until shutdown.
    pub(crate) async fn run(self: Arc<Self>, coalesce: Duration, shutdown: CancellationToken) {
        let mut global: HashMap<String, String> = HashMap::new();
        let mut next_beat = Instant::now();
        let heartbeat = self.stale() / 3;
        loop {
            let wait = next_beat.saturating_duration_since(Instant::now());
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
                () = shutdown.cancelled() => break,
            }
            if Instant::now() >= next_beat {
                if let Err(e) = self.heartbeat().await {
                    tracing::warn!(error = %e, "presence heartbeat failed");
                }
                next_beat = Instant::now() + heartbeat;
            }
            match self.read_global().await {
                Ok(now) => {
                    self.send_updates(&global, &now).await;
                    global = now;
                }
                Err(e) => tracing::warn!(error = %e, "cannot read presence"),
            }
            tokio::select! {
                () = tokio::time::sleep(coalesce) => {}
                () = shutdown.cancelled() => break,
            }
        }
        self.withdraw().await;
    }

    fn stale(&self) -> Duration {
        self.state.config.presence_stale
    }

    async fn heartbeat(&self) -> Result<(), platform_core::ApiError> {
        let users: Vec<(String, String)> = sync::lock(&self.local)
            .iter()
            .map(|(u, l)| (u.clone(), l.display_name.clone()))
            .collect();
        let key = self.hash_key(&self.instance);
        let mut pipe = redis::pipe();
        pipe.cmd("DEL").arg(&key).ignore();
        if !users.is_empty() {
            pipe.cmd("HSET").arg(&key).arg(&users).ignore();
        }
        pipe.cmd("PEXPIRE")
            .arg(&key)
            .arg(self.stale().as_millis() as u64 + 5000)
            .ignore();
        pipe.cmd("ZADD")
            .arg(self.instances_key())
            .arg(platform_core::time::now_millis())
            .arg(&self.instance)
            .ignore();
        pipe.cmd("ZREMRANGEBYSCORE")
            .arg(self.instances_key())
            .arg("-inf")
            .arg(platform_core::time::now_millis() - 4 * self.stale().as_millis() as i64)
            .ignore();
        let mut conn = self.state.redis.get().await?;
        pipe.atomic().query_async::<()>(&mut *conn).await?;
        Ok(())
    }

    /// Leaves the shared view at shutdown, so others do not wait for the expiry. With a
    /// presence grace (recovery on), this instance's users stay online for it instead: their
    /// clients are reconnecting elsewhere, and a restart shows no offline/online flicker.
    /// Those who do not come back go offline when the view expires (every instance re-reads
    /// it at each heartbeat).
    async fn withdraw(&self) {
        let grace = self.state.config.presence_grace;
        let r = async {
            let mut conn = self.state.redis.get().await?;
            let mut pipe = redis::pipe();
            if grace.is_zero() {
                pipe.cmd("DEL")
                    .arg(self.hash_key(&self.instance))
                    .ignore()
                    .cmd("ZREM")
                    .arg(self.instances_key())
                    .arg(&self.instance)
                    .ignore();
            } else {
                // Read as live while its heartbeat is younger than `presence_stale`: dated so
                // that it stays so for the grace, and the hash lives as long.
                let until = platform_core::time::now_millis() + grace.as_millis() as i64
                    - self.stale().as_millis() as i64;
                pipe.cmd("PEXPIRE")
                    .arg(self.hash_key(&self.instance))
                    .arg(grace.as_millis() as u64)
                    .ignore()
                    .cmd("ZADD")
                    .arg(self.instances_key())
                    .arg(until)
                    .arg(&self.instance)
                    .ignore();
            }
            pipe.query_async::<()>(&mut *conn).await?;
            Ok::<_, platform_core::ApiError>(())
        }
        .await;
        if r.is_ok() && grace.is_zero() {
            self.announce().await;
        }
    }

    /// Every live instance's online users.
    async fn read_global(&self) -> Result<HashMap<String, String>, platform_core::ApiError> {
        let mut conn = self.state.redis.get().await?;
        let since = platform_core::time::now_millis() - self.stale().as_millis() as i64;
        let live: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(self.instances_key())
            .arg(since)
            .arg("+inf")
            .query_async(&mut *conn)
            .await?;
        let mut pipe = redis::pipe();
        for i in &live {
            pipe.cmd("HGETALL").arg(self.hash_key(i));
        }
        let hashes: Vec<HashMap<String, String>> = if live.is_empty() {
            Vec::new()
        } else {
            pipe.query_async(&mut *conn).await?
        };
        Ok(hashes.into_iter().flatten().collect())
    }

    async fn send_updates(&self, before: &HashMap<String, String>, now: &HashMap<String, String>) {
        let changed = changed_users(before, now);
        let owed = std::mem::take(&mut *sync::lock(&self.owed));
        if changed.is_empty() && owed.is_empty() {
            return;
        }
        let local: Vec<String> = sync::lock(&self.local).keys().cloned().collect();
        for r in local {
            let contacts = match self.contacts_of(&r).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(user = %r, error = %e, "presence update skipped");
                    continue;
                }
            };
            let concerned = owed.contains(&r)
                || changed.contains(r.as_str())
                || changed.iter().any(|c| contacts.contains(c));
            if !concerned {
                continue;
            }
            let list = visible_to(&r, &contacts, now);
            emit_to_users(
                &self.io,
                [r.as_str()],
                None,
                name::PRESENCE_UPDATE,
                &list,
                None,
            );
        }
    }

    /// Users who share a conversation with `user`, cached for a while.
    async fn contacts_of(&self, user: &str) -> Result<Arc<ContactSets>, platform_core::ApiError> {
        if let Some((at, c)) = sync::lock(&self.contacts).get(user) {
            if at.elapsed() < CONTACTS_TTL {
                return Ok(c.clone());
            }
        }
        let client = self.state.pg.get().await?;
        let stmt = client
            .prepare_cached(
                "SELECT other.conversation_id, other.user_id FROM conversation_members mine
                 JOIN conversation_members other ON other.conversation_id = mine.conversation_id
                 WHERE mine.user_id = $1
                 ORDER BY other.conversation_id",
            )
            .await?;
        let rows = client.query(&stmt, &[&user]).await?;
        let mut lists: Vec<(uuid::Uuid, HashSet<String>)> = Vec::new();
        for r in &rows {
            let conv: uuid::Uuid = r.get(0);
            match lists.last_mut() {
                Some((c, members)) if *c == conv => {
                    members.insert(r.get(1));
                }
                _ => lists.push((conv, HashSet::from([r.get(1)]))),
            }
        }
        let sets = ContactSets(self.intern(lists));
        let sets = Arc::new(sets);
        sync::lock(&self.contacts).insert(user.to_string(), (Instant::now(), sets.clone()));
        Ok(sets)
    }

    /// The shared copy of each member list: the one already held when it is the same (as
    /// read now), else this one, which later readers then share.
    fn intern(&self, lists: Vec<(uuid::Uuid, HashSet<String>)>) -> Vec<Arc<HashSet<String>>> {
        let mut held = sync::lock(&self.member_lists);
        let out = lists
            .into_iter()
            .map(
                |(conv, members)| match held.get(&conv).and_then(Weak::upgrade) {
                    Some(same) if *same == members => same,
                    _ => {
                        let list = Arc::new(members);
                        held.insert(conv, Arc::downgrade(&list));
                        list
                    }
                },
            )
            .collect();
        // Lists no cached user holds any more: dropped once they are most of the map.
        if held.len() > 1024 {
            let live = held.values().filter(|w| w.strong_count() > 0).count();
            if live * 2 < held.len() {
                held.retain(|_, w| w.strong_count() > 0);
            }
        }
        out
    }
}

/// Users who came, went, or changed their display name.
pub(crate) fn changed_users<'a>(
    before: &'a HashMap<String, String>,
    now: &'a HashMap<String, String>,
) -> HashSet<&'a str> {
    let mut out = HashSet::new();
    for (u, d) in now {
        if before.get(u) != Some(d) {
            out.insert(u.as_str());
        }
    }
    for u in before.keys() {
        if !now.contains_key(u) {
            out.insert(u.as_str());
        }
    }
    out
}

/// What `user` sees: itself and its online contacts, one entry each, sorted by id.
pub(crate) fn visible_to(
    user: &str,
    contacts: &ContactSets,
    online: &HashMap<String, String>,
) -> Vec<Online> {
    let mut list: Vec<Online> = if contacts.names() < online.len() {
        contacts
            .0
            .iter()
            .flat_map(|s| s.iter())
            .filter_map(|c| online.get(c).map(|d| (c, d)))
            .map(|(c, d)| Online {
                user_id: c.clone(),
                display_name: d.clone(),
            })
            .collect()
    } else {
        online
            .iter()
            .filter(|(u, _)| contacts.contains(u))
            .map(|(u, d)| Online {
                user_id: u.clone(),
                display_name: d.clone(),
            })
            .collect()
    };
    if !list.iter().any(|o| o.user_id == user) {
        if let Some(d) = online.get(user) {
            list.push(Online {
                user_id: user.to_string(),
                display_name: d.clone(),
            });
        }
    }
    list.sort_by(|a, b| a.user_id.cmp(&b.user_id));
    // A contact met in two conversations was listed twice above.
    list.dedup_by(|a, b| a.user_id == b.user_id);
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn changes_cover_arrivals_departures_and_renames() {
        let before = map(&[("a", "A"), ("b", "B"), ("c", "C")]);
        let now = map(&[("a", "A"), ("b", "Bee"), ("d", "D")]);
        let mut got: Vec<_> = changed_users(&before, &now).into_iter().collect();
        got.sort();
        assert_eq!(got, ["b", "c", "d"]);
    }

    #[test]
    fn lists_hold_self_and_online_contacts_only() {
        let online = map(&[("me", "Me"), ("friend", "F"), ("stranger", "S")]);
        let set = |names: &[&str]| Arc::new(names.iter().map(|s| s.to_string()).collect());
        // Two conversations with "friend" in both: listed once, whichever way it is worked out.
        let contacts = ContactSets(vec![
            set(&["me", "friend", "offline"]),
            set(&["me", "friend"]),
        ]);
        let ids: Vec<_> = visible_to("me", &contacts, &online)
            .into_iter()
            .map(|o| o.user_id)
            .collect();
        assert_eq!(ids, ["friend", "me"]);
        let many: HashMap<String, String> = (0..10)
            .map(|i| (format!("u{i}"), "U".to_string()))
            .chain(online.clone())
            .collect();
        let ids: Vec<_> = visible_to("me", &contacts, &many)
            .into_iter()
            .map(|o| o.user_id)
            .collect();
        assert_eq!(ids, ["friend", "me"]);
        // With no conversations yet, a user still sees itself.
        let ids: Vec<_> = visible_to("me", &ContactSets::default(), &online)
            .into_iter()
            .map(|o| o.user_id)
            .collect();
        assert_eq!(ids, ["me"]);
    }
}
