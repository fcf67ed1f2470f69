//! `chatctl`, the operators' admin tool: its command line (the settings registry's flags for
//! "chatctl" plus one subcommand per task), the settings it reads, and the exit statuses
//! (0 done, 1 failed with a message on standard error, 2 a usage or setting error). What
//! each command does is in [`users`], [`export`] and [`queue`]; results are JSON (or JSON
//! lines) on standard output, so that scripts can read them.

mod error;
mod export;
mod queue;
mod users;

use std::io::Write as _;
use std::time::Duration;

use clap::{value_parser, Arg, ArgMatches, Command};
use platform_core::config::{ConfigError, Env, Stores};
use platform_core::pools::{PgPool, RedisPool};
use platform_core::stream::Keys;

use error::{Error, Failed};

const NAME: &str = "chatctl";

/// What chatctl reads from its command line or environment (the registry's "chatctl" rows).
#[derive(Debug, Clone)]
struct Config {
    stores: Stores,
    /// `REDIS_WAIT_REPLICAS`: replicas a revocation must reach before it is confirmed.
    wait_replicas: u32,
    /// `STREAM_PARTITIONS`: the send stream's partitions.
    stream_partitions: usize,
    /// The lifetime of the pending mark and `clientMessageId` record a replay queues again
    /// (the chat service's setting of the same name).
    dedupe_ttl_secs: u64,
}

impl Config {
    fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let stores = Stores::from_env(env)?;
        Ok(Config {
            wait_replicas: platform_core::config::wait_replicas(env, &stores)?,
            stores,
            stream_partitions: env.number(
                "STREAM_PARTITIONS",
                1,
                platform_core::stream::PARTITIONS_MAX,
            )?,
            dedupe_ttl_secs: env.number("DEDUPE_TTL_SECS", 1, 365 * 86_400)?,
        })
    }
}

/// The stores a command works on, connected lazily.
struct Ctl {
    config: Config,
    pg: PgPool,
    redis: RedisPool,
    keys: Keys,
}

impl Ctl {
    /// A pooled PostgreSQL connection, or a message naming the database's trouble.
    async fn pg(&self) -> Result<deadpool_postgres::Object, Error> {
        self.pg.get().await.failed("PostgreSQL")
    }
}

fn command() -> Command {
    let user_id = || {
        Arg::new("user")
            .value_name("USER_ID")
            .required(true)
            .help("the account's user id")
    };
    let dead_id = || {
        Arg::new("id")
            .value_name("ID")
            .required(true)
            .help("a dead letter's id (deadLetterId in the list)")
    };
    platform_core::cli::command(NAME)
        .about("The chat platform's admin tool: run it with the services' database and Redis settings")
        .subcommand_required(true)
        .subcommand(
            Command::new("migrate")
                .about("Apply the pending database migrations without starting a service; prints what it applied"),
        )
        .subcommand(
            Command::new("user")
                .about("Create an account, reset its password or end its sessions")
                .subcommand_required(true)
                .subcommand(
                    Command::new("create")
                        .about("Create an account; its password is read from standard input (one line)")
                        .arg(user_id())
                        .arg(
                            Arg::new("display-name")
                                .long("display-name")
                                .value_name("NAME")
                                .required(true)
                                .help("the name other users see"),
                        ),
                )
                .subcommand(
                    Command::new("reset-password")
                        .about("Set a new password, read from standard input (one line), and end every session of the user")
                        .arg(user_id()),
                )
                .subcommand(
                    Command::new("revoke-sessions")
                        .about("End every session of the user: each of its tokens is refused from now on")
                        .arg(user_id()),
                ),
        )
        .subcommand(
            Command::new("dead-letters")
                .about("List, inspect, replay or drop the entries on the dead-letter stream")
                .subcommand_required(true)
                .subcommand(
                    Command::new("list")
                        .about("The newest dead letters first, as JSON: deadLetterId, streamId, reason, entry")
                        .arg(
                            Arg::new("count")
                                .long("count")
                                .value_name("N")
                                .value_parser(value_parser!(usize))
                                .default_value("100")
                                .help("how many"),
                        ),
                )
                .subcommand(
                    Command::new("inspect")
                        .about("One dead letter in full, its entry as JSON")
                        .arg(dead_id()),
                )
                .subcommand(
                    Command::new("replay")
                        .about("After fixing the cause: queue the entry again, as it was")
                        .arg(dead_id()),
                )
                .subcommand(
                    Command::new("drop")
                        .about("Give up on a dead letter")
                        .arg(dead_id()),
                ),
        )
        .subcommand(
            Command::new("export")
                .about("Export data as JSON lines")
                .subcommand_required(true)
                .subcommand(
                    Command::new("conversation")
                        .about("A conversation: a line with its members, then each message oldest first, with attachments and reactions")
                        .arg(
                            Arg::new("conversation")
                                .value_name("CONVERSATION_ID")
                                .required(true)
                                .help("the conversation's id"),
                        ),
                )
                .subcommand(
                    Command::new("user")
                        .about("A user's data: account, memberships and read markers, blocks, uploads, reactions, then the messages they sent")
                        .arg(user_id()),
                ),
        )
        .subcommand(
            Command::new("stream")
                .about("The send stream's depth, pending and undelivered entries, lag and dead letters, as JSON"),
        )
        .subcommand(
            Command::new("repartition")
                .about("Record a new partition count for the send stream, once it is drained (chat instances stopped, workers done); then restart every chat instance and worker with STREAM_PARTITIONS set to it")
                .arg(
                    Arg::new("partitions")
                        .value_name("N")
                        .required(true)
                        .value_parser(value_parser!(u16).range(1..=platform_core::stream::PARTITIONS_MAX as i64))
                        .help("the new count, 1 to 256"),
                ),
        )
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let matches = command().get_matches();
    let env = platform_core::cli::env(NAME, &matches);
    let status = match run(&env, &matches).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("chatctl: {e}");
            e.status()
        }
    };
    std::process::exit(status);
}

