//! Tracing set-up: `RUST_LOG` filters (default `info`), `LOG_FORMAT=json` for structured logs.
//! Lines go to standard output through a thread of their own (`tracing-appender`), which
//! writes whatever has queued up in one go: with an access line per request, a write(2) per
//! line on the threads serving requests cost 10 to 25 % of the send rate (BENCHMARKS.md).

use tracing_appender::non_blocking::WorkerGuard;
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

/// Lines that may wait for the writer; past them new lines are dropped (counted by nothing:
/// a service that far behind on its logs is better off serving than waiting on them).
const QUEUED_LINES_MAX: usize = 128_000;

/// Installs the subscriber. Keep the guard for as long as the service runs: dropping it
/// writes out what is still queued.
pub fn init(service: &'static str, logging: Logging) -> Option<WorkerGuard> {
    // Colours only for a person at a terminal, not in log files.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(QUEUED_LINES_MAX)
        .thread_name("log-writer")
        // Buffered: the writer thread flushes after each batch it drained, one write for many
        // lines (stdout alone would write each line as it comes).
        .finish(std::io::BufWriter::new(std::io::stdout()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(logging.filter)
        .with_target(false)
        .with_ansi(ansi)
        .with_writer(writer);
    let result = if logging.json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    result.ok()?;
    tracing::info!(service, "starting");
    Some(guard)
}
