//! Who may do what with a call: members of its conversation see it, its participants
//! change it and signal in it. Compat requests without a caller are not checked.

use platform_core::ApiError;
use tokio_postgres::GenericClient;
use uuid::Uuid;

/// 403 unless the caller is a member of `conversation`.
pub(crate) async fn member(
    client: &impl GenericClient,
    conversation: Uuid,
    caller: Option<&str>,
) -> Result<(), ApiError> {
    let sql = "SELECT 1 FROM conversation_members WHERE conversation_id = $1 AND user_id = $2";
    require(
        client,
        sql,
        conversation,
        caller,
        "a member of conversation",
    )
    .await
}

/// 403 unless the caller is a participant of `call` and a member of its conversation.
pub(crate) async fn participant(
    client: &impl GenericClient,
    call: Uuid,
    caller: Option<&str>,
) -> Result<(), ApiError> {
    // Still a member of the call's conversation too: a removal takes its member out of the
    // conversation's live calls, and this keeps them out of the final ones' signals.
    let sql = "SELECT 1 FROM call_participants p
               JOIN calls c ON c.id = p.call_id
               JOIN conversation_members m
                 ON m.conversation_id = c.conversation_id AND m.user_id = p.user_id
               WHERE p.call_id = $1 AND p.user_id = $2";
    require(client, sql, call, caller, "a participant of call").await
}

/// 403 unless `sql` finds a row for (`id`, caller).
async fn require(
    client: &impl GenericClient,
    sql: &str,
    id: Uuid,
    caller: Option<&str>,
    role: &str,
) -> Result<(), ApiError> {
    let Some(me) = caller else { return Ok(()) };
    match client.query_opt(sql, &[&id, &me]).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::forbidden(format!("you are not {role} {id}"))),
    }
}
