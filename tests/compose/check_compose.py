"""Checks that compose.yaml agrees with the services it runs and with the documentation.

Reads the resolved configuration (`docker compose config --format json`, run with no
settings but INTERNAL_SECRET) and compares it with:
- the documented ports (README's service table, and the contract's list when ../shared/API.md
  is there): published host ports, loopback-only publishing of the internal services;
- each Rust service's own defaults (`HOST` and `PORT` in the settings registry,
  core/src/settings.rs): the PORT compose sets and the container port it publishes;
- the README's Configuration table and the registry: every variable compose sets is
  documented and declared as read by that service;
- where URLs point: a URL naming a compose service uses that service's port, the upstream
  URLs name the right service, the database URL matches the PostgreSQL container's settings;
- the Dockerfile: every build target is a stage, exposing the port compose uses, with a
  non-root user in the runtime stage;
- health checks, restart policies, `service_healthy` dependencies, named volumes, Redis's
  append-only file.

Usage: check_compose.py RESOLVED.json [REPO_DIR] [--verbose] [--test-overlay] (the latter for
compose.yaml + compose.test.yaml resolved together). Prints failed and skipped
checks (every check with --verbose) and a closing "N passed, N failed" line; exits 1 on any
failure. tests/compose/test_check_compose.py shows that each kind of mistake is caught.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from urllib.parse import urlsplit

# Services whose published ports must stay on the host's loopback: they trust the gateway's
# shared secret, or hold the data.
LOOPBACK_ONLY = {"chat", "call", "postgres", "redis"}
NAME_ALIASES = {"postgresql": "postgres", "browser ui": "web", "web ui": "web", "ui": "web"}


class Checks:
    """Results of the checks: every line in `lines`, the failures also in `failures`."""

    def __init__(self) -> None:
        self.passed = 0
        self.lines: list[str] = []
        self.failures: list[str] = []

    def check(self, ok: bool, what: str, detail: str = "") -> bool:
        if ok:
            self.passed += 1
            self.lines.append(f"ok - {what}")
        else:
            line = f"{what}: {detail}" if detail else what
            self.failures.append(line)
            self.lines.append(f"FAIL - {line}")
        return ok

    def skip(self, what: str, why: str) -> None:
        self.lines.append(f"skip - {what} ({why})")


def service_name(raw: str) -> str:
    """A documented name as compose calls the service ("PostgreSQL" -> postgres, "browser UI"
    or "web (browser UI)" -> web)."""
    name = re.sub(r"\(.*?\)", "", raw).strip().strip("`").strip().lower()
    return NAME_ALIASES.get(name, name)


def documented_ports(repo: Path) -> dict[str, int | None]:
    """Service name -> documented port; None for a port that is not published (loopback)."""
    ports: dict[str, int | None] = {}
    readme = (repo / "README.md").read_text()
    table = re.search(r"^\| service \| port \|.*?\n((?:\|.*\n)+)", readme, re.M)
    if table:
        for row in table.group(1).splitlines():
            cells = [c.strip() for c in row.strip("|").split("|")]
            m = re.match(r"(\d+)", cells[1]) if len(cells) > 1 else None
            if not m:
                continue
            ports[service_name(cells[0])] = None if "loopback" in cells[1] else int(m.group(1))
    api = repo.parent / "shared" / "API.md"
    if api.exists():
        m = re.search(r"Documented ports:(.*?)\.\s*$", api.read_text(), re.S | re.M)
        for name, port in re.findall(r"([A-Za-z][A-Za-z ]*?)\s+(\d+)", m.group(1) if m else ""):
            ports.setdefault(service_name(name), int(port))
    return ports


def readme_variables(repo: Path) -> set[str]:
    """Variable names in the README's Configuration table (first column)."""
    readme = (repo / "README.md").read_text()
    section = readme.split("## Configuration", 1)[-1]
    names: set[str] = set()
    for row in section.splitlines():
        if not row.startswith("| `"):
            continue
        first = row.strip("|").split("|")[0]
        names.update(tok.split("=")[0] for tok in re.findall(r"`([^`]+)`", first))
    return names


# One entry of the settings registry (core/src/settings.rs): its variable, the services that
# read it and its default (`Value("…")`, `PerService(&[("chat", "3001"), …])` or `Unset("…")`).
SETTING = re.compile(
    r'Setting \{\s*var: "([A-Z0-9_]+)",\s*services: &\[([^\]]*)\],\s*default: (.*?),\s*meaning:', re.S
)


