//! goose load tests against the platform's gateway (and the realtime peers of
//! `loadtest/peers/`). `scripts/loadtest.sh` starts everything and runs this; by hand:
//!
//! ```text
//! loadtest-goose [OPTIONS] -- [GOOSE OPTIONS]
//!   --target 127.0.0.1:3000     the gateway (or a peer): HTTP and Socket.IO
//!   --socket-target ADDR        where the sockets connect instead (e.g. a chat instance,
//!                               token in the CONNECT payload); HTTP still goes to --target
//!   --kind chat|peer            chat: registered users and real conversations; peer: rooms
//!   --scenarios rest,sends,history,broadcast,typing
//!   --name NAME                 names the reports: <out>/<NAME>-extra.{json,html}
//!   --rooms 10 --members 20     the realtime scenarios' conversations and their sizes
//!   --pace-ms 0                 each goose user's pause after each transaction
//!   --rate 0                    transactions per second across all users (0: unpaced)
//!   --pids chat=PID,...         sample these processes' memory (VmRSS) during the run,
//!                               and count their CPU time
//!   --sample-ms 1000 --register-parallel 4 --run-id ID --out target/loadtest
//! ```
//! Goose's options follow `--` (users, run time, `--report-file` for its HTML and JSON
//! reports); `--host` is set from --target.

mod cpu;
mod memory;
mod pace;
mod realtime;
mod report;
mod rest;
mod setup;
mod sockets;

use std::time::Duration;

use goose::config::GooseConfiguration;
use goose::prelude::*;

struct Args {
    target: String,
    /// Where the sockets connect; `None`: the same as `target`.
    socket_target: Option<String>,
    kind: realtime::Kind,
    scenarios: Vec<String>,
    name: String,
    rooms: usize,
    members: usize,
    pace: Duration,
    rate: u64,
    pids: Vec<(String, u32)>,
    sample: Duration,
    parallel: usize,
    run: String,
    out: std::path::PathBuf,
    goose: Vec<String>,
}

fn fail(msg: impl std::fmt::Display) -> ! {
    eprintln!("loadtest-goose: {msg}");
    std::process::exit(2)
}

fn args() -> Args {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let split = argv.iter().position(|a| a == "--").unwrap_or(argv.len());
    let (ours, goose) = (&argv[..split], argv.get(split + 1..).unwrap_or_default());
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut a = Args {
        target: "127.0.0.1:3000".into(),
        socket_target: None,
        kind: realtime::Kind::Chat,
        scenarios: vec!["rest".into(), "broadcast".into(), "typing".into()],
        name: String::new(),
        rooms: 10,
        members: 20,
        pace: Duration::ZERO,
        rate: 0,
        pids: Vec::new(),
        sample: Duration::from_secs(1),
        parallel: 4,
        run: format!("lt{started}"),
        out: "target/loadtest".into(),
        goose: goose.to_vec(),
    };
    let number = |v: &str| -> u64 {
        v.parse()
            .unwrap_or_else(|_| fail(format!("expected a number, got {v:?}")))
    };
    for (name, v) in loadtest::pairs(ours) {
        match name.as_str() {
            "--target" => a.target = v,
            "--socket-target" => a.socket_target = Some(v),
            "--kind" => {
                a.kind = match v.as_str() {
                    "chat" => realtime::Kind::Chat,
                    "peer" => realtime::Kind::Peer,
                    _ => fail("--kind chat|peer"),
                }
            }
            "--scenarios" => a.scenarios = v.split(',').map(str::to_string).collect(),
            "--name" => a.name = v,
            "--rooms" => a.rooms = number(&v) as usize,
            "--members" => a.members = number(&v) as usize,
            "--pace-ms" => a.pace = Duration::from_millis(number(&v)),
            "--rate" => a.rate = number(&v),
            "--pids" => a.pids = memory::parse_pids(&v).unwrap_or_else(|e| fail(e)),
            "--sample-ms" => a.sample = Duration::from_millis(number(&v).max(10)),
            "--register-parallel" => a.parallel = number(&v) as usize,
            "--run-id" => a.run = v,
            "--out" => a.out = v.into(),
            other => fail(format!("unknown option {other}")),
        }
    }
    if let Some(s) = a.scenarios.iter().find(|s| {
        !matches!(
            s.as_str(),
            "rest" | "sends" | "history" | "broadcast" | "typing"
        )
    }) {
        fail(format!(
            "unknown scenario {s:?} (rest, sends, history, broadcast, typing)"
        ));
    }
    if a.kind == realtime::Kind::Peer && a.scenarios.iter().any(|s| rest::is_http(s)) {
        fail("peers serve the realtime scenarios only (--scenarios broadcast,typing)");
    }
    if a.kind == realtime::Kind::Peer && a.socket_target.is_some() {
        fail("--socket-target is for the chat stack (a peer serves HTTP and sockets on one port)");
    }
    if a.rooms == 0 || a.members < 2 {
        fail("--rooms 1 or more, --members 2 or more");
    }
    if a.name.is_empty() {
        a.name = a.scenarios.join("-");
    }
    a.goose
        .splice(0..0, ["--host".to_string(), format!("http://{}", a.target)]);
    a
}

