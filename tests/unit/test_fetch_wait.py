"""The fetch wait by broker: short for the embedded broker, which always waits it out; Kafka's
own default for a real broker, which answers as soon as data arrives."""

from __future__ import annotations

from pathlib import Path

from jobstream.config import EMBEDDED_FETCH_WAIT_MS, KAFKA_FETCH_WAIT_MS, KafkaSection, load

REPO_CONFIG = Path(__file__).resolve().parents[2] / "config" / "config.yml"


def test_fetch_wait_unset_embedded_broker_gets_50_ms() -> None:
    assert KafkaSection().fetch_max_wait_ms == EMBEDDED_FETCH_WAIT_MS == 50


def test_fetch_wait_unset_real_broker_gets_kafkas_default() -> None:
    kafka = KafkaSection(bootstrap_servers="kafka:29092")
    assert kafka.fetch_max_wait_ms == KAFKA_FETCH_WAIT_MS == 500


def test_fetch_wait_set_is_kept_for_either_broker() -> None:
    assert KafkaSection(fetch_max_wait_ms=120).fetch_max_wait_ms == 120
    assert KafkaSection(bootstrap_servers="k:9092", fetch_max_wait_ms=20).fetch_max_wait_ms == 20


def test_fetch_wait_repo_config_follows_the_broker_named_by_the_environment() -> None:
    assert load(REPO_CONFIG, env={}).kafka.fetch_max_wait_ms == 50
    real = load(REPO_CONFIG, env={"KAFKA_BOOTSTRAP_SERVERS": "kafka:29092"})
    assert real.kafka.fetch_max_wait_ms == 500