def registry(repo: Path) -> dict[str, tuple[set[str], str]] | None:
    """Variable -> (services reading it, default's source text); None without the registry."""
    path = repo / "core" / "src" / "settings.rs"
    if not path.exists():
        return None
    return {
        m.group(1): (set(re.findall(r'"([a-z]+)"', m.group(2))), m.group(3))
        for m in SETTING.finditer(path.read_text())
    }


def registry_default(repo: Path, crate: str, var: str) -> str | None:
    """The registry's default of `var` for `crate`, as text."""
    entry = (registry(repo) or {}).get(var)
    if entry is None or crate not in entry[0]:
        return None
    default = entry[1]
    m = re.match(r'Value\("([^"]*)"\)', default)
    if m:
        return m.group(1)
    m = re.search(r'\("' + re.escape(crate) + r'", "([^"]*)"\)', default)
    return m.group(1) if m else None


def source_default_port(repo: Path, crate: str) -> int | None:
    port = registry_default(repo, crate, "PORT")
    return int(port) if port and port.isdigit() else None


def source_default_host(repo: Path, crate: str) -> str | None:
    return registry_default(repo, crate, "HOST")


def source_reads(repo: Path, crate: str, var: str) -> bool:
    entry = (registry(repo) or {}).get(var)
    return entry is not None and crate in entry[0]


def dockerfile_stages(path: Path) -> dict[str, list[str]]:
    """Stage name -> its instruction lines (continuations joined)."""
    stages: dict[str, list[str]] = {}
    current: list[str] | None = None
    text = re.sub(r"\\\n", " ", path.read_text())
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line, re.I)
        if m:
            current = []
            stages[(m.group(2) or m.group(1)).lower()] = current
            # A stage built on another inherits its instructions (USER, ENV).
            if m.group(1).lower() in stages:
                current.extend(stages[m.group(1).lower()])
        elif current is not None:
            current.append(line)
    return stages


# Each service's metrics port: the registry's METRICS_PORT default for it.
def metrics_ports(repo: Path) -> dict[str, int]:
    ports = {}
    for crate in ("gateway", "chat", "call", "worker", "web"):
        port = registry_default(repo, crate, "METRICS_PORT")
        if port and port.isdigit():
            ports[crate] = int(port)
    return ports


def published(port: dict) -> int | None:
    p = port.get("published")
    return int(p) if p not in (None, "") else None