async fn run(env: &Env, matches: &ArgMatches) -> Result<(), Error> {
    let config = Config::from_env(env).map_err(Error::Setting)?;
    let ctl = Ctl {
        pg: config.stores.postgres().map_err(Error::Setting)?,
        redis: config.stores.redis().map_err(Error::Setting)?,
        keys: Keys::new(&config.stores.namespace).partitioned(config.stream_partitions),
        config,
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match matches.subcommand() {
        Some(("migrate", _)) => migrate(&ctl, &mut out).await?,
        Some(("user", m)) => users::command(&ctl, m, &mut out).await?,
        Some(("dead-letters", m)) => queue::dead_letters(&ctl, m, &mut out).await?,
        Some(("export", m)) => export::command(&ctl, m, &mut out).await?,
        Some(("stream", _)) => queue::stream(&ctl, &mut out).await?,
        Some(("repartition", m)) => {
            let n = m.get_one::<u16>("partitions").copied().unwrap_or(1);
            queue::repartition(&ctl, usize::from(n), &mut out).await?
        }
        // `subcommand_required`: clap has refused anything else already.
        _ => return Err(Error::Usage("no such command".into())),
    }
    out.flush().failed("standard output")
}

/// `chatctl migrate`: a JSON line per migration applied, oldest first.
async fn migrate(ctl: &Ctl, out: &mut impl std::io::Write) -> Result<(), Error> {
    // An operator waits for the answer: a few seconds, not the services' minute.
    let applied =
        platform_core::migrate::run(&ctl.pg, platform_core::migrate::ALL, Duration::from_secs(5))
            .await
            .failed("migrations")?;
    for m in &applied {
        error::line(
            out,
            &serde_json::json!({"version": m.version, "name": m.name}),
        )?;
    }
    eprintln!("{} migration(s) applied", applied.len());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_reads_exactly_its_declared_settings() {
        let env = Env::from_pairs(NAME, &[]);
        Config::from_env(&env).unwrap();
        platform_core::settings::check_reads(NAME, &env.names_read()).unwrap();
    }

    #[test]
    fn the_command_line_is_consistent() {
        command().debug_assert();
        let help = command().render_long_help().to_string();
        for cmd in [
            "migrate",
            "user",
            "dead-letters",
            "export",
            "stream",
            "repartition",
        ] {
            assert!(help.contains(cmd), "{cmd} not in:\n{help}");
        }
        let e = command()
            .try_get_matches_from(["chatctl", "user", "create", "ann"])
            .unwrap_err();
        assert_eq!(e.exit_code(), 2, "no --display-name");
        // The password is never an argument.
        let e = command()
            .try_get_matches_from(["chatctl", "user", "reset-password", "ann", "secret123"])
            .unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }
}
