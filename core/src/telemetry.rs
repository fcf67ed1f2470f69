//! Tracing set-up: `RUST_LOG` filters (default `info`), `LOG_FORMAT=json` for structured logs.

use tracing_subscriber::EnvFilter;

use crate::config::{ConfigError, Env};

/// How a service logs: read with its other settings, checked before anything is logged.
#[derive(Debug)]
pub struct Logging {
    filter: EnvFilter,
    json: bool,
}

impl Logging {
    /// `RUST_LOG` (tracing's filter directives) and `LOG_FORMAT` (`text` or `json`).
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let directives = env.string("RUST_LOG");
        let filter = EnvFilter::try_new(&directives).map_err(|e| ConfigError {
            var: "RUST_LOG".into(),
            value: directives.clone(),
            reason: e.to_string(),
        })?;
        let format = env.string("LOG_FORMAT");
        let json = match format.as_str() {
            "text" => false,
            "json" => true,
            _ => {
                return Err(ConfigError {
                    var: "LOG_FORMAT".into(),
                    value: format,
                    reason: "expected text or json".into(),
                })
            }
        };
        Ok(Logging { filter, json })
    }
}

pub fn init(service: &'static str, logging: Logging) {
    // Colours only for a person at a terminal, not in log files.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(logging.filter)
        .with_target(false)
        .with_ansi(ansi);
    let result = if logging.json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    if result.is_ok() {
        tracing::info!(service, "starting");
    }
}
