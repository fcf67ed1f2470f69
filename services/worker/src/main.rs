//! The worker binary: everything is in the library; see [`worker::run`]. With arguments
//! `dead-letters …` it is the operators' command for the dead-letter stream instead
//! ([`worker::dead_letters::command`]).
//!
//! One thread: the consumer is one sequential loop, and the tasks it waits on (its
//! PostgreSQL and Redis connections) wake it on the same thread instead of another one.

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == "dead-letters") {
        std::process::exit(worker::dead_letters::command(&args[1..]).await);
    }
    platform_core::server::launch(
        "worker",
        worker::Config::from_env,
        worker::Config::addr,
        worker::run,
    )
    .await;
}
