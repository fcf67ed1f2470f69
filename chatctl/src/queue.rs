//! `chatctl dead-letters …`, `chatctl stream` and `chatctl repartition`: the send stream as
//! the worker sees it, through the worker's own functions (`worker::dead_letters`,
//! `worker::stats`).

use clap::ArgMatches;
use platform_core::stream::Keys;
use serde_json::json;
use worker::dead_letters;

use crate::error::{line, Error, Failed};
use crate::Ctl;

pub(crate) async fn dead_letters(
    ctl: &Ctl,
    args: &ArgMatches,
    out: &mut impl std::io::Write,
) -> Result<(), Error> {
    let id = |m: &ArgMatches| m.get_one::<String>("id").cloned().unwrap_or_default();
    match args.subcommand() {
        Some(("list", m)) => {
            let count = m.get_one::<usize>("count").copied().unwrap_or(100);
            for d in dead_letters::list(&ctl.redis, &ctl.keys, count).await? {
                line(out, &d)?;
            }
        }
        Some(("inspect", m)) => {
            let d = dead_letters::get(&ctl.redis, &ctl.keys, &id(m)).await?;
            // The entry as JSON when it is (an unreadable one stays a string: that is why
            // it may be here).
            let entry = serde_json::from_str::<serde_json::Value>(&d.entry)
                .unwrap_or_else(|_| serde_json::Value::String(d.entry.clone()));
            line(
                out,
                &json!({
                    "deadLetterId": d.dead_letter_id,
                    "streamId": d.stream_id,
                    "reason": d.reason,
                    "entry": entry,
                }),
            )?;
        }
        Some(("replay", m)) => {
            let id = id(m);
            let new_id =
                dead_letters::replay(&ctl.redis, &ctl.keys, &id, ctl.config.dedupe_ttl_secs)
                    .await?;
            line(out, &json!({"replayed": id, "streamId": new_id}))?;
            eprintln!("replayed {id} as stream entry {new_id}");
        }
        Some(("drop", m)) => {
            let id = id(m);
            dead_letters::drop(&ctl.redis, &ctl.keys, &id).await?;
            line(out, &json!({"dropped": id}))?;
            eprintln!("dropped {id}");
        }
        _ => return Err(Error::Usage("dead-letters: a command is needed".into())),
    }
    Ok(())
}

/// `chatctl stream`: the worker's view of the stream (what its gauges show, plus the
/// entries not delivered yet) and how many dead letters wait. With several partitions the
/// figures are their totals, and `partitions` has each one's.
pub(crate) async fn stream(ctl: &Ctl, out: &mut impl std::io::Write) -> Result<(), Error> {
    let mut conn = ctl.redis.get().await.failed("Redis")?;
    let (depth, each) = worker::stats::depth_of_all(&mut *conn, &ctl.keys)
        .await
        .failed("reading the stream")?;
    let dead_letters: u64 = redis::cmd("XLEN")
        .arg(&ctl.keys.dead_letter)
        .query_async(&mut *conn)
        .await
        .failed("reading the dead-letter stream")?;
    let mut doc = serde_json::to_value(&depth).failed("encoding")?;
    doc["stream"] = json!(ctl.keys.streams()[0]);
    if each.len() > 1 {
        // The totals above; each partition's own view here.
        let mut parts = Vec::with_capacity(each.len());
        for (d, name) in each.iter().zip(ctl.keys.streams()) {
            let mut p = serde_json::to_value(d).failed("encoding")?;
            p["stream"] = json!(name);
            parts.push(p);
        }
        doc["partitions"] = json!(parts);
    }
    doc["deadLetters"] = json!(dead_letters);
    line(out, &doc)
}

/// KEYS: the partition count's key. ARGV: the count read (empty: none), the new one. Sets
/// it only if nobody changed it since it was read.
const SET_PARTITIONS: &str = r"
local now = redis.call('GET', KEYS[1]) or ''
if now ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1
";

/// `chatctl repartition N`: records `n` as the send stream's partition count, refusing
/// while any partition of the count in force holds an entry not yet stored (undelivered or
/// pending): its conversation may map elsewhere under the new count, and there it would be
/// stored out of order, or, beyond the new count, never. Prints `{partitions, was}`.
pub(crate) async fn repartition(
    ctl: &Ctl,
    n: usize,
    out: &mut impl std::io::Write,
) -> Result<(), Error> {
    let mut conn = ctl.redis.get().await.failed("Redis")?;
    let key = ctl.keys.partitions_key();
    let recorded: Option<usize> = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut *conn)
        .await
        .failed("reading the partition count")?;
    let was = recorded.unwrap_or(1);
    let in_force = Keys::new(ctl.keys.namespace()).partitioned(was);
    let (depth, _) = worker::stats::depth_of_all(&mut *conn, &in_force)
        .await
        .failed("reading the stream")?;
    match depth.undelivered {
        Some(0) if depth.pending == 0 => {}
        undelivered => {
            return Err(Error::Failed(format!(
                "the send stream is not drained: {} undelivered and {} pending entries in its \
                 {was} partition(s); stop the chat instances, let the workers store them \
                 (`chatctl stream`), then try again",
                undelivered.map_or_else(|| "an unknown number of".to_string(), |u| u.to_string()),
                depth.pending,
            )))
        }
    }
    let set: i64 = redis::cmd("EVAL")
        .arg(SET_PARTITIONS)
        .arg(1)
        .arg(&key)
        .arg(recorded.map(|r| r.to_string()).unwrap_or_default())
        .arg(n)
        .query_async(&mut *conn)
        .await
        .failed("recording the partition count")?;
    if set == 0 {
        return Err(Error::Failed(
            "the partition count changed meanwhile; run the command again".into(),
        ));
    }
    line(out, &json!({"partitions": n, "was": was}))?;
    eprintln!("restart every chat instance and worker with STREAM_PARTITIONS={n}");
    Ok(())
}
