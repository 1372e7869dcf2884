"""docker-compose.yml as Compose itself reads it: `docker-compose config`, normalized output."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from jobstream import config as jobstream_config
from tests.deploy.compose_cli import environment, healthcheck_command, mounts, ports, run_config
from tests.deploy.topic_commands import created_topics

KAFKA_IMAGE = "confluentinc/cp-kafka:7.5.0"


def _listeners(value: str) -> dict[str, str]:
    """'PLAINTEXT://kafka:29092,PLAINTEXT_HOST://localhost:9092' -> {name: host:port}."""
    pairs = (item.split("://", 1) for item in value.split(","))
    return {name: address for name, address in pairs}


def _published(config: dict[str, Any]) -> dict[int, tuple[str, str]]:
    """Every published host port -> (service, host ip)."""
    out: dict[int, tuple[str, str]] = {}
    for name, service in config["services"].items():
        for port in ports(service):
            if port.published is not None:
                assert port.published not in out, f"host port {port.published} published twice"
                out[port.published] = (name, port.host_ip)
    return out


def test_compose_config_all_profiles_lists_every_service(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {
        "zookeeper",
        "kafka",
        "kafka-init",
        "app",
        "worker",
        "kafka-ui",
    }
    assert compose["services"]["zookeeper"]["image"] == "confluentinc/cp-zookeeper:7.5.0"
    assert compose["services"]["kafka"]["image"] == KAFKA_IMAGE


def test_compose_kafka_listeners_internal_and_host_advertised(compose: dict[str, Any]) -> None:
    env = environment(compose["services"]["kafka"])
    advertised = _listeners(env["KAFKA_ADVERTISED_LISTENERS"])
    assert advertised == {"PLAINTEXT": "kafka:29092", "PLAINTEXT_HOST": "localhost:9092"}
    bound = _listeners(env["KAFKA_LISTENERS"])
    assert {name: address.rsplit(":", 1)[1] for name, address in bound.items()} == {
        "PLAINTEXT": "29092",
        "PLAINTEXT_HOST": "9092",
    }
    protocol_map = env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"]
    protocols = dict(item.split(":") for item in protocol_map.split(","))
    assert protocols == {"PLAINTEXT": "PLAINTEXT", "PLAINTEXT_HOST": "PLAINTEXT"}
    # Brokers talk to each other on the internal listener, never on localhost.
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] == "PLAINTEXT"
    assert env["KAFKA_ZOOKEEPER_CONNECT"] == "zookeeper:2181"
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "1"
    assert env["KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS"] == "0"


def test_compose_ports_host_9092_published_29092_internal(compose: dict[str, Any]) -> None:
    published = _published(compose)
    assert published[9092] == ("kafka", "127.0.0.1")
    assert [p.target for p in ports(compose["services"]["kafka"])] == [9092]
    assert published[8000] == ("app", "127.0.0.1")
    assert published[2181] == ("zookeeper", "127.0.0.1")
    assert 29092 not in published
    assert all(29092 != p.target for s in compose["services"].values() for p in ports(s))


def test_compose_ports_loopback_by_default_every_interface_on_request(
    compose: dict[str, Any], compose_cli: str, compose_project: Path, tmp_path: Path
) -> None:
    # Kafka has no authentication: published on every interface it would let anyone past the
    # admin token (job_commands, job_raw). Nothing is, unless .env asks.
    assert {ip for _, ip in _published(compose).values()} == {"127.0.0.1"}
    project = tmp_path / "project"
    shutil.copytree(compose_project, project)
    with (project / ".env").open("a", encoding="utf-8") as env:
        env.write("APP_PUBLISH_ADDRESS=0.0.0.0\nKAFKA_PUBLISH_ADDRESS=0.0.0.0\n")
    result = run_config(compose_cli, project, "--profile", "ui")
    assert result.returncode == 0, result.stderr
    published = _published(yaml.safe_load(result.stdout))
    assert published[8000] == ("app", "0.0.0.0")
    assert published[9092] == ("kafka", "0.0.0.0")
    assert published[2181] == ("zookeeper", "127.0.0.1")
    assert published[8080] == ("kafka-ui", "127.0.0.1")


def test_compose_kafka_init_creates_topics_with_three_partitions(
    compose: dict[str, Any], repo: Path
) -> None:
    init = compose["services"]["kafka-init"]
    assert init["image"] == KAFKA_IMAGE
    assert init["restart"] == "no"
    script = "\n".join([*init.get("entrypoint", []), *init["command"]])
    topics = created_topics(script)
    assert topics["job_data"].partitions == 3
    assert topics["job_data"].replication_factor == 1
    # The app's own topics, as named in the containers' configuration, with its partition count.
    kafka = jobstream_config.load(
        repo / "config" / "config.yml.docker", env={"API_USERNAME": "u", "API_PASSWORD": "p"}
    ).kafka
    names = {
        kafka.topic,
        kafka.raw_topic,
        kafka.commands_topic,
        kafka.rejects_topic,
        kafka.candidates_topic,
    }
    assert names == {"job_data", "job_raw", "job_commands", "job_rejects", "job_candidates"}
    assert set(topics) == names
    for call in topics.values():
        assert call.partitions == kafka.partitions == 3
        assert call.replication_factor == 1
        assert call.if_not_exists
        assert call.bootstrap_server == "kafka:29092"


def test_compose_app_env_points_at_internal_listener(compose: dict[str, Any], repo: Path) -> None:
    for name in ("app", "worker"):
        env = environment(compose["services"][name])
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:29092"
        # env_file: .env was read: the credentials' keys are there (empty in the template).
        assert {"API_USERNAME", "API_PASSWORD", "ADMIN_TOKEN", "READ_TOKEN"} <= set(env)
        # CONFIG_PATH names a file of the mounted ./config directory.
        config_path = env["CONFIG_PATH"]
        assert config_path.startswith("/app/config/")
        assert (repo / "config" / config_path.removeprefix("/app/config/")).is_file()


def test_compose_app_volumes_config_readonly_data_named(
    compose: dict[str, Any], compose_project: Path
) -> None:
    for name in ("app", "worker"):
        by_target = {m.target: m for m in mounts(compose["services"][name])}
        config = by_target["/app/config"]
        assert Path(config.source) == compose_project / "config"
        assert config.read_only
        data = by_target["/app/data"]
        assert data.source == "app_data"
        assert not data.read_only
    assert "app_data" in compose["volumes"]
    kafka_targets = {m.target: m.source for m in mounts(compose["services"]["kafka"])}
    assert kafka_targets["/var/lib/kafka/data"] in compose["volumes"]


def test_compose_healthchecks_probe_each_service(compose: dict[str, Any]) -> None:
    services = compose["services"]
    zookeeper = " ".join(healthcheck_command(services["zookeeper"]))
    assert "2181" in zookeeper
    kafka = healthcheck_command(services["kafka"])
    assert kafka[0] == "CMD" and "kafka:29092" in kafka
    for name in ("app", "worker"):
        app = healthcheck_command(services[name])
        assert app[:3] == ["CMD", "python", "-c"]
        assert "/health" in app[3]


def test_compose_depends_on_waits_for_health_and_topics(compose: dict[str, Any]) -> None:
    def conditions(name: str) -> dict[str, str]:
        depends = compose["services"][name]["depends_on"]
        return {service: spec["condition"] for service, spec in depends.items()}

    assert conditions("kafka") == {"zookeeper": "service_healthy"}
    assert conditions("kafka-init") == {"kafka": "service_healthy"}
    for name in ("app", "worker"):
        assert conditions(name) == {
            "kafka": "service_healthy",
            "kafka-init": "service_completed_successfully",
        }
    assert conditions("kafka-ui") == {"kafka": "service_healthy"}


def test_compose_app_single_port_worker_scalable_without_ports(compose: dict[str, Any]) -> None:
    app, worker = compose["services"]["app"], compose["services"]["worker"]
    assert [(p.published, p.target) for p in ports(app)] == [(8000, 8000)]
    # `--scale worker=N` works only while the worker publishes no fixed host port.
    assert ports(worker) == []
    assert worker["profiles"] == ["scale"]
    assert compose["services"]["kafka-ui"]["profiles"] == ["ui"]
    assert app["image"] == worker["image"]
    for name in ("zookeeper", "kafka", "app", "worker"):
        assert compose["services"][name]["restart"] == "unless-stopped"


@pytest.mark.parametrize(
    "broken",
    [
        {"depends_on": {"kafka": {"condition": "service_ready"}}},
        {"depends_on": {"no-such-service": {"condition": "service_healthy"}}},
    ],
    ids=["unknown-condition", "undefined-service"],
)
def test_compose_config_broken_depends_on_rejected(
    compose_cli: str, compose_project: Path, tmp_path: Path, broken: dict[str, Any]
) -> None:
    # The same command on a copy whose only damage is `broken` must fail: `config` validates.
    project = tmp_path / "project"
    shutil.copytree(compose_project, project)
    data = yaml.safe_load((project / "docker-compose.yml").read_text(encoding="utf-8"))
    (project / "docker-compose.yml").write_text(yaml.safe_dump(data), encoding="utf-8")
    intact = run_config(compose_cli, project)
    assert intact.returncode == 0, intact.stderr
    data["services"]["kafka-init"].update(broken)
    (project / "docker-compose.yml").write_text(yaml.safe_dump(data), encoding="utf-8")
    damaged = run_config(compose_cli, project)
    assert damaged.returncode != 0, damaged.stdout
