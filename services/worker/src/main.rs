//! The worker binary: its command line is the settings registry's ([`platform_core::cli`]);
//! everything else is in the library; see [`worker::run`]. With the subcommand
//! `dead-letters …` it is the operators' command for the dead-letter stream instead
//! ([`worker::dead_letters::command`]), with the same settings.
//!
//! One thread: each owned partition's consumer is one sequential loop, and the tasks they
//! wait on (their PostgreSQL and Redis connections) wake them on the same thread instead of
//! another one. The storing itself happens in PostgreSQL, in parallel across partitions.

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let matches = platform_core::cli::command("worker")
        .subcommand(worker::dead_letters::subcommand())
        .get_matches();
    let env = platform_core::cli::env("worker", &matches);
    if let Some(args) = matches.subcommand_matches(worker::dead_letters::SUBCOMMAND) {
        std::process::exit(worker::dead_letters::command(&env, args).await);
    }
    platform_core::server::launch(
        env,
        worker::Config::from_env,
        worker::Config::addr,
        worker::run,
    )
    .await;
}
