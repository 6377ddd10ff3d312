"""Secrets never appear in the services' logs: every API key, SMTP token password and owner secret
this suite used (runs last, see conftest.py), the link-signing keys and the PostgreSQL password.
The logs are the whole run's (.mailstream/logs/*.log), whatever else ran against the stack.

This test also makes its own: a key and a token used over HTTP and SMTP, a near-miss key and a
failed AUTH with a near-miss password. A second test swaps AUTH's fields (the password typed as
the username), a common client misconfiguration."""

from __future__ import annotations

import asyncio
import base64
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.e2e

LOGS = Path(__file__).resolve().parents[2] / ".mailstream" / "logs"
GATEWAY_LOG = LOGS / "gateway.log"


def near_miss(secret: str) -> str:
    """The secret with its last character changed (to one it is not: a fixed "x" matches 1 in 64)."""
    return secret[:-1] + ("y" if secret.endswith("x") else "x")


def log_end() -> int:
    return GATEWAY_LOG.stat().st_size if GATEWAY_LOG.exists() else 0


async def until_logged(client: str, *, since: int, within: float = 10.0) -> None:
    """Waits until the gateway's log, after offset `since`, has the failed AUTH's line (it names the
    client address, unique to the session): the session's lines are written, so grepping means something."""
    deadline = time.monotonic() + within
    while True:
        if GATEWAY_LOG.exists():
            with GATEWAY_LOG.open("rb") as log:
                log.seek(since)
                if f'"{client}"'.encode() in log.read():
                    return
        if time.monotonic() > deadline:
            pytest.fail(f"{GATEWAY_LOG} has no line about the failed AUTH from {client} after {within} s")
        await asyncio.sleep(0.1)


def occurrences(value: str) -> dict[str, int]:
    found = {}
    needles = {value.encode(), base64.b64encode(value.encode())}
    for log in sorted(LOGS.glob("*.log")):
        data = log.read_bytes()
        n = sum(data.count(needle) for needle in needles)
        if n:
            found[log.name] = n
    return found


async def test_no_secret_used_in_the_run_appears_in_any_log(h, api, smtp_token, secrets):
    token = await smtp_token("sec-logs")
    assert (await api.get(h.TOKENS, headers=h.auth(token.key))).status_code == 200
    assert (await api.get(h.TOKENS, headers=h.auth(near_miss(token.key)))).status_code == 401
    since, near_miss_from = log_end(), h.client_address()

    def smtp_use() -> list[int]:
        codes = []
        with h.RawSmtp(h.SMTP_PORT, source=h.client_address()) as s:
            codes.append(s.session(token) and 235)
        with h.RawSmtp(h.SMTP_PORT, source=near_miss_from) as s:
            s.starttls()
            codes.append(s.login(token.id, near_miss(token.password))[0])
        return codes

    assert await asyncio.to_thread(smtp_use) == [235, 535]
    await until_logged(near_miss_from, since=since)  # the last action's log line is written

    checked: dict[str, str] = dict(secrets.values)
    for entry in h.SETTINGS.link_signing_keys:
        checked[entry.partition(":")[2]] = f"link-signing key {entry.partition(':')[0]}"
    db = urlsplit(h.SETTINGS.database_url)
    # the password alone is also the user and database name here, so look for it as a credential
    checked[f":{db.password}@"] = "PostgreSQL password (in a URL)"
    checked[f"password={db.password}"] = "PostgreSQL password (key=value)"
    checked[f"PGPASSWORD={db.password}"] = "PostgreSQL password (environment)"

    leaks = {label: where for value, label in checked.items() if (where := occurrences(value))}
    logs = sorted(p.name for p in LOGS.glob("*.log"))
    size = sum(p.stat().st_size for p in LOGS.glob("*.log"))
    kinds: dict[str, int] = {}
    for label in checked.values():
        kind = label.split(" of ")[0].split(" (")[0]
        kinds[kind] = kinds.get(kind, 0) + 1
    print(
        f"Secrets in logs: {len(checked)} secrets ({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))}) "
        f"grepped in {len(logs)} logs ({size / 1e6:.1f} MB: {', '.join(logs)}), plain and base64: "
        f"{len(leaks)} found"
    )
    assert leaks == {}, leaks


async def test_a_password_sent_as_the_username_is_not_logged(h, smtp_token):
    token = await smtp_token("sec-logs-swap")
    since, client = log_end(), h.client_address()

    def swapped() -> int:
        with h.RawSmtp(h.SMTP_PORT, source=client) as s:
            s.starttls()
            return s.login(token.password, token.id)[0]

    assert await asyncio.to_thread(swapped) == 535
    await until_logged(client, since=since)
    where = occurrences(token.password)
    print(f"Secrets in logs (AUTH fields swapped): the token password found in {where or 'no log'}")
    assert where == {}
