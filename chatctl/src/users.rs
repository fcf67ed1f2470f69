//! `chatctl user …`: accounts as registration makes them (the same id, name and password
//! rules, the same argon2id hash) and their sessions ended as a password change ends them.

use std::io::BufRead as _;

use clap::ArgMatches;
use gateway::password;
use platform_core::sessions::Sessions;
use platform_core::validate;
use serde_json::json;

use crate::error::{line, Error, Failed};
use crate::Ctl;

pub(crate) async fn command(
    ctl: &Ctl,
    args: &ArgMatches,
    out: &mut impl std::io::Write,
) -> Result<(), Error> {
    let (name, m) = args
        .subcommand()
        .ok_or_else(|| Error::Usage("user: a command is needed".into()))?;
    let user = m.get_one::<String>("user").cloned().unwrap_or_default();
    validate::user_id("USER_ID", &user)?;
    match name {
        "create" => {
            let display_name = m
                .get_one::<String>("display-name")
                .cloned()
                .unwrap_or_default();
            validate::display_name("--display-name", &display_name)?;
            // Stored trimmed: `display_name` needs text once trimmed, and what is kept is that text.
            let display_name = validate::trimmed(display_name);
            let hash = new_hash()?;
            let client = ctl.pg().await?;
            let created = client
                .execute(
                    "INSERT INTO users (user_id, display_name, password_hash) VALUES ($1, $2, $3)
                     ON CONFLICT (user_id) DO NOTHING",
                    &[&user, &display_name, &hash],
                )
                .await
                .failed("creating the user")?;
            if created == 0 {
                return Err(Error::Failed(format!("user id {user} is taken")));
            }
            line(out, &json!({"userId": user, "displayName": display_name}))?;
            eprintln!("created {user}");
        }
        "reset-password" => {
            // An unknown user is said before a password is asked for.
            known(ctl, &user).await?;
            let hash = new_hash()?;
            let client = ctl.pg().await?;
            let changed = client
                .execute(
                    "UPDATE users SET password_hash = $2, updated_at = now() WHERE user_id = $1",
                    &[&user, &hash],
                )
                .await
                .failed("resetting the password")?;
            if changed == 0 {
                return Err(no_user(&user));
            }
            // As the API's password change: every session made with the old one ends.
            revoke(ctl, &user).await?;
            line(out, &json!({"userId": user, "sessionsRevoked": true}))?;
            eprintln!("reset the password of {user} and ended its sessions");
        }
        "revoke-sessions" => {
            known(ctl, &user).await?;
            revoke(ctl, &user).await?;
            line(out, &json!({"userId": user, "sessionsRevoked": true}))?;
            eprintln!("ended every session of {user}");
        }
        other => return Err(Error::Usage(format!("user {other}: no such command"))),
    }
    Ok(())
}

fn no_user(user: &str) -> Error {
    Error::Failed(format!("no user {user}"))
}

/// Fails unless `user` has an account.
async fn known(ctl: &Ctl, user: &str) -> Result<(), Error> {
    let client = ctl.pg().await?;
    client
        .query_opt("SELECT 1 FROM users WHERE user_id = $1", &[&user])
        .await
        .failed("looking the user up")?
        .map(drop)
        .ok_or_else(|| no_user(user))
}

/// Ends every session of `user` and moves its session epoch. The script publishes the
/// revocation, so running gateways drop their cached sessions and chat closes the sockets,
/// as when the API does it.
async fn revoke(ctl: &Ctl, user: &str) -> Result<(), Error> {
    // Only the namespace matters for revoking; the lifetime is for issuing.
    let sessions = Sessions::new(
        &ctl.config.stores.namespace,
        std::time::Duration::from_secs(1),
    )
    .with_wait_replicas(ctl.config.wait_replicas);
    sessions.revoke_all(&ctl.redis, user).await?;
    Ok(())
}

/// The new password, from standard input (never from the command line, where other users of
/// the machine and the shell's history would see it), checked and hashed.
fn new_hash() -> Result<String, Error> {
    let mut text = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut text)
        .failed("reading the password from standard input")?;
    let password = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(&text);
    password::check("the password (standard input)", password)?;
    password::hash_now(password).failed("hashing the password")
}
