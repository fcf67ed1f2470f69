//! Every binary's command line: `--help` lists each of its settings (flag, variable, default,
//! meaning) without printing the environment's values, `--version` names the commit, a bad
//! flag or a bad value given as a flag exits 2 naming it, and a flag wins over its variable.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use platform_core::settings;

const BINARIES: [&str; 5] = ["gateway", "chat", "call", "worker", "web"];

/// Runs a binary with only `args` and PATH: nothing from the test's environment.
fn run(bin: &str, args: &[&str]) -> Output {
    Command::new(e2e::bin(bin))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Help with its lines joined: clap wraps long lines to the terminal's width.
fn flat(bytes: &[u8]) -> String {
    text(bytes).split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn help_lists_every_setting_with_its_variable_and_default() {
    for bin in BINARIES {
        let out = Command::new(e2e::bin(bin))
            .env_clear()
            .env("INTERNAL_SECRET", "do-not-print-this-secret")
            .env(
                "CHAT_DATABASE_URL",
                "postgres://u:do-not-print-this-password@db/x",
            )
            .arg("--help")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{bin} --help");
        let help = flat(&out.stdout);
        let mut count = 0;
        for s in settings::of(bin) {
            let line = format!("{} <{}>", settings::flag(s.var), s.var);
            assert!(help.contains(&line), "{bin} --help lacks {line}:\n{help}");
            assert!(
                help.contains(&format!("[env: {}]", s.var)),
                "{bin}: {}",
                s.var
            );
            count += 1;
        }
        assert!(count >= 10, "{bin} declares only {count} settings");
        let port = settings::find("PORT").unwrap().default_for(bin).unwrap();
        assert!(
            help.contains(&format!("listening port [default: {port}]")),
            "{bin}: {help}"
        );
        assert!(
            !help.contains("do-not-print-this"),
            "{bin} printed a value:\n{help}"
        );
    }
    // A few by name, as an operator would look for them.
    let chat = flat(&run("chat", &["--help"]).stdout);
    for want in [
        "--chat-database-url <CHAT_DATABASE_URL>",
        "--pg-pool-size <PG_POOL_SIZE>",
        "[default: 16]",
        "--history-cache-bytes <HISTORY_CACHE_BYTES>",
        "[default: 67108864]",
        "[env: HISTORY_CACHE_BYTES]",
    ] {
        assert!(chat.contains(want), "chat --help lacks {want}:\n{chat}");
    }
    let worker = flat(&run("worker", &["--help"]).stdout);
    assert!(worker.contains("most messages per transaction [default: 1000]"));
    assert!(worker.contains("dead-letters"), "{worker}");
    assert!(
        !worker.contains("--static-dir"),
        "web's setting in worker's help"
    );
    let web = flat(&run("web", &["--help"]).stdout);
    assert!(!web.contains("--chat-database-url"), "web has no database");
}

#[test]
fn version_names_the_commit() {
    let mut seen = Vec::new();
    for bin in BINARIES {
        let out = run(bin, &["--version"]);
        assert_eq!(out.status.code(), Some(0), "{bin} --version");
        let line = text(&out.stdout);
        let rest = line
            .trim_end()
            .strip_prefix(&format!("{bin} {} (", env!("CARGO_PKG_VERSION")))
            .and_then(|r| r.strip_suffix(')'))
            .unwrap_or_else(|| panic!("{bin} --version: {line:?}"));
        let commit = rest.strip_suffix(", dirty").unwrap_or(rest);
        assert!(
            commit == "unknown"
                || (commit.len() >= 7 && commit.bytes().all(|b| b.is_ascii_hexdigit())),
            "{bin}: not a commit: {rest:?}"
        );
        seen.push(rest.to_string());
    }
    seen.dedup();
    assert_eq!(
        seen.len(),
        1,
        "binaries built from different commits: {seen:?}"
    );
}

#[test]
fn a_bad_flag_exits_2_with_a_message() {
    for bin in BINARIES {
        let out = run(bin, &["--no-such-setting", "1"]);
        assert_eq!(out.status.code(), Some(2), "{bin}");
        let err = text(&out.stderr);
        assert!(
            err.contains("unexpected argument '--no-such-setting'"),
            "{bin}: {err}"
        );
        assert!(err.contains("--help"), "{bin}: {err}");
    }
    // Another service's setting is not one of this one's flags.
    let out = run("web", &["--batch-max", "3"]);
    assert_eq!(out.status.code(), Some(2));
    // A flag without its value.
    let out = run("chat", &["--port"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--port"),
        "{}",
        text(&out.stderr)
    );
    // The worker's subcommand checks its own arguments.
    let out = run("worker", &["dead-letters", "list", "many"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("COUNT"), "{}", text(&out.stderr));
    let out = run("worker", &["dead-letters", "resurrect", "1-1"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_bad_value_given_as_a_flag_exits_2_naming_it() {
    for (bin, flag, value, var) in [
        ("chat", "--port", "not-a-port", "PORT"),
        (
            "chat",
            "--chat-database-url",
            "mysql://x",
            "CHAT_DATABASE_URL",
        ),
        ("worker", "--batch-max", "0", "BATCH_MAX"),
        (
            "gateway",
            "--request-timeout-ms",
            "soon",
            "REQUEST_TIMEOUT_MS",
        ),
        ("call", "--max-signal-bytes", "1", "MAX_SIGNAL_BYTES"),
        ("web", "--metrics-port", "99999", "METRICS_PORT"),
        ("worker", "--log-format", "xml", "LOG_FORMAT"),
    ] {
        let out = run(bin, &[flag, value]);
        assert_eq!(out.status.code(), Some(2), "{bin} {flag} {value}");
        let err = text(&out.stderr);
        let named = format!("invalid configuration: {var}={value:?} ({flag})");
        assert!(err.contains(&named), "{bin}: {err}");
    }
}

/// Kills the process when the test ends, passing or not.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn flags_win_over_the_environment() {
    let s = e2e::Stack::empty().await;
    let (env_port, port, metrics) = (e2e::free_port(), e2e::free_port(), e2e::free_port());
    let mut cmd = s.command("worker");
    cmd.env("PORT", env_port.to_string())
        .env("METRICS_PORT", "1")
        .args(["--port", &port.to_string()])
        .arg(format!("--metrics-port={metrics}"));
    let _worker = Running(cmd.spawn().unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    let health = format!("http://127.0.0.1:{port}/healthz");
    while !s
        .http
        .get(&health)
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(
            Instant::now() < deadline,
            "the worker never listened on --port"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = s
        .http
        .get(format!("http://127.0.0.1:{metrics}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "metrics on --metrics-port");
    let refused = s
        .http
        .get(format!("http://127.0.0.1:{env_port}/healthz"))
        .send()
        .await;
    assert!(refused.is_err(), "the worker also listens on PORT");
}
