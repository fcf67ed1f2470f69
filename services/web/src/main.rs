//! The web binary: everything is in the library; see [`web::run`].

#[tokio::main]
async fn main() {
    platform_core::server::launch("web", web::Config::from_env, web::Config::addr, web::run).await;
}
