//! The gateway binary: configuration from the environment, then [`gateway::run`].

#[tokio::main]
async fn main() {
    platform_core::telemetry::init("gateway");
    let env = platform_core::config::Env::process();
    let config = platform_core::config::exit_on_error(gateway::Config::from_env(&env));
    let listener = match platform_core::server::bind(config.addr()).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let shutdown = platform_core::shutdown::on_signal();
    gateway::run(listener, config, shutdown).await;
}