def check_config(config: dict, repo: Path) -> Checks:
    c = Checks()
    services: dict[str, dict] = config["services"]
    documented = documented_ports(repo)
    known_vars = readme_variables(repo)
    c.check(bool(known_vars), "the README's Configuration table is found")

    # The port each service listens on inside its container.
    listen: dict[str, int] = {"postgres": 5432, "redis": 6379}
    rust = {
        name: svc for name, svc in services.items()
        if (svc.get("build") or {}).get("target")
        and Path((svc["build"].get("dockerfile") or "Dockerfile")).name == "Dockerfile"
        and Path(svc["build"].get("context", ".")).resolve() == repo.resolve()
    }
    c.check(set(rust) >= {"gateway", "chat", "call", "worker", "web"}, "gateway, chat, call, worker and web are built here", str(sorted(rust)))
    for name, svc in rust.items():
        crate = svc["build"]["target"]
        env = svc.get("environment") or {}
        if not (repo / "services" / crate).exists():
            c.skip(f"{name}: the crate's defaults and variables", f"services/{crate} is not in this tree")
            if env.get("PORT"):
                listen[name] = int(env["PORT"])
            continue
        default = source_default_port(repo, crate)
        c.check(default is not None, f"{name}: services/{crate} has a default PORT")
        c.check(env.get("PORT") == str(default), f"{name}: PORT is set to the service's default {default}", f"PORT={env.get('PORT')!r}")
        listen[name] = int(env.get("PORT") or default or 0)
        for var in env:
            c.check(var in known_vars, f"{name}: {var} is in the README's Configuration table")
            c.check(source_reads(repo, crate, var), f"{name}: {var} is declared as read by {crate} in core/src/settings.rs")

    # Metrics: each Rust service publishes its metrics port on the host's loopback only (they
    # tell traffic, routes and load), listening beyond the container's loopback for it.
    metrics = metrics_ports(repo)
    c.check(set(metrics) >= {"gateway", "chat", "call", "worker", "web"}, "core/src/settings.rs gives each service a METRICS_PORT", str(metrics))
    for name, svc in rust.items():
        port = metrics.get(svc["build"]["target"])
        env = svc.get("environment") or {}
        mine = [p for p in svc.get("ports") or [] if p.get("target") == port]
        c.check(len(mine) == 1, f"{name}: publishes its metrics port {port}", str(svc.get("ports")))
        for p in mine:
            c.check(published(p) == port and p.get("host_ip") == "127.0.0.1", f"{name}: metrics on the host's loopback, port {port}", str(p))
        c.check(env.get("METRICS_HOST") == "0.0.0.0", f"{name}: METRICS_HOST is 0.0.0.0 (reachable from the host)", f"METRICS_HOST={env.get('METRICS_HOST')!r}")

    # Published ports: the documented host port, the listening container port.
    for name, svc in services.items():
        ports = svc.get("ports") or []
        if name in rust:
            port = metrics.get(rust[name]["build"]["target"])
            ports = [p for p in ports if p.get("target") != port]
        doc = documented.get(name, "undocumented")
        if name not in documented:
            c.check(not ports, f"{name}: publishes nothing (no documented port)", str(ports))
            continue
        if doc is None:
            c.check(not ports, f"{name}: publishes nothing (documented as loopback only)", str(ports))
            continue
        c.check(len(ports) == 1, f"{name}: publishes one port", str(ports))
        for p in ports:
            c.check(published(p) == doc, f"{name}: published on the documented port {doc}", str(p))
            c.check(p.get("target") == listen.get(name), f"{name}: publishes the port it listens on ({listen.get(name)})", str(p))
            loopback = p.get("host_ip") == "127.0.0.1"
            c.check(loopback == (name in LOOPBACK_ONLY), f"{name}: {'loopback only' if name in LOOPBACK_ONLY else 'on every interface'}", str(p))
    for name in documented:
        if documented[name] is not None:
            c.check(name in services, f"{name}: the documented service is in compose.yaml")

    # URLs that name a compose service use its port; the upstreams name the right one.
    reached: set[str] = set()
    for name, svc in services.items():
        for var, value in (svc.get("environment") or {}).items():
            if not value or "://" not in value:
                continue
            u = urlsplit(value)
            if u.hostname in services:
                reached.add(u.hostname)
                c.check(u.port == listen.get(u.hostname), f"{name}: {var} uses {u.hostname}'s port {listen.get(u.hostname)}", value)
    # A service reached from another container, or published, must not listen on loopback
    # (its own default may be loopback: outside containers only the gateway calls it).
    for name, svc in rust.items():
        api_ports = [p for p in svc.get("ports") or [] if p.get("target") != metrics.get(svc["build"]["target"])]
        if name not in reached and not api_ports:
            continue
        crate = svc["build"]["target"]
        host = (svc.get("environment") or {}).get("HOST") or source_default_host(repo, crate)
        if host is None:
            c.skip(f"{name}: listens beyond loopback", f"no HOST in compose and services/{crate} is not in this tree")
            continue
        c.check(not (host.startswith("127.") or host == "::1"), f"{name}: listens beyond loopback (HOST {host})")
    gw_env = services["gateway"].get("environment") or {}
    for var, target in (("CHAT_SERVICE_URL", "chat"), ("CALL_SERVICE_URL", "call")):
        c.check(urlsplit(gw_env.get(var) or "").hostname == target, f"gateway: {var} names the {target} service", str(gw_env.get(var)))
    pg = services["postgres"].get("environment") or {}
    for name, svc in rust.items():
        env = svc.get("environment") or {}
        for var, host in (("CHAT_DATABASE_URL", "postgres"), ("REDIS_URL", "redis")):
            if var not in env and name != "web":
                c.check(name not in ("chat", "call", "worker", "gateway"), f"{name}: {var} is set")
            if var not in env:
                continue
            c.check(urlsplit(env[var]).hostname == host, f"{name}: {var} names the {host} service", env[var])
        if "CHAT_DATABASE_URL" in env:
            u = urlsplit(env["CHAT_DATABASE_URL"])
            c.check(
                (u.username, u.password, u.path.lstrip("/")) == (pg.get("POSTGRES_USER"), pg.get("POSTGRES_PASSWORD"), pg.get("POSTGRES_DB")),
                f"{name}: CHAT_DATABASE_URL has PostgreSQL's user, password and database",
                env["CHAT_DATABASE_URL"],
            )
    web_env = (services.get("web") or {}).get("environment") or {}
    if "GATEWAY_PUBLIC_URL" in web_env:
        u = urlsplit(web_env["GATEWAY_PUBLIC_URL"])
        c.check(u.port == documented.get("gateway"), "web: GATEWAY_PUBLIC_URL uses the gateway's published port", web_env["GATEWAY_PUBLIC_URL"])

    # Health, restarts, ordering, storage.
    for name, svc in services.items():
        hc = svc.get("healthcheck") or {}
        c.check(bool(hc.get("test")) and not hc.get("disable"), f"{name}: has a health check")
        if name in rust:
            c.check(hc.get("test", [None])[:2] == ["CMD", "healthcheck"], f"{name}: health check is the image's bash probe", str(hc.get("test")))
        c.check(svc.get("restart") in ("unless-stopped", "always", "on-failure"), f"{name}: restarts", str(svc.get("restart")))
        for dep, how in (svc.get("depends_on") or {}).items():
            c.check(how.get("condition") == "service_healthy", f"{name}: waits for {dep} to be healthy", str(how))
    needs = {"chat": {"postgres", "redis"}, "call": {"postgres", "redis"}, "worker": {"postgres", "redis"},
             "gateway": {"postgres", "redis", "chat", "call"}, "web": {"gateway"}}
    for name, deps in needs.items():
        have = set((services.get(name) or {}).get("depends_on") or {})
        c.check(deps <= have, f"{name}: depends on {', '.join(sorted(deps))}", str(sorted(have)))
    for name, path in (("postgres", "/var/lib/postgresql/data"), ("redis", "/data")):
        vols = services[name].get("volumes") or []
        c.check(
            any(v.get("type") == "volume" and v.get("target") == path and v.get("source") in (config.get("volumes") or {}) for v in vols),
            f"{name}: {path} is a named volume",
            str(vols),
        )
    cmd = " ".join(services["redis"].get("command") or [])
    c.check("--appendonly yes" in cmd, "redis: append-only file on", cmd)

    # The Dockerfile behind the Rust services.
    stages = dockerfile_stages(repo / "Dockerfile")
    for name, svc in rust.items():
        target = svc["build"]["target"]
        lines = stages.get(target)
        if not c.check(lines is not None, f"{name}: Dockerfile has the stage {target}"):
            continue
        users = [l.split(None, 1)[1] for l in lines if l.upper().startswith("USER ")]
        c.check(bool(users) and users[-1].split(":")[0] not in ("root", "0"), f"{name}: runs as a non-root user", str(users))
        exposed = [int(p.split("/")[0]) for l in lines if l.upper().startswith("EXPOSE ") for p in l.split()[1:]]
        if name in documented and documented[name] is not None:
            c.check(exposed == [listen.get(name)], f"{name}: the image exposes {listen.get(name)}", str(exposed))
        c.check(any(l.startswith("ENTRYPOINT") and f"/{target}\"" in l for l in lines), f"{name}: the image runs the {target} binary")
    return c


