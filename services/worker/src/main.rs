//! The worker binary: everything is in the library; see [`worker::run`].
//!
//! One thread: the consumer is one sequential loop, and the tasks it waits on (its
//! PostgreSQL and Redis connections) wake it on the same thread instead of another one.

#[tokio::main(flavor = "current_thread")]
async fn main() {
    platform_core::server::launch(
        "worker",
        worker::Config::from_env,
        worker::Config::addr,
        worker::run,
    )
    .await;
}
