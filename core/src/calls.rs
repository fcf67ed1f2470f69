//! The call as the contract shows it, and how it is read back from `calls` and
//! `call_participants`: the call service and the chat service (which ends a call when a
//! removed member leaves it) serialise calls in this one place.

use std::collections::HashMap;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use tokio_postgres::GenericClient;
use uuid::Uuid;

use crate::ApiError;

/// Statuses a call can still leave: the ones a removal from the conversation affects.
pub const LIVE_STATUSES: [&str; 2] = ["ringing", "in_progress"];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Participant {
    pub user_id: String,
    pub display_name: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Call {
    pub id: Uuid,
    pub conversation_id: Uuid,
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    #[serde(with = "crate::time::rfc3339")]
    pub started_at: i64,
    #[serde(
        with = "crate::time::rfc3339_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub ended_at: Option<i64>,
    pub participants: Vec<Participant>,
}

/// Loads calls with their participants, in the order of `ids` (unknown ids are skipped).
pub async fn load_many(client: &impl GenericClient, ids: &[Uuid]) -> Result<Vec<Call>, ApiError> {
    let rows = client
        .query(
            "SELECT id, conversation_id, type, status, started_at, ended_at FROM calls WHERE id = ANY($1)",
            &[&ids],
        )
        .await?;
    let mut parts: HashMap<Uuid, Vec<Participant>> = HashMap::new();
    for r in client
        .query(
            "SELECT call_id, user_id, display_name FROM call_participants WHERE call_id = ANY($1) ORDER BY call_id, position",
            &[&ids],
        )
        .await?
    {
        parts.entry(r.get(0)).or_default().push(Participant {
            user_id: r.get(1),
            display_name: r.get(2),
        });
    }
    let mut by_id: HashMap<Uuid, Call> = rows
        .iter()
        .map(|r| {
            let id: Uuid = r.get(0);
            let call = Call {
                id,
                conversation_id: r.get(1),
                kind: r.get(2),
                status: r.get(3),
                started_at: crate::time::to_millis(r.get::<_, SystemTime>(4)),
                ended_at: r
                    .get::<_, Option<SystemTime>>(5)
                    .map(crate::time::to_millis),
                participants: parts.remove(&id).unwrap_or_default(),
            };
            (id, call)
        })
        .collect();
    Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
}

/// One call with its participants, or `None`.
pub async fn load(client: &impl GenericClient, id: Uuid) -> Result<Option<Call>, ApiError> {
    Ok(load_many(client, &[id]).await?.pop())
}
