//! Storing one batch of stream entries in PostgreSQL: every create in one multi-row INSERT,
//! then the edits and deletes in stream order, all in one transaction. Idempotent on message
//! id, so a redelivered entry is never stored twice; an edit never overwrites one accepted
//! after it. Which errors are the data's fault (dead-letter) and which are passing (retry)
//! is decided here, by [`StoreError`].

use std::collections::{HashMap, HashSet};
use std::time::SystemTime;

use platform_core::attachment_urls::UrlSigner;
use platform_core::model::{self, Message, COLUMNS, COLUMN_COUNT};
use platform_core::pools::PgPool;
use platform_core::stream::{Duplicate, Entry, Notice};
use platform_core::time;
use tokio_postgres::GenericClient;
use uuid::Uuid;

/// Where an entry is: its partition of the send stream and its id in that partition's
/// stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sid {
    pub partition: usize,
    pub id: String,
}

impl std::fmt::Display for Sid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} in partition {}", self.id, self.partition)
    }
}

/// A parsed stream entry and where it is.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub stream_id: Sid,
    pub entry: Entry,
}

/// What a stored batch produced.
#[derive(Debug, Default)]
pub(crate) struct Stored {
    /// Stream ids settled by the commit: acknowledge them.
    pub done: Vec<Sid>,
    pub notice: Notice,
    /// Creates stored by an earlier delivery that never acknowledged them, with the message
    /// as stored now (deleted ones left out): `(stream id, message)`. That delivery published
    /// nothing (a batch is acknowledged and announced in one MULTI), so these are announced
    /// now, each only if acknowledging it here is what settles it.
    pub redelivered: Vec<(Sid, Message)>,
    /// Edits/deletes whose message was not found: `(stream id, message id, entry)`. Kept
    /// pending when the message is itself still queued, dropped otherwise.
    pub unresolved: Vec<(Sid, Uuid, Entry)>,
    /// Entries PostgreSQL refused on their own: `(item, reason)`.
    pub rejected: Vec<(Item, String)>,
}

/// Why a transaction did not commit.
#[derive(Debug)]
pub(crate) enum StoreError {
    /// PostgreSQL refused the data itself (SQLSTATE class 22, data exception, or 23,
    /// integrity constraint violation): retrying the same data won't help.
    Refused(String),
    /// Anything else: unreachable, restarting (57P01), read-only during a failover (25006),
    /// out of resources, a deadlock. Keep the batch and try again until it succeeds.
    Unavailable(String),
}

