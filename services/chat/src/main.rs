//! The chat service binary: configuration from the environment, then [`chat::run`].

#[tokio::main]
async fn main() {
    platform_core::telemetry::init("chat");
    let config = platform_core::config::exit_on_error(chat::Config::from_env(
        &platform_core::config::Env::process(),
    ));
    let listener = match platform_core::server::bind(config.addr()).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let shutdown = platform_core::shutdown::on_signal();
    if let Err(e) = chat::run(listener, config, shutdown).await {
        eprintln!("chat service failed: {e}");
        std::process::exit(1);
    }
}
