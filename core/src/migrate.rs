//! Versioned SQL migrations, applied at start-up by every service that uses the database.
//! A session-level advisory lock serialises processes that start together; each migration
//! runs in its own transaction with its version row, so a crash leaves no half-applied step.

use std::time::Duration;

use crate::failure::{Context, Failure};
use crate::pools::PgPool;

pub struct Migration {
    pub version: i32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// The platform's schema, in order. Never edit an applied migration: add a new one.
pub const ALL: &[Migration] = &[
    Migration {
        version: 1,
        name: "conversations and messages",
        sql: include_str!("../migrations/0001_conversations_messages.sql"),
    },
    Migration {
        version: 2,
        name: "calls",
        sql: include_str!("../migrations/0002_calls.sql"),
    },
    Migration {
        version: 3,
        name: "users",
        sql: include_str!("../migrations/0003_users.sql"),
    },
    Migration {
        version: 4,
        name: "blocks",
        sql: include_str!("../migrations/0004_blocks.sql"),
    },
    Migration {
        version: 5,
        name: "membership",
        sql: include_str!("../migrations/0005_membership.sql"),
    },
    Migration {
        version: 7,
        name: "unread",
        sql: include_str!("../migrations/0007_unread.sql"),
    },
    Migration {
        version: 8,
        name: "own newest message",
        sql: include_str!("../migrations/0008_own_newest.sql"),
    },
    Migration {
        version: 9,
        name: "replies and reactions",
        sql: include_str!("../migrations/0009_replies_reactions.sql"),
    },
    Migration {
        version: 10,
        name: "search",
        sql: include_str!("../migrations/0010_search.sql"),
    },
    Migration {
        version: 11,
        name: "attachments",
        sql: include_str!("../migrations/0011_attachments.sql"),
    },
    Migration {
        version: 12,
        name: "search pending list merged apart",
        sql: include_str!("../migrations/0012_search_pending_list_merged_apart.sql"),
    },
    Migration {
        version: 13,
        name: "messages partitioned by conversation",
        sql: include_str!("../migrations/0013_messages_partitioned.sql"),
    },
];

const LOCK_KEY: i64 = 0x6368_6174_6d69_6772; // "chatmigr"

/// What a service runs at start-up: the platform's schema, waiting up to a minute for
/// PostgreSQL (it may start at the same time).
pub async fn at_start(pool: &PgPool) -> Result<(), Failure> {
    run(pool, ALL, Duration::from_secs(60)).await.map(drop)
}

/// Applies what is missing, and returns what it applied (`chatctl migrate` prints it).
/// Waits (up to `patience`) for PostgreSQL to accept connections.
pub async fn run<'m>(
    pool: &PgPool,
    migrations: &'m [Migration],
    patience: Duration,
) -> Result<Vec<&'m Migration>, Failure> {
    let deadline = tokio::time::Instant::now() + patience;
    let mut client = loop {
        match pool.get().await {
            Ok(c) => break c,
            Err(e) if tokio::time::Instant::now() < deadline => {
                tracing::warn!(error = %e, "waiting for PostgreSQL");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(Failure::new("migrations: PostgreSQL unreachable", e)),
        }
    };
    client
        .execute("SELECT pg_advisory_lock($1)", &[&LOCK_KEY])
        .await
        .context("migrations: taking the lock")?;
    let result = apply(&mut client, migrations).await;
    // Unlock even after a failure; the session lock would also die with the connection.
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&LOCK_KEY])
        .await;
    result
}

async fn apply<'m>(
    client: &mut deadpool_postgres::Object,
    migrations: &'m [Migration],
) -> Result<Vec<&'m Migration>, Failure> {
    const STEP: &str = "migrations";
    client
        .batch_execute(
            // Quiet: "already exists" notices on every start are noise.
            "SET client_min_messages = warning;
             CREATE TABLE IF NOT EXISTS schema_migrations (
                version int PRIMARY KEY,
                name text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now());
             RESET client_min_messages",
        )
        .await
        .context(STEP)?;
    let applied: Vec<i32> = client
        .query("SELECT version FROM schema_migrations", &[])
        .await
        .context(STEP)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut done = Vec::new();
    for m in migrations.iter().filter(|m| !applied.contains(&m.version)) {
        let tx = client.transaction().await.context(STEP)?;
        tx.batch_execute(m.sql)
            .await
            .with_context(|| format!("migration {} ({})", m.version, m.name))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            &[&m.version, &m.name],
        )
        .await
        .context(STEP)?;
        tx.commit().await.context(STEP)?;
        tracing::info!(version = m.version, name = m.name, "migration applied");
        done.push(m);
    }
    Ok(done)
}
