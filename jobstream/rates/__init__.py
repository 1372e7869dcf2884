"""One account, one rate, whatever the number of workers: each worker's share of each account's
calls per second (`plan` decides, `shares` runs it over Kafka)."""

from jobstream.rates.plan import FRESH, HEARTBEAT, LEAD, SETTLE, SharePlan
from jobstream.rates.shares import RateShares

__all__ = ["FRESH", "HEARTBEAT", "LEAD", "SETTLE", "RateShares", "SharePlan"]
