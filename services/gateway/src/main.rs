//! The gateway binary: everything is in the library; see [`gateway::run`].

#[tokio::main]
async fn main() {
    platform_core::server::launch(
        "gateway",
        gateway::Config::from_env,
        gateway::Config::addr,
        gateway::run,
    )
    .await;
}
