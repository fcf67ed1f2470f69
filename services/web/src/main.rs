//! The web binary: its command line is the settings registry's ([`platform_core::cli`]);
//! everything else is in the library; see [`web::run`].

#[tokio::main]
async fn main() {
    platform_core::server::launch(
        platform_core::cli::parse("web"),
        web::Config::from_env,
        web::Config::addr,
        web::run,
    )
    .await;
}