/// SQLSTATE classes that describe the data rather than the server's state.
fn is_data_error(code: &str) -> bool {
    code.starts_with("22") || code.starts_with("23")
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        let (reason, code) = match e.as_db_error() {
            // The server's own words: they end up in the dead-letter reason.
            Some(db) => (
                format!("{} (SQLSTATE {})", db.message(), db.code().code()),
                Some(db.code().code()),
            ),
            None => (e.to_string(), e.code().map(|c| c.code())),
        };
        match code {
            Some(code) if is_data_error(code) => StoreError::Refused(reason),
            _ => StoreError::Unavailable(reason),
        }
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

/// Stores a batch; if PostgreSQL refuses it as a whole, stores its entries one by one so
/// that only the offending ones are rejected.
pub(crate) async fn store(
    pg: &PgPool,
    items: Vec<Item>,
    urls: &UrlSigner,
) -> Result<Stored, StoreError> {
    match store_together(pg, &items, urls).await {
        Ok(stored) => Ok(stored),
        Err(StoreError::Refused(reason)) if items.len() > 1 => {
            tracing::warn!(%reason, size = items.len(), "batch refused; storing entries one by one");
            let mut all = Stored::default();
            for item in items {
                match store_together(pg, std::slice::from_ref(&item), urls).await {
                    Ok(one) => merge(&mut all, one),
                    Err(StoreError::Refused(reason)) => all.rejected.push((item, reason)),
                    Err(e) => return Err(e),
                }
            }
            Ok(all)
        }
        Err(StoreError::Refused(reason)) => Ok(Stored {
            rejected: items.into_iter().map(|i| (i, reason.clone())).collect(),
            ..Stored::default()
        }),
        Err(e) => Err(e),
    }
}

fn merge(all: &mut Stored, one: Stored) {
    all.done.extend(one.done);
    all.redelivered.extend(one.redelivered);
    all.notice.created.extend(one.notice.created);
    all.notice.already.extend(one.notice.already);
    all.notice.duplicates.extend(one.notice.duplicates);
    all.notice.updated.extend(one.notice.updated);
    all.notice.deleted.extend(one.notice.deleted);
    all.unresolved.extend(one.unresolved);
    all.rejected.extend(one.rejected);
}

async fn store_together(
    pg: &PgPool,
    items: &[Item],
    urls: &UrlSigner,
) -> Result<Stored, StoreError> {
    let mut client = pg.get().await?;
    let mut out = Stored::default();
    let creates: Vec<&Message> = items
        .iter()
        .filter_map(|i| match &i.entry {
            Entry::Create(m) => Some(m),
            _ => None,
        })
        .collect();

    // The commit locks of the partitions the creates are in.
    let mut locks: Vec<i64> = items
        .iter()
        .filter(|i| matches!(i.entry, Entry::Create(_)))
        .map(|i| platform_core::stream::commit_lock(i.stream_id.partition))
        .collect();
    locks.sort_unstable();
    locks.dedup();
    let only_creates = creates.len() == items.len();
    // Sets: a batch holds up to BATCH_MAX entries, and each is looked up below.
    let inserted: HashSet<Uuid> = if only_creates {
        // The common case: one statement is its own transaction, one round trip.
        let stmt = client.prepare_cached(INSERT).await?;
        insert(&**client, &stmt, &locks, &creates)
            .await?
            .into_iter()
            .collect()
    } else {
        let tx = client.transaction().await?;
        let inserted = if creates.is_empty() {
            HashSet::new()
        } else {
            let stmt = tx.prepare_cached(INSERT).await?;
            insert(&*tx, &stmt, &locks, &creates)
                .await?
                .into_iter()
                .collect()
        };
        apply_changes(&tx, items, &mut out).await?;
        tx.commit().await?;
        inserted
    };

    // Creates that inserted nothing: stored by an earlier delivery, or a reused clientMessageId.
    let missing: Vec<&Message> = creates
        .iter()
        .copied()
        .filter(|m| !inserted.contains(&m.id))
        .collect();
    // Stored by an earlier delivery: as stored now (`None` once deleted).
    let mut already: HashMap<Uuid, Option<Message>> = HashMap::new();
    if !missing.is_empty() {
        let ids: Vec<Uuid> = missing.iter().map(|m| m.id).collect();
        // Their conversations too: only their partitions are read.
        let conversations: Vec<Uuid> = missing.iter().map(|m| m.conversation_id).collect();
        let sql = format!(
            "SELECT {COLUMNS}, m.deleted_at IS NOT NULL FROM messages m
             WHERE m.id = ANY($1) AND m.conversation_id = ANY($2)"
        );
        for r in client.query(&sql, &[&ids, &conversations]).await? {
            let deleted: bool = r.get(COLUMN_COUNT);
            let m = Message::from_row(&r, 0);
            already.insert(m.id, (!deleted).then_some(m));
        }
    }
    for m in &missing {
        if already.contains_key(&m.id) {
            continue;
        }
        let sql = format!(
            "SELECT {COLUMNS} FROM messages m
             WHERE conversation_id = $1 AND sender_id = $2 AND client_message_id = $3"
        );
        if let Some(r) = client
            .query_opt(
                &sql,
                &[&m.conversation_id, &m.sender_id, &m.client_message_id],
            )
            .await?
        {
            out.notice.duplicates.push(Duplicate {
                id: m.id,
                original: Message::from_row(&r, 0),
            });
        }
    }
    for item in items {
        if let Entry::Create(m) = &item.entry {
            if inserted.contains(&m.id) {
                out.notice.created.push(m.clone());
            } else if let Some(stored) = already.remove(&m.id) {
                out.notice.already.push(m.id);
                if let Some(stored) = stored {
                    // Acknowledged (or not) together with its announcement.
                    out.redelivered.push((item.stream_id.clone(), stored));
                    continue;
                }
            }
            out.done.push(item.stream_id.clone());
        }
    }
    // What is announced as read from PostgreSQL gets its preview and reactions, in one
    // statement for all of them. Created messages are announced as queued (their preview was
    // computed at send time, and a message not yet stored has no reactions): no query.
    let mut shown: Vec<Message> = Vec::new();
    let n_updated = out.notice.updated.len();
    let n_deleted = out.notice.deleted.len();
    let n_redelivered = out.redelivered.len();
    shown.append(&mut out.notice.updated);
    shown.append(&mut out.notice.deleted);
    shown.extend(out.redelivered.iter().map(|(_, m)| m.clone()));
    shown.extend(out.notice.duplicates.iter().map(|d| d.original.clone()));
    if !shown.is_empty() {
        model::hydrate(&client, &mut shown, urls).await?;
        let mut it = shown.into_iter();
        out.notice.updated = it.by_ref().take(n_updated).collect();
        out.notice.deleted = it.by_ref().take(n_deleted).collect();
        for ((_, m), h) in out
            .redelivered
            .iter_mut()
            .zip(it.by_ref().take(n_redelivered))
        {
            *m = h;
        }
        for (d, h) in out.notice.duplicates.iter_mut().zip(it) {
            d.original = h;
        }
    }
    Ok(out)
}

/// Edits and deletes, in stream order, inside the batch's transaction.
async fn apply_changes(
    tx: &deadpool_postgres::Transaction<'_>,
    items: &[Item],
    out: &mut Stored,
) -> Result<(), StoreError> {
    for item in items {
        let (id, conv, at, body) = match &item.entry {
            Entry::Create(_) => continue,
            Entry::Edit {
                id,
                conversation_id,
                body,
                at,
            } => (id, conversation_id, *at, Some(body)),
            Entry::Delete {
                id,
                conversation_id,
                at,
            } => (id, conversation_id, *at, None),
        };
        let at = time::from_millis(at);
        let row = match body {
            Some(body) => {
                // An edit accepted before the message's last edit (applied directly while
                // this one waited in the stream) is superseded: edits apply in the order
                // they were accepted.
                let sql = format!(
                    "UPDATE messages m SET body = $3, edited_at = $4
                     WHERE id = $1 AND conversation_id = $2 AND deleted_at IS NULL
                       AND (edited_at IS NULL OR edited_at <= $4)
                     RETURNING {COLUMNS}"
                );
                tx.query_opt(&sql, &[id, conv, body, &at]).await?
            }
            None => {
                let sql = format!(
                    "UPDATE messages m SET deleted_at = $3
                     WHERE id = $1 AND conversation_id = $2 AND deleted_at IS NULL RETURNING {COLUMNS}"
                );
                tx.query_opt(&sql, &[id, conv, &at]).await?
            }
        };
        match (row, body.is_some()) {
            (Some(r), true) => out.notice.updated.push(Message::from_row(&r, 0)),
            (Some(r), false) => out.notice.deleted.push(Message::from_row(&r, 0)),
            (None, true) if superseded(tx, id, conv, at).await? => {
                tracing::info!(message = %id, "edit superseded by a later one; dropped");
            }
            (None, _) => {
                out.unresolved
                    .push((item.stream_id.clone(), *id, item.entry.clone()));
                continue;
            }
        }
        out.done.push(item.stream_id.clone());
    }
    Ok(())
}

/// Whether a live message has an edit newer than `at`.
async fn superseded(
    tx: &deadpool_postgres::Transaction<'_>,
    id: &Uuid,
    conv: &Uuid,
    at: SystemTime,
) -> Result<bool, StoreError> {
    Ok(tx
        .query_opt(
            "SELECT 1 FROM messages WHERE id = $1 AND conversation_id = $2
               AND deleted_at IS NULL AND edited_at > $3",
            &[id, conv, &at],
        )
        .await?
        .is_some())
}

/// One multi-row insert. The advisory locks of the partitions its rows are in
/// (`stream::commit_lock`, in ascending order, so that two batches never wait for each
/// other) are taken by the statement itself, before any row gets its `seq`, and held until
/// commit: a partition's batches commit in `seq` order, whichever worker stores them, while
/// batches of other partitions commit beside them. ORDER BY the ordinality keeps stream order within the batch.
///
/// A send also moves its sender's read marker (`API.md`, "Read state"): nothing is written
/// for that here; the chat service reads the sender's newest message as part of the marker
/// (`reads::own_newest_sql`), which costs a listing one index probe per conversation instead
/// of costing every stored batch a member-row update per sender.
const INSERT: &str = "
    WITH commit_lock AS MATERIALIZED (
        SELECT count(pg_advisory_xact_lock(l)) FROM (SELECT unnest($7::int8[]) AS l ORDER BY 1) t
    )
    INSERT INTO messages (id, conversation_id, sender_id, body, client_message_id, sent_at,
                          reply_to_id)
    SELECT id, conv, sender, body, cmid, sent, reply
    FROM commit_lock,
         unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::timestamptz[],
                $8::uuid[])
         WITH ORDINALITY AS t(id, conv, sender, body, cmid, sent, reply, ord)
    ORDER BY ord
    ON CONFLICT DO NOTHING
    RETURNING id";

