//! Private PostgreSQL and Redis servers for the fault tests, which restart them under load.
//! Both run from a temporary directory on free loopback ports and are stopped on drop.
//! PostgreSQL refuses to run as root, so as root it runs as the `postgres` user.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

fn temp_dir(prefix: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false)
}

fn pg_bin(name: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL binaries under /usr/lib/postgresql")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .collect();
    dirs.sort();
    dirs.pop().expect("a PostgreSQL version").join(name)
}

/// Runs a PostgreSQL tool, as the `postgres` user when we are root.
fn pg_command(name: &str) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(pg_bin(name));
        c
    } else {
        Command::new(pg_bin(name))
    }
}

pub struct Postgres {
    pub port: u16,
    dir: PathBuf,
}

impl Postgres {
    pub fn start() -> Postgres {
        let dir = temp_dir("e2e-pg");
        if is_root() {
            let _ = Command::new("chown").arg("postgres").arg(&dir).status();
        }
        let data = dir.join("data");
        let ok = pg_command("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("initdb")
            .success();
        assert!(ok, "initdb failed in {}", dir.display());
        let pg = Postgres {
            port: free_port(),
            dir,
        };
        pg.ctl("start");
        pg
    }

    fn ctl(&self, action: &str) {
        let opts = format!("-h 127.0.0.1 -p {} -k {}", self.port, self.dir.display());
        let ok = pg_command("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .args(["-w", "-t", "30", "-m", "fast", "-o", &opts, action])
            .stdout(Stdio::null())
            .status()
            .expect("pg_ctl")
            .success();
        assert!(
            ok,
            "pg_ctl {action} failed; see {}",
            self.dir.join("server.log").display()
        );
    }

    /// Stops (disconnecting every client, rolling back what is in flight) and starts again.
    pub fn restart(&self) {
        self.ctl("restart");
    }

    /// A crash: SIGKILL to the postmaster and every one of its processes, then a start, which
    /// runs crash recovery from the write-ahead log. Committed transactions survive it
    /// (`synchronous_commit` is on); what was in flight is rolled back.
    pub fn crash(&self) {
        let pid_file = self.dir.join("data/postmaster.pid");
        let pid = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.lines().next().map(str::to_string))
            .expect("postmaster.pid");
        let children = Command::new("pgrep")
            .args(["-P", &pid])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let mut kill = Command::new("kill");
        kill.arg("-KILL")
            .arg(&pid)
            .args(children.split_whitespace());
        let _ = kill.status();
        // Starting again needs the old processes gone (they hold the shared memory).
        let deadline = Instant::now() + Duration::from_secs(10);
        while Command::new("kill")
            .args(["-0", &pid])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            assert!(Instant::now() < deadline, "postmaster survived SIGKILL");
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(200));
        self.ctl("start");
    }

    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = pg_command("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-w", "-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Redis server with the append-only file on, as in production.
pub struct Redis {
    pub port: u16,
    dir: PathBuf,
    child: Option<std::process::Child>,
}

impl Redis {
    pub fn start() -> Redis {
        let mut r = Redis {
            port: free_port(),
            dir: temp_dir("e2e-redis"),
            child: None,
        };
        r.spawn();
        r
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .arg("--dir")
            .arg(&self.dir)
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--save",
                "",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server (install Debian's redis-server)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A clean restart: SHUTDOWN writes the append-only file out, then the same directory is
    /// loaded again.
    pub fn restart(&mut self) {
        let _ = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "shutdown"])
            .status();
        if let Some(mut c) = self.child.take() {
            let _ = c.wait();
        }
        self.spawn();
    }

    /// A crash: SIGKILL, then a start on the same append-only file. With `appendfsync
    /// everysec` Redis writes each command to the file before answering it and fsyncs once a
    /// second, so a crash of the process alone loses nothing answered; a crash of the machine
    /// (power, kernel) loses up to about the last second of writes, two when the disk stalls.
    pub fn crash(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.spawn();
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
