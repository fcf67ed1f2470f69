//! Users and conversations made before goose starts: accounts registered through
//! `POST /auth/register` (their bearer tokens go with every request and every socket), and
//! the realtime scenarios' group conversations. All of it over keep-alive connections to the
//! gateway, a few at a time (registration hashes a password: it is slow on purpose).

use std::sync::Arc;

use bytes::Bytes;
use loadtest::Conn;
use tokio::sync::Semaphore;

/// The password of every load-test account (8 to 128 characters).
pub const PASSWORD: &str = "load-test-password";

/// Reads the answer to `POST /auth/register`: 201 and a session, or an error.
pub fn register_answer(status: u16, body: &[u8]) -> Result<String, String> {
    if status != 201 {
        return Err(format!(
            "POST /auth/register: {status} {}",
            String::from_utf8_lossy(body)
        ));
    }
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    v["token"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| "a session without a token".to_string())
}

pub fn register_body(user: &str, display: &str) -> String {
    serde_json::json!({"userId": user, "displayName": display, "password": PASSWORD}).to_string()
}

/// Registers every `(userId, displayName)`, `parallel` at a time; their tokens, in order.
pub async fn register_all(
    target: &str,
    users: &[(String, String)],
    parallel: usize,
) -> Result<Vec<String>, String> {
    let gate = Arc::new(Semaphore::new(parallel.max(1)));
    let mut tasks = Vec::with_capacity(users.len());
    for chunk in users.chunks(users.len().div_ceil(parallel.max(1)).max(1)) {
        let chunk = chunk.to_vec();
        let (gate, target) = (gate.clone(), target.to_string());
        tasks.push(tokio::spawn(async move {
            let _p = gate.acquire().await.expect("semaphore open");
            let mut conn = Conn::open(&target).await.map_err(|e| e.to_string())?;
            let mut tokens = Vec::with_capacity(chunk.len());
            for (user, display) in &chunk {
                let body = Bytes::from(register_body(user, display));
                let (status, res) = conn.request("POST", "/auth/register", Some(body)).await?;
                tokens.push(register_answer(status, &res)?);
            }
            Ok::<_, String>(tokens)
        }));
    }
    let mut out = Vec::with_capacity(users.len());
    for t in tasks {
        out.extend(t.await.map_err(|e| e.to_string())??);
    }
    Ok(out)
}

/// Creates a group conversation of `members` as the first of them; its id.
pub async fn create_group(
    conn: &mut Conn,
    name: &str,
    members: &[(String, String)],
    token: Option<&str>,
) -> Result<String, String> {
    let list: Vec<serde_json::Value> = members
        .iter()
        .map(|(u, d)| serde_json::json!({"userId": u, "displayName": d}))
        .collect();
    let body = serde_json::json!({"type": "group", "name": name, "members": list}).to_string();
    let (status, res) = conn
        .request_as("POST", "/conversations", Some(Bytes::from(body)), token)
        .await?;
    if status != 201 {
        return Err(format!(
            "POST /conversations: {status} {}",
            String::from_utf8_lossy(&res)
        ));
    }
    let v: serde_json::Value = serde_json::from_slice(&res).map_err(|e| e.to_string())?;
    v["id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| "a conversation without an id".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_answers() {
        assert_eq!(
            register_answer(201, br#"{"token":"abc","expiresAt":"x"}"#),
            Ok("abc".into())
        );
        assert!(register_answer(201, br#"{"expiresAt":"x"}"#).is_err());
        assert!(register_answer(429, b"{}").unwrap_err().contains("429"));
        assert!(register_answer(409, b"{}").unwrap_err().contains("409"));
    }
}