/// The parameter arrays of [`INSERT`], one element per message, in batch order.
pub struct InsertParams<'a> {
    pub ids: Vec<Uuid>,
    pub convs: Vec<Uuid>,
    pub senders: Vec<&'a str>,
    pub bodies: Vec<&'a str>,
    pub client_ids: Vec<Option<&'a str>>,
    pub sent: Vec<SystemTime>,
    /// The replied-to message ids (the preview in the entry is not stored: it is read at
    /// read time).
    pub reply_to: Vec<Option<Uuid>>,
}

impl<'a> InsertParams<'a> {
    /// Columns from rows: the arrays borrow the strings, so a batch is not copied again.
    pub fn new(creates: &[&'a Message]) -> Self {
        let n = creates.len();
        let mut p = InsertParams {
            ids: Vec::with_capacity(n),
            convs: Vec::with_capacity(n),
            senders: Vec::with_capacity(n),
            bodies: Vec::with_capacity(n),
            client_ids: Vec::with_capacity(n),
            sent: Vec::with_capacity(n),
            reply_to: Vec::with_capacity(n),
        };
        for m in creates {
            p.ids.push(m.id);
            p.convs.push(m.conversation_id);
            p.senders.push(m.sender_id.as_str());
            p.bodies.push(m.body.as_str());
            p.client_ids.push(m.client_message_id.as_deref());
            p.sent.push(time::from_millis(m.sent_at));
            p.reply_to.push(m.reply_to.as_ref().map(|r| r.id));
        }
        p
    }
}

async fn insert(
    client: &impl GenericClient,
    stmt: &tokio_postgres::Statement,
    locks: &[i64],
    creates: &[&Message],
) -> Result<Vec<Uuid>, tokio_postgres::Error> {
    let p = InsertParams::new(creates);
    let rows = client
        .query(
            stmt,
            &[
                &p.ids,
                &p.convs,
                &p.senders,
                &p.bodies,
                &p.client_ids,
                &p.sent,
                &locks,
                &p.reply_to,
            ],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

#[cfg(test)]
mod tests {
    use super::is_data_error;

    #[test]
    fn only_data_errors_are_permanent() {
        // check_violation, unique_violation, invalid_text_representation, string too long
        for code in ["23514", "23505", "22P02", "22001"] {
            assert!(is_data_error(code), "{code}");
        }
        // read-only transaction (failover), admin shutdown (restart), deadlock, serialization,
        // out of connections, disk full
        for code in [
            "25006", "57P01", "40P01", "40001", "53300", "53100", "08006",
        ] {
            assert!(!is_data_error(code), "{code}");
        }
    }
}
