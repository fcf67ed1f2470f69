//! The call binary: its command line is the settings registry's ([`platform_core::cli`]);
//! everything else is in the library; see [`call::run`].

#[tokio::main]
async fn main() {
    platform_core::server::launch(
        platform_core::cli::parse("call"),
        call::Config::from_env,
        call::Config::addr,
        call::run,
    )
    .await;
}
