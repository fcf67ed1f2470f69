//! The message worker binary: configuration from the environment, then [`worker::run`].

#[tokio::main]
async fn main() {
    platform_core::telemetry::init("worker");
    let env = platform_core::config::Env::process();
    let config = platform_core::config::exit_on_error(worker::Config::from_env(&env));
    let listener = match platform_core::server::bind(config.addr()).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let shutdown = platform_core::shutdown::on_signal();
    if let Err(e) = worker::run(listener, config, shutdown).await {
        eprintln!("worker failed: {e}");
        std::process::exit(1);
    }
}
