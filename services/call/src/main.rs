//! The call service binary: configuration from the environment, then [`call::run`].

#[tokio::main]
async fn main() {
    platform_core::telemetry::init("call");
    let env = platform_core::config::Env::process();
    let config = platform_core::config::exit_on_error(call::Config::from_env(&env));
    let listener = match platform_core::server::bind(config.addr()).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let shutdown = platform_core::shutdown::on_signal();
    if let Err(e) = call::run(listener, config, shutdown).await {
        eprintln!("call service failed: {e}");
        std::process::exit(1);
    }
}
