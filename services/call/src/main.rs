//! The call binary: everything is in the library; see [`call::run`].

#[tokio::main]
async fn main() {
    platform_core::server::launch(
        "call",
        call::Config::from_env,
        call::Config::addr,
        call::run,
    )
    .await;
}
