//! The chat binary: everything is in the library; see [`chat::run`].

#[tokio::main]
async fn main() {
    platform_core::server::launch(
        "chat",
        chat::Config::from_env,
        chat::Config::addr,
        chat::run,
    )
    .await;
}
