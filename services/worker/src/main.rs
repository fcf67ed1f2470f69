//! The worker binary: everything is in the library; see [`worker::run`].

#[tokio::main]
async fn main() {
    platform_core::server::launch(
        "worker",
        worker::Config::from_env,
        worker::Config::addr,
        worker::run,
    )
    .await;
}
