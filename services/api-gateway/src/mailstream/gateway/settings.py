from __future__ import annotations

from dataclasses import dataclass

from mailstream.core.settings import CommonSettings, setting
from mailstream.gateway.domain_handlers import DomainConfig


@dataclass(frozen=True)
class GatewaySettings(CommonSettings):
    http_port: int = setting(8080, "Port of the gateway's HTTP API (also /healthz, /readyz, /metrics)")
    db_pool_size: int = setting(20, "Most PostgreSQL connections the gateway holds")
    scheduler_interval_s: float = setting(0.2, "How often the gateway looks for due scheduled sends (seconds)")
    api_key_cache_s: float = setting(
        2.0, "Seconds an API key lookup is cached; a key revoked on another replica works at most this long"
    )
    require_sending_domain: bool = setting(
        False,
        "HTTP sends whose From domain is not a verified sending domain of the account end with "
        "UNCONFIGURED_SENDING_DOMAIN (HubSpot's rule; off for local development)",
    )
    api_rate_limit: str = setting(
        "100000/10s",
        "Requests an API key may make per interval in each gateway replica (LIMIT/INTERVAL, e.g. 100/10s), "
        "unless the key has its own; past it 429 RATE_LIMITS with Retry-After",
    )
    scheduler_enabled: bool = setting(True, "Run the scheduled-send releaser in this replica")
    accept_max_batch: int = setting(
        256, "Most sends one group commit takes (one statement per table, one produce request, one commit)"
    )
    # One-off sends to many contacts: the fan-out process (python -m mailstream.gateway.fanout, issue 23)
    fanout_port: int = setting(8083, "Port of the fan-out's /healthz, /readyz and /metrics")
    fanout_batch_size: int = setting(
        500, "Recipients of a one-off send the fan-out decides and publishes per transaction"
    )
    fanout_poll_interval_s: float = setting(
        1.0, "How often the fan-out looks for due one-off sends without a record waking it (seconds)"
    )
    # Event webhooks: the dispatcher (python -m mailstream.gateway.webhooks, issue 19; docs/webhooks.md)
    webhook_ops_port: int = setting(8084, "Port of the webhook dispatcher's /healthz, /readyz and /metrics")
    webhook_allowed_networks: tuple[str, ...] = setting(
        (),
        "Networks webhook URLs may target though private, loopback or link-local (CIDR, comma-separated; the "
        "local stack allows 127.0.0.0/8,::1/128 for the tests' receivers); empty = none: only global addresses",
    )
    webhook_retry_delays: str = setting(
        "60,120,240,480,960,1920,3840,7680,15360,28800,26940",
        "Seconds before each retry of a webhook event its endpoint did not take (each at most 8 h, at most 24 h "
        "in all); after the last one fails the event is parked",
    )
    webhook_batch_size: int = setting(100, "Most events in one webhook POST")
    webhook_max_body_bytes: int = setting(1_000_000, "Largest webhook POST body (a batch is cut before it)")
    webhook_timeout_s: float = setting(10.0, "Seconds a webhook endpoint has to answer a POST (then it is retried)")
    webhook_max_response_bytes: int = setting(
        4096, "Bytes of a webhook endpoint's answer that are read (the rest is not; an excerpt is logged)"
    )
    webhook_concurrency: int = setting(32, "Endpoints the dispatcher POSTs to at once")
    webhook_poll_interval_s: float = setting(0.25, "How often the dispatcher looks for webhook events due")
    webhook_secret_overlap_s: float = setting(
        86400.0, "Seconds a rotated webhook secret still signs (beside the new one) unless the rotation says"
    )
    webhook_log_retention_s: float = setting(
        604800.0, "Seconds the webhook delivery log and delivered events' keys are kept (7 days)"
    )
    # SMTP submission (issue 7)
    smtp_host: str = setting("", "Address the SMTP submission server binds; empty = the MAILSTREAM_HTTP_HOST address")
    smtp_port: int = setting(
        2587, "Port of the SMTP submission server (STARTTLS, AUTH with SMTP tokens; 587 in production)"
    )
    smtps_port: int = setting(
        2465,
        "Port of the SMTP submission server on implicit TLS (SMTPS; HubSpot's 465, 465 in production): the same "
        "AUTH and handling as MAILSTREAM_SMTP_PORT; 0 disables it",
    )
    smtp_hostname: str = setting(
        "mailstream.local", "Name the SMTP submission server gives in its greeting and certificate"
    )
    smtp_max_message_size: int = setting(
        524288,
        "Largest message accepted over SMTP, in bytes (advertised as SIZE; beyond it 552). With tracking the "
        "rendered message grows (re-encoded parts, long links); keep it well under Kafka's 1 MB record limit",
    )
    smtp_max_recipients: int = setting(50, "Most recipients per SMTP message (beyond it 452)")
    smtp_tls_cert: str = setting(
        "", "PEM certificate (chain) for STARTTLS and SMTPS; empty = a self-signed one made at start"
    )
    smtp_tls_key: str = setting("", "PEM private key of smtp_tls_cert", secret=True)
    smtp_auth_max_failures: int = setting(5, "Failed SMTP AUTH attempts allowed per client address in the window")
    smtp_auth_failure_window: float = setting(300.0, "Seconds over which failed SMTP AUTH attempts are counted")
    smtp_require_verified_domain: bool = setting(
        False, "Accept SMTP mail only From a verified sending domain (else any of the account's sending domains)"
    )
    # Sending domains and dedicated IPs (issue 15)
    policy_dir: str = setting("deploy/policy", "Folder of the sending policy (pools.toml, shaping, bounces)")
    spf_include: str = setting(
        "spf.mailstream.local",
        "Host name an account without a dedicated pool puts in its SPF record (include:<this>)",
    )
    return_path_label: str = setting(
        "bounces", "Label of a sending domain's return-path CNAME: <label>.<domain> -> MAILSTREAM_BOUNCE_HOST"
    )
    bounce_host: str = setting(
        "bounces.mailstream.local", "Host name every return-path CNAME must point at (where bounces are received)"
    )
    dmarc_report_to: str = setting(
        "", "Address the recommended DMARC record sends aggregate reports to (rua=mailto:); empty = none"
    )
    dns_nameservers: str = setting(
        "",
        "Nameservers domain verification asks: host[:port] comma-separated (port 53 by default); empty = the system's",
    )
    dns_timeout_s: float = setting(5.0, "Seconds a DNS lookup of domain verification may take (then UNKNOWN)")
    domain_recheck_interval_s: float = setting(
        21600.0, "Verified sending domains are checked again after this many seconds (6 h)"
    )
    domain_failing_grace_s: float = setting(
        259200.0,
        "Seconds a verified domain whose records fail stays FAILING (still signing) before losing verification (72 h)",
    )
    domain_checks_enabled: bool = setting(
        True, "Run the re-verification of sending domains in this replica (one replica at a time checks, by lock)"
    )

    # Automation triggers' restrictions (issue 16; the gateway checks a rule on create and PATCH, the
    # trigger process again whenever it reads the rules)
    trigger_topic_prefixes: tuple[str, ...] = setting(
        (),
        "Topic prefixes an account's trigger rules may read, comma-separated ({account_id} stands for the "
        "account's id, e.g. acct-{account_id}.); `mailstream accounts trigger-topics` sets an account's own; "
        "empty = any topic that is not mailstream's own",
    )
    trigger_registry_urls: tuple[str, ...] = setting(
        (),
        "Schema registries trigger rules may name, comma-separated URL prefixes (scheme://host[:port][/path], "
        "scheme, host and port matched exactly, the path by whole segments); empty = none: schemaRegistryUrl is "
        "refused (an inline avroSchema works)",
    )

    # Admin console (issue 17)
    console_cookie_secure: bool = setting(
        False, "Console cookies are always Secure (else only when the request came over https, X-Forwarded-Proto too)"
    )
    console_session_s: float = setting(43200.0, "Seconds a console sign-in lasts (12 h)")

    def domain_config(self) -> DomainConfig:
        return DomainConfig(
            policy_dir=self.policy_dir,
            spf_include=self.spf_include,
            return_path_label=self.return_path_label,
            bounce_host=self.bounce_host,
            dmarc_report_to=self.dmarc_report_to,
            dns_nameservers=self.dns_nameservers,
            dns_timeout_s=self.dns_timeout_s,
            recheck_interval_s=self.domain_recheck_interval_s,
            failing_grace_s=self.domain_failing_grace_s,
        )
