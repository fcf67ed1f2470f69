//! The gateway binary: its command line is the settings registry's ([`platform_core::cli`]);
//! everything else is in the library; see [`gateway::run`].

#[tokio::main]
async fn main() {
    platform_core::server::launch(
        platform_core::cli::parse("gateway"),
        gateway::Config::from_env,
        gateway::Config::addr,
        gateway::run,
    )
    .await;
}