#[tokio::main]
async fn main() {
    let a = args();
    if let Err(e) = run(a).await {
        fail(e)
    }
}

async fn run(a: Args) -> Result<(), String> {
    let config = GooseConfiguration::parse_args_default(&a.goose).map_err(|e| format!("{e:?}"))?;
    std::fs::create_dir_all(&a.out).map_err(|e| format!("{}: {e}", a.out.display()))?;
    let loadavg_start = report::loadavg();
    rest::set_run(&a.run);
    pace::set_rate(a.rate);
    let realtime_wanted = a.scenarios.iter().any(|s| !rest::is_http(s));
    let rt = if realtime_wanted {
        let sockets_at = a.socket_target.as_deref().unwrap_or(&a.target);
        let rt = realtime::prepare(
            a.kind, &a.target, sockets_at, &a.run, a.rooms, a.members, a.parallel,
        )
        .await?;
        eprintln!(
            "{}: {} rooms of {} members connected to {sockets_at} and relaying",
            a.name, a.rooms, a.members
        );
        Some(rt)
    } else {
        None
    };

    let mut attack = GooseAttack::initialize_with_config(config).map_err(|e| e.to_string())?;
    for s in &a.scenarios {
        let scenario = match s.as_str() {
            "rest" => rest::scenario(),
            "sends" => rest::sends(),
            "history" => rest::history(),
            _ => continue,
        };
        attack = attack.register_scenario(scenario.map_err(|e| e.to_string())?);
    }
    for s in realtime::scenarios(&a.scenarios, a.pace).map_err(|e| e.to_string())? {
        attack = attack.register_scenario(s);
    }
    let sampler = (!a.pids.is_empty()).then(|| memory::Sampler::start(a.pids.clone(), a.sample));
    if let Some(rt) = &rt {
        rt.reset();
    }
    // The load client itself too: when it runs out of CPU, throughput says little of the server.
    let mut measured = a.pids.clone();
    measured.push(("loadtest client".into(), std::process::id()));
    let cpu_start = cpu::Start::now(&measured);
    let window = std::time::Instant::now();
    attack.execute().await.map_err(|e| e.to_string())?;
    let cpu_used = cpu_start.used();
    let window = window.elapsed().as_secs_f64();

    let mut summary = serde_json::json!({
        "name": a.name,
        "target": a.target,
        "socket_target": a.socket_target.as_deref().unwrap_or(&a.target),
        "kind": format!("{:?}", a.kind).to_lowercase(),
        "scenarios": a.scenarios,
        "loadavg": {"start": loadavg_start, "end": report::loadavg()},
    });
    if let Some(rt) = &rt {
        summary["sockets"] = report::sockets(rt);
    }
    if let Some(s) = sampler {
        let (csv, usage) = s.finish(&a.pids);
        let path = a.out.join(format!("{}-memory.csv", a.name));
        std::fs::write(&path, csv).map_err(|e| format!("{}: {e}", path.display()))?;
        summary["memory"] = report::memory(&usage);
    }
    summary["cpu_seconds"] = report::cpu(&cpu_used);
    summary["cpu_window_seconds"] = serde_json::json!((window * 10.0).round() / 10.0);
    report::print(&a.name, &summary);
    let json = a.out.join(format!("{}-extra.json", a.name));
    let text = serde_json::to_string_pretty(&summary).expect("JSON");
    std::fs::write(&json, text).map_err(|e| format!("{}: {e}", json.display()))?;
    let html = a.out.join(format!("{}-extra.html", a.name));
    std::fs::write(&html, report::html(&a.name, &summary))
        .map_err(|e| format!("{}: {e}", html.display()))?;
    // Sockets and goose's workers end with the process.
    std::process::exit(0)
}
