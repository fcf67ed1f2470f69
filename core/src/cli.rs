//! Every service binary's command line, made from the settings registry
//! ([`crate::settings`]): one `--flag` per setting the service reads, each also taken from
//! its environment variable (a flag wins), with its meaning and default in `--help`;
//! `--version` with the commit built from. A bad flag exits 2 with clap's message; values
//! are checked by the configuration readers, which exit 2 too ([`crate::config`]).

use clap::{Arg, ArgAction, ArgMatches, Command};

use crate::config::Env;
use crate::settings::{self, DefaultValue};

/// `<version> (<commit>)`: the workspace's version (every crate shares it) and the commit
/// `build.rs` found, the same `build_info` reports ([`crate::build`]).
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("BUILD_COMMIT"), ")");

/// The command line of `service`, for a binary to add subcommands to.
pub fn command(service: &'static str) -> Command {
    let mut cmd = Command::new(service)
        .version(VERSION)
        .next_line_help(true)
        .after_help(
            "Every flag can be given as its environment variable instead (a flag wins over \
             the variable). Values are checked before any port is bound: a bad one exits \
             with status 2 naming it.",
        );
    for s in settings::of(service) {
        cmd = cmd.arg(
            Arg::new(s.var)
                .long(settings::flag(s.var)[2..].to_string())
                .env(s.var)
                .value_name(s.var)
                .action(ArgAction::Set)
                .help_heading("Settings")
                // Help documents; it must not print the secrets it was started with.
                .hide_env_values(true)
                .help(help(s, service)),
        );
    }
    cmd
}

/// A setting's line in `--help`: its meaning and its default for this service, as plain
/// text (the README's Markdown without the backticks).
fn help(s: &settings::Setting, service: &str) -> String {
    let default = match (s.default, s.default_for(service)) {
        (DefaultValue::Unset(text), _) => text,
        (_, Some("")) => "empty",
        (_, value) => value.unwrap_or_default(),
    };
    format!("{} [default: {default}]", s.meaning).replace('`', "")
}

/// The settings given to `service` (by flag or environment variable) in `matches`.
pub fn env(service: &'static str, matches: &ArgMatches) -> Env {
    let given: std::collections::HashMap<&'static str, String> = settings::of(service)
        .filter_map(|s| matches.get_one::<String>(s.var).map(|v| (s.var, v.clone())))
        .collect();
    Env::new(service, move |var| given.get(var).cloned())
}

/// Parses the process's arguments for `service`: on `--help`, `--version` or a bad flag,
/// prints and exits (0, 0, 2).
pub fn parse(service: &'static str) -> Env {
    env(service, &command(service).get_matches())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn given(service: &'static str, args: &[&str]) -> Result<Env, clap::Error> {
        let argv = std::iter::once(service).chain(args.iter().copied());
        command(service)
            .try_get_matches_from(argv)
            .map(|m| env(service, &m))
    }

    #[test]
    fn flags_feed_the_configuration_readers() {
        let env = given("chat", &["--port", "4001", "--pg-pool-size=3"]).unwrap();
        assert_eq!(env.port("PORT").unwrap(), 4001);
        assert_eq!(env.number("PG_POOL_SIZE", 1usize, 1000).unwrap(), 3);
        // Not given: the registry's default for chat.
        assert_eq!(env.number("REDIS_POOL_SIZE", 1u32, 1000).unwrap(), 4);
        // A bad value is the reader's error, naming the variable and its flag.
        let env = given("chat", &["--port", "nope"]).unwrap();
        let e = env.port("PORT").unwrap_err().to_string();
        assert!(e.contains("PORT=\"nope\" (--port)"), "{e}");
    }

    #[test]
    fn bad_flags_are_usage_errors() {
        let e = given("chat", &["--no-such-flag"]).err().unwrap();
        assert_eq!(e.exit_code(), 2);
        // Another service's setting is not a flag of this one.
        let e = given("web", &["--batch-max", "3"]).err().unwrap();
        assert_eq!(e.kind(), clap::error::ErrorKind::UnknownArgument);
        let e = given("worker", &["--port"]).err().unwrap();
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn help_lists_each_setting_with_its_variable_and_default() {
        let help = command("worker").render_long_help().to_string();
        for text in [
            "--batch-max <BATCH_MAX>",
            "most messages per transaction [default: 1000]",
            "[env: BATCH_MAX]",
            "--pg-pool-size <PG_POOL_SIZE>",
            "[default: 4]",
            "--port <PORT>",
            "[default: 3003]",
        ] {
            assert!(help.contains(text), "{text} not in:\n{help}");
        }
        assert!(
            !help.contains("--static-dir"),
            "web's setting in worker's help"
        );
        assert!(VERSION.starts_with(env!("CARGO_PKG_VERSION")));
    }
}
