//! The chat binary: its command line is the settings registry's ([`platform_core::cli`]);
//! everything else is in the library; see [`chat::run`].

#[tokio::main]
async fn main() {
    platform_core::server::launch(
        platform_core::cli::parse("chat"),
        chat::Config::from_env,
        chat::Config::addr,
        chat::run,
    )
    .await;
}