def check_test_overlay(config: dict, repo: Path) -> Checks:
    """compose.test.yaml on top of compose.yaml: a `smoke` runner that waits for the stack and
    reaches it at the right addresses; the stack itself is as compose.yaml has it."""
    c = Checks()
    services: dict[str, dict] = config["services"]
    smoke = services.get("smoke")
    if not c.check(smoke is not None, "the overlay adds the smoke service"):
        return c
    dockerfile = (smoke.get("build") or {}).get("dockerfile") or ""
    c.check((repo / dockerfile).is_file(), f"smoke: its Dockerfile {dockerfile} exists")
    c.check(smoke.get("restart") in (None, "no"), "smoke: runs once", str(smoke.get("restart")))
    for dep in ("gateway", "web"):
        how = (smoke.get("depends_on") or {}).get(dep) or {}
        c.check(how.get("condition") == "service_healthy", f"smoke: waits for {dep} to be healthy", str(how))
    env = smoke.get("environment") or {}
    for var, target in (("GATEWAY_URL", "gateway"), ("WEB_URL", "web")):
        u = urlsplit(env.get(var) or "")
        port = int(((services[target].get("environment") or {}).get("PORT")) or 0)
        c.check((u.hostname, u.port) == (target, port), f"smoke: {var} is {target}'s address in the stack", str(env.get(var)))
    base = check_config({**config, "services": {k: v for k, v in services.items() if k != "smoke"}}, repo)
    c.check(not base.failures, "the stack under the overlay passes the compose.yaml checks", "; ".join(base.failures))
    return c


def main() -> int:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    config = json.loads(Path(args[0]).read_text())
    repo = Path(args[1] if len(args) > 1 else ".").resolve()
    c = (check_test_overlay if "--test-overlay" in sys.argv else check_config)(config, repo)
    for line in c.lines:
        if "--verbose" in sys.argv or not line.startswith("ok - "):
            print(line)
    print(f"compose checks: {c.passed} passed, {len(c.failures)} failed")
    return 1 if c.failures else 0


if __name__ == "__main__":
    sys.exit(main())
