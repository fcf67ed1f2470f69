//! The dead-letter stream, for operators: list the entries PostgreSQL refused (or that could
//! not be read), replay one after its cause is fixed, or drop one. Used by the worker's
//! `/dead-letters` endpoint and its `worker dead-letters` subcommand; a library API so that
//! an admin tool can call it too.

use platform_core::config::Env;
use platform_core::pools::RedisPool;
use platform_core::stream::{Entry, Keys, DEAD_ID, DEAD_REASON, FIELD, REQUEUE};
use platform_core::ApiError;
use redis::streams::{StreamId, StreamRangeReply};
use serde::Serialize;

use crate::Config;

/// One dead letter.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    /// Its id in the dead-letter stream: what `replay` and `drop` take.
    pub dead_letter_id: String,
    /// The id it had in the send stream.
    pub stream_id: String,
    pub reason: String,
    /// The entry's JSON as it was queued.
    pub entry: String,
}

fn text(e: &StreamId, k: &str) -> String {
    match e.map.get(k) {
        Some(redis::Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    }
}

impl From<&StreamId> for DeadLetter {
    fn from(e: &StreamId) -> Self {
        DeadLetter {
            dead_letter_id: e.id.clone(),
            stream_id: text(e, DEAD_ID),
            reason: text(e, DEAD_REASON),
            entry: text(e, FIELD),
        }
    }
}

/// The newest `count` dead letters, newest first.
pub async fn list(
    redis: &RedisPool,
    keys: &Keys,
    count: usize,
) -> Result<Vec<DeadLetter>, ApiError> {
    let mut conn = redis.get().await?;
    let entries: StreamRangeReply = redis::cmd("XREVRANGE")
        .arg(&keys.dead_letter)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(count)
        .query_async(&mut *conn)
        .await?;
    Ok(entries.ids.iter().map(DeadLetter::from).collect())
}

/// One dead letter by its id (`chatctl dead-letters inspect`); 404 if there is none.
pub async fn get(redis: &RedisPool, keys: &Keys, id: &str) -> Result<DeadLetter, ApiError> {
    let mut conn = redis.get().await?;
    let entries: StreamRangeReply = redis::cmd("XRANGE")
        .arg(&keys.dead_letter)
        .arg(id)
        .arg(id)
        .query_async(&mut *conn)
        .await
        .map_err(|_| ApiError::bad_request(format!("{id} is not a dead-letter id")))?;
    entries
        .ids
        .first()
        .map(DeadLetter::from)
        .ok_or_else(|| ApiError::not_found(format!("dead letter {id} not found")))
}

/// Queues a dead letter's entry again, as the chat service queued it (a send gets its pending
/// mark and `clientMessageId` record back, unless a retry took that id meanwhile, in which
/// case the worker answers it as a duplicate), and removes the dead letter: one MULTI.
/// Returns the new stream id.
pub async fn replay(
    redis: &RedisPool,
    keys: &Keys,
    id: &str,
    ttl_secs: u64,
) -> Result<String, ApiError> {
    let dead = get(redis, keys, id).await?;
    let entry = Entry::decode(&mut dead.entry.clone().into_bytes()).ok_or_else(|| {
        ApiError::bad_request(format!("dead letter {id} is not a readable entry; drop it"))
    })?;
    // Back to its conversation's partition, behind whatever that conversation queued since.
    let stream = keys.stream_of(entry.conversation_id());
    let mut requeue = redis::cmd("EVAL");
    requeue.arg(REQUEUE);
    match &entry {
        Entry::Create(m) => {
            let cid = m
                .client_message_id
                .as_ref()
                .map(|cmid| keys.client_id(&m.conversation_id, &m.sender_id, cmid));
            requeue
                .arg(2 + usize::from(cid.is_some()))
                .arg(stream)
                .arg(keys.pending(&m.id))
                .arg(cid);
        }
        _ => {
            requeue.arg(1).arg(stream);
        }
    }
    requeue.arg(&dead.entry).arg(ttl_secs).arg(FIELD);
    let mut pipe = redis::pipe();
    pipe.atomic();
    pipe.add_command(requeue);
    pipe.cmd("XDEL").arg(&keys.dead_letter).arg(id).ignore();
    let mut conn = redis.get().await?;
    let (new_id,): (String,) = pipe.query_async(&mut *conn).await?;
    Ok(new_id)
}

/// Removes a dead letter for good.
pub async fn drop(redis: &RedisPool, keys: &Keys, id: &str) -> Result<(), ApiError> {
    let mut conn = redis.get().await?;
    let removed: i64 = redis::cmd("XDEL")
        .arg(&keys.dead_letter)
        .arg(id)
        .query_async(&mut *conn)
        .await
        .map_err(|_| ApiError::bad_request(format!("{id} is not a dead-letter id")))?;
    if removed == 0 {
        return Err(ApiError::not_found(format!("dead letter {id} not found")));
    }
    Ok(())
}

/// The subcommand's name: `worker dead-letters …`.
pub const SUBCOMMAND: &str = "dead-letters";

/// `dead-letters list [COUNT] | replay ID | drop ID`, for the worker's command line.
pub fn subcommand() -> clap::Command {
    use clap::{value_parser, Arg, Command};
    let id = || {
        Arg::new("id")
            .value_name("ID")
            .required(true)
            .help("a dead letter's id (deadLetterId in the list)")
    };
    Command::new(SUBCOMMAND)
        .about("List, replay or drop the entries on the dead-letter stream")
        .subcommand_required(true)
        .subcommand(
            Command::new("list")
                .about(
                    "The newest dead letters first, as JSON: deadLetterId, streamId, reason, entry",
                )
                .arg(
                    Arg::new("count")
                        .value_name("COUNT")
                        .value_parser(value_parser!(usize))
                        .default_value("1000")
                        .help("how many"),
                ),
        )
        .subcommand(
            Command::new("replay")
                .about("After fixing the cause: queue the entry again, as it was")
                .arg(id()),
        )
        .subcommand(
            Command::new("drop")
                .about("Give up on a dead letter")
                .arg(id()),
        )
}

/// `worker dead-letters …` with the worker's settings (`env`) and the subcommand's `args`:
/// prints the list as JSON, or what was replayed or dropped. Returns the process exit status
/// (2 for a bad setting, 1 when Redis or the operation fails).
pub async fn command(env: &Env, args: &clap::ArgMatches) -> i32 {
    let config = match Config::from_env(env) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    let redis = match config.stores.redis() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("Redis: {e}");
            return 1;
        }
    };
    let keys = Keys::new(&config.stores.namespace).partitioned(config.stream_partitions);
    let id = |m: &clap::ArgMatches| m.get_one::<String>("id").cloned().unwrap_or_default();
    let result = match args.subcommand() {
        Some(("list", m)) => {
            let count = m.get_one::<usize>("count").copied().unwrap_or(1000);
            list(&redis, &keys, count)
                .await
                .map(|l| serde_json::to_string_pretty(&l).unwrap_or_else(|_| "[]".into()))
        }
        Some(("replay", m)) => {
            let id = id(m);
            replay(&redis, &keys, &id, config.dedupe_ttl_secs)
                .await
                .map(|new_id| format!("replayed {id} as stream entry {new_id}"))
        }
        Some(("drop", m)) => {
            let id = id(m);
            drop(&redis, &keys, &id)
                .await
                .map(|()| format!("dropped {id}"))
        }
        // `subcommand_required`: clap has already refused anything else.
        _ => return 2,
    };
    match result {
        Ok(out) => {
            println!("{out}");
            0
        }
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}
