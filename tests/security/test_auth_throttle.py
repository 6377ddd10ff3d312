"""SMTP AUTH brute force is throttled per client address: after MAILSTREAM_SMTP_AUTH_MAX_FAILURES (5)
failures the address gets 454 without its credentials being checked, the right password included;
other addresses are unaffected. Sequential and concurrent guessing both."""

from __future__ import annotations

import asyncio
import base64
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

pytestmark = pytest.mark.e2e

LIMIT = 5  # GatewaySettings.smtp_auth_max_failures, the stack's default


def attempt(h, source: str, user: str, password: str, mechanism: str = "PLAIN") -> tuple[int, str]:
    with h.RawSmtp(h.SMTP_PORT, source=source) as s:
        s.starttls()
        if mechanism == "PLAIN":
            return s.login(user, password)
        s.cmd("EHLO client.example")
        code, text = s.cmd("AUTH LOGIN " + base64.b64encode(user.encode()).decode())
        if code != 334:
            return code, text
        return s.cmd(base64.b64encode(password.encode()).decode())


async def test_auth_brute_force_is_throttled_and_the_right_password_is_refused_meanwhile(h, smtp_token):
    token = await smtp_token("sec-throttle")
    source = h.client_address()
    guesses = [("PLAIN", token.id, "guess-1"), ("LOGIN", token.id, "guess-2"), ("PLAIN", "nosuchtoken123", "x")]
    guesses += [("PLAIN", token.id, f"guess-{i}") for i in range(3, 12)]
    codes = []
    for mechanism, user, password in guesses:
        codes.append((await asyncio.to_thread(attempt, h, source, user, password, mechanism))[0])
    right, text = await asyncio.to_thread(attempt, h, source, token.id, token.password)
    right_login, _ = await asyncio.to_thread(attempt, h, source, token.id, token.password, "LOGIN")
    elsewhere, _ = await asyncio.to_thread(attempt, h, h.client_address(), token.id, token.password)
    print(
        f"SMTP AUTH brute force (sequential): {len(guesses)} wrong guesses from one address -> "
        f"{codes.count(535)} x 535 then {codes.count(454)} x 454; right password while throttled -> {right} "
        f"(PLAIN), {right_login} (LOGIN); from another address -> {elsewhere}"
    )
    assert codes == [535] * LIMIT + [454] * (len(guesses) - LIMIT), codes
    assert (right, right_login, elsewhere) == (454, 454, 235)
    assert re.search(r"retry in \d+ s", text), text


async def test_concurrent_auth_guesses_from_one_address_are_throttled_too(h, smtp_token):
    token = await smtp_token("sec-throttle-par")
    source = h.client_address()
    guesses = 30

    barrier = threading.Barrier(guesses, timeout=60)

    def guess(i: int) -> int:
        with h.RawSmtp(h.SMTP_PORT, source=source) as s:
            s.starttls()
            s.cmd("EHLO client.example")
            blob = base64.b64encode(f"\0{token.id}\0parallel-{i}".encode()).decode()
            barrier.wait()  # every connection ready: the guesses arrive together
            return s.cmd(f"AUTH PLAIN {blob}")[0]

    with ThreadPoolExecutor(max_workers=guesses) as pool:
        codes = list(await asyncio.gather(*(asyncio.wrap_future(pool.submit(guess, i)) for i in range(guesses))))
    print(
        f"SMTP AUTH brute force (concurrent): {guesses} wrong guesses at once from one address -> "
        f"{codes.count(535)} checked (535), {codes.count(454)} throttled (454); limit {LIMIT}"
    )
    assert codes.count(535) <= LIMIT, codes
