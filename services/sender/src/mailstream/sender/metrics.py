"""Prometheus metrics of the sender, per pool, source IP and destination site."""

from prometheus_client import Counter, Gauge, Histogram

OUTCOMES = Counter(
    "mailstream_sender_outcomes_total",
    "Delivery outcomes (delivered, deferred, bounced, dropped, rerouted, replayed)",
    ["pool", "ip", "destination", "outcome"],
)
BACKOFF = Gauge(
    "mailstream_sender_destination_backoff",
    "Automation state of a destination on an IP: 0 normal, 1 throttled, 2 suspended",
    ["ip", "destination"],
)
LAG = Gauge(
    "mailstream_sender_consumer_lag", "Records behind the end of each assigned partition", ["topic", "partition"]
)
RETRY_WAIT = Gauge(
    "mailstream_sender_retry_paused_seconds",
    "Seconds until a paused retry partition's head is due",
    ["topic", "partition"],
)
SMTP_SECONDS = Histogram(
    "mailstream_sender_smtp_seconds", "SMTP transaction time", ["ip"], buckets=(0.005, 0.02, 0.1, 0.5, 2, 10, 60)
)
WARMUP_CAP = Gauge(
    "mailstream_sender_warmup_cap", "The current warm-up period's cap of an IP that is still warming", ["ip"]
)
WARMUP_CAPPED = Counter(
    "mailstream_sender_warmup_capped_total",
    "Sends that found their IP's warm-up cap reached (rerouted or deferred)",
    ["ip"],
)
