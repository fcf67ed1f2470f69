"""The compose checks catch each kind of mistake: every case below breaks one thing in the
resolved compose.yaml and expects a new failure naming it.

Usage: COMPOSE_JSON=resolved.json python3 -m unittest tests/compose/test_check_compose.py
(from the repository root; scripts/test-compose.sh does this).
"""

import copy
import json
import os
import unittest
from pathlib import Path

from check_compose import check_config

REPO = Path(__file__).resolve().parents[2]
CONFIG = json.loads(Path(os.environ["COMPOSE_JSON"]).read_text())
BASELINE = set(check_config(CONFIG, REPO).failures)


def svc(config, name):
    return config["services"][name]


class CatchesMistakes(unittest.TestCase):
    def assert_caught(self, mutate, expected):
        config = copy.deepcopy(CONFIG)
        mutate(config)
        new = set(check_config(config, REPO).failures) - BASELINE
        self.assertTrue(any(expected in f for f in new), f"expected a failure with {expected!r}, got {sorted(new)}")

    def test_a_port_other_than_the_service_default(self):
        self.assert_caught(lambda c: svc(c, "chat")["environment"].update(PORT="3005"), "chat: PORT is set to the service's default")

    def test_a_published_port_that_is_not_documented(self):
        self.assert_caught(lambda c: svc(c, "postgres")["ports"][0].update(published="5433"), "postgres: published on the documented port")

    def test_publishing_a_port_the_service_does_not_listen_on(self):
        self.assert_caught(lambda c: svc(c, "gateway")["ports"][0].update(target=3001), "gateway: publishes the port it listens on")

    def test_an_internal_service_on_every_interface(self):
        self.assert_caught(lambda c: svc(c, "chat")["ports"][0].pop("host_ip"), "chat: loopback only")

    def test_publishing_the_worker(self):
        self.assert_caught(lambda c: svc(c, "worker").update(ports=[{"target": 3003, "published": "3003"}]), "worker: publishes nothing")

    def test_metrics_on_every_interface(self):
        def expose(c):
            for p in svc(c, "worker")["ports"]:
                p.pop("host_ip", None)
        self.assert_caught(expose, "worker: metrics on the host's loopback")

    def test_metrics_not_published(self):
        self.assert_caught(lambda c: svc(c, "worker").update(ports=[]), "worker: publishes its metrics port")

    def test_metrics_listening_on_the_container_loopback(self):
        self.assert_caught(lambda c: svc(c, "chat")["environment"].pop("METRICS_HOST"), "chat: METRICS_HOST is 0.0.0.0")

    def test_a_reached_service_on_loopback(self):
        self.assert_caught(lambda c: svc(c, "chat")["environment"].update(HOST="127.0.0.1"), "chat: listens beyond loopback")

    def test_an_upstream_on_the_wrong_port(self):
        self.assert_caught(lambda c: svc(c, "gateway")["environment"].update(CHAT_SERVICE_URL="http://chat:3002"), "CHAT_SERVICE_URL uses chat's port")

    def test_an_upstream_naming_the_wrong_service(self):
        self.assert_caught(lambda c: svc(c, "gateway")["environment"].update(CALL_SERVICE_URL="http://chat:3001"), "CALL_SERVICE_URL names the call service")

    def test_a_misspelt_variable(self):
        self.assert_caught(lambda c: svc(c, "worker")["environment"].update(CHAT_DATABSE_URL="x"), "CHAT_DATABSE_URL is in the README")

    def test_a_variable_the_service_does_not_read(self):
        # Documented, but for other services: the worker would ignore it.
        self.assert_caught(lambda c: svc(c, "worker")["environment"].update(AUTH_MODE="compat"), "worker: AUTH_MODE is declared as read by worker")

    def test_a_missing_database_url(self):
        self.assert_caught(lambda c: svc(c, "call")["environment"].pop("CHAT_DATABASE_URL"), "call: CHAT_DATABASE_URL is set")

    def test_a_database_password_that_does_not_match(self):
        self.assert_caught(
            lambda c: svc(c, "chat")["environment"].update(CHAT_DATABASE_URL="postgres://postgres:other@postgres:5432/chat"),
            "chat: CHAT_DATABASE_URL has PostgreSQL's user, password and database",
        )

    def test_waiting_only_for_a_start(self):
        self.assert_caught(lambda c: svc(c, "gateway")["depends_on"]["chat"].update(condition="service_started"), "gateway: waits for chat to be healthy")

    def test_a_missing_dependency(self):
        self.assert_caught(lambda c: svc(c, "web")["depends_on"].pop("gateway"), "web: depends on gateway")

    def test_no_health_check(self):
        self.assert_caught(lambda c: svc(c, "redis").pop("healthcheck"), "redis: has a health check")

    def test_no_restart_policy(self):
        self.assert_caught(lambda c: svc(c, "call").pop("restart"), "call: restarts")

    def test_redis_without_its_append_only_file(self):
        self.assert_caught(lambda c: svc(c, "redis").update(command=["redis-server"]), "redis: append-only file on")

    def test_data_in_an_anonymous_volume(self):
        self.assert_caught(lambda c: svc(c, "postgres")["volumes"][0].update(source="unnamed"), "postgres: /var/lib/postgresql/data is a named volume")

    def test_a_build_target_the_dockerfile_lacks(self):
        self.assert_caught(lambda c: svc(c, "chat")["build"].update(target="chatt"), "chat: Dockerfile has the stage chatt")


if __name__ == "__main__":
    unittest.main()
