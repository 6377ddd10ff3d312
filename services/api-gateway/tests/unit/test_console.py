"""The console's sign-in, session and CSRF logic, and its preview, with a fake session store and
token store (no database): cookie flags, the double-submit token of the sign-in form, the
per-session token of every other form, the throttle's answer, and account scoping."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, date, datetime

import httpx
import pytest

from mailstream.gateway import passwords
from mailstream.gateway.adapters import events, sends, stats, tokens_store
from mailstream.gateway.adapters.tokens_store import TokenRow
from mailstream.gateway.app import create_app
from mailstream.gateway.console import auth
from mailstream.gateway.console.auth import LOGIN_COOKIE, SESSION_COOKIE, Session
from mailstream.gateway.console.forms import (
    CHART_DAYS,
    addresses_of,
    bar_chart,
    daily_series,
    offset_of,
    page_of,
    utc_time,
)
from mailstream.gateway.console.preview import parse_sample, render_preview
from mailstream.gateway.console.routes import one_off_body, safe_next
from mailstream.gateway.deps import Dependencies
from mailstream.gateway.kafka_link import KafkaLink
from mailstream.gateway.routes import suppressions as suppression_api

ACCOUNT, OTHER = 7, 8
SESSION_ID, CSRF = "session-id-of-ada", "csrf-of-ada"


class NoPool:
    def __getattr__(self, name):
        raise AssertionError(f"the database was used ({name})")


class FakeAuth:
    session_s = 3600.0

    def __init__(self) -> None:
        self.sessions = {SESSION_ID: Session(1, ACCOUNT, "ada@shop.example", "Shop", CSRF)}
        self.sign_ins: list[tuple[str, str]] = []
        self.signed_out: list[str] = []
        self.wait = 0.0

    async def sign_in(self, email, password):
        self.sign_ins.append((email, password))
        if self.wait:
            return None, self.wait
        return ("new-session", 0.0) if password == "correct horse battery" else (None, 0.0)

    async def session(self, session_id):
        return self.sessions.get(session_id)

    async def sign_out(self, session_id):
        self.signed_out.append(session_id)
        self.sessions.pop(session_id, None)


class FakeTokens:
    def __init__(self) -> None:
        self.rows: dict[str, TokenRow] = {}
        self.chart_asked: list[tuple] = []

    def add(self, token_id: str, account_id: int) -> None:
        self.rows[token_id] = TokenRow(
            token_id, account_id, "hash", "Receipts", 10000001, True, "x", datetime(2026, 3, 1, tzinfo=UTC)
        )

    async def create_token(self, pool, *, token_id, account_id, password_hash, **fields):
        self.add(token_id, account_id)
        self.rows[token_id] = TokenRow(
            token_id,
            account_id,
            password_hash,
            fields["campaign_name"],
            10000002,
            fields["create_contact"],
            fields["created_by"],
            datetime(2026, 3, 1, tzinfo=UTC),
        )
        return self.rows[token_id]

    async def get_token(self, pool, account_id, token_id):
        row = self.rows.get(token_id)
        return row if row is not None and row.account_id == account_id else None

    async def list_tokens(self, pool, account_id, *, after, limit, campaign_name, email_campaign_id, offset=0):
        return [r for r in self.rows.values() if r.account_id == account_id][:limit]


@pytest.fixture
def fake_auth() -> FakeAuth:
    return FakeAuth()


@pytest.fixture
def fake_tokens(monkeypatch) -> FakeTokens:
    fake = FakeTokens()
    monkeypatch.setattr(tokens_store, "create_token", fake.create_token)
    monkeypatch.setattr(tokens_store, "get_token", fake.get_token)
    monkeypatch.setattr(tokens_store, "list_tokens", fake.list_tokens)

    async def no_stats(pool, account_id, dimension, dimension_id):
        return None

    monkeypatch.setattr(stats, "stats_row", no_stats)

    async def daily_counts(pool, account_id, campaign_id, start, types):
        fake.chart_asked.append((account_id, campaign_id, start, types))
        return [{"day": datetime.now(UTC).date(), "type": "SENT", "n": 3}]

    monkeypatch.setattr(events, "daily_counts", daily_counts)
    return fake


def console(fake_auth: FakeAuth, *, base_url: str = "http://gateway", signed_in: bool = True) -> httpx.AsyncClient:
    app = create_app(Dependencies(pool=NoPool(), kafka=KafkaLink(bootstrap="unused:1")))
    app.state.console_auth = fake_auth
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)
    if signed_in:
        client.cookies.set(SESSION_COOKIE, SESSION_ID, path="/console")
    return client


def set_cookie(response: httpx.Response, name: str) -> str:
    return next(h for h in response.headers.get_list("set-cookie") if h.startswith(f"{name}="))


# --- pure logic ----------------------------------------------------------------------------------


def test_tokens_compare_only_when_both_are_present_and_equal():
    token = auth.new_token()
    assert auth.same_token(token, token) and len(token) >= 43  # 256 bits, urlsafe base64
    assert not auth.same_token(token, token[:-1] + ("A" if token[-1] != "A" else "B"))
    assert not auth.same_token("", "") and not auth.same_token(None, token) and not auth.same_token(token, None)


def test_the_stored_session_hash_is_not_the_cookie_value():
    assert auth.session_hash("abc") != b"abc" and len(auth.session_hash("abc")) == 32
    assert auth.session_hash("abc") == auth.session_hash("abc") != auth.session_hash("abd")


def test_cookie_flags_are_httponly_lax_and_secure_over_https_or_when_set():
    plain = auth.cookie_flags(https=False, always_secure=False, max_age=60)
    assert plain == {"httponly": True, "samesite": "lax", "secure": False, "path": "/console", "max_age": 60}
    assert auth.cookie_flags(https=True, always_secure=False, max_age=None)["secure"] is True
    assert auth.cookie_flags(https=False, always_secure=True, max_age=None)["secure"] is True


def test_after_sign_in_only_a_console_path_is_followed():
    assert safe_next("/console/tokens") == "/console/tokens"
    for bad in ("https://evil.example/console", "//evil.example", "/metrics", "", None):
        assert safe_next(bad) == "/console/emails"


def test_a_console_password_has_a_minimum_length():
    assert auth.password_problem("short") and auth.password_problem("x" * 12) is None


# --- sign-in and CSRF through the app ------------------------------------------------------------


async def test_a_page_without_a_session_sends_to_sign_in(fake_auth):
    async with console(fake_auth, signed_in=False) as client:
        page = await client.get("/console/tokens")
        assert page.status_code == 303 and page.headers["location"] == "/console/login?next=/console/tokens"


async def test_the_sign_in_form_sets_its_csrf_cookie_with_the_flags(fake_auth):
    async with console(fake_auth, signed_in=False) as client:
        form = await client.get("/console/login")
        assert form.status_code == 200 and '<label for="password">' in form.text
        cookie = set_cookie(form, LOGIN_COOKIE).lower()
        assert "httponly" in cookie and "samesite=lax" in cookie and "path=/console" in cookie
        assert "secure" not in cookie
        assert form.headers["content-security-policy"].startswith("default-src 'self'")
    async with console(fake_auth, base_url="https://gateway", signed_in=False) as client:
        assert "secure" in set_cookie(await client.get("/console/login"), LOGIN_COOKIE).lower()


async def test_sign_in_needs_the_forms_csrf_token_then_the_password(fake_auth):
    async with console(fake_auth, signed_in=False) as client:
        await client.get("/console/login")
        token = client.cookies[LOGIN_COOKIE]
        forged = await client.post(
            "/console/login", data={"csrf": "forged", "email": "ada@shop.example", "password": "correct horse battery"}
        )
        assert forged.status_code == 403 and fake_auth.sign_ins == []
        token = client.cookies[LOGIN_COOKIE]  # each sign-in page sets a new one
        wrong = await client.post("/console/login", data={"csrf": token, "email": "ada@shop.example", "password": "no"})
        assert wrong.status_code == 401 and "Wrong email or password" in wrong.text
        token = client.cookies[LOGIN_COOKIE]
        good = await client.post(
            "/console/login",
            data={"csrf": token, "email": "ada@shop.example", "password": "correct horse battery", "next": "//evil"},
        )
        assert good.status_code == 303 and good.headers["location"] == "/console/emails"
        cookie = set_cookie(good, SESSION_COOKIE).lower()
        assert cookie.startswith(f"{SESSION_COOKIE}=new-session") and "httponly" in cookie and "samesite=lax" in cookie


async def test_a_throttled_address_is_told_to_wait(fake_auth):
    fake_auth.wait = 42.5
    async with console(fake_auth, signed_in=False) as client:
        await client.get("/console/login")
        page = await client.post(
            "/console/login", data={"csrf": client.cookies[LOGIN_COOKIE], "email": "a@b.example", "password": "x"}
        )
        assert page.status_code == 429 and "try again in 43 seconds" in page.text


async def test_every_post_checks_the_sessions_csrf_token(fake_auth, fake_tokens):
    async with console(fake_auth) as client:
        for path, data in (
            ("/console/logout", {}),
            ("/console/tokens", {"campaignName": "Receipts"}),
            ("/console/emails", {"name": "x"}),
            ("/console/tokens/abc/delete", {}),
            ("/console/emails/1/send", {"addresses": "a@b.example"}),
            ("/console/emails/1/sends/00000000-0000-0000-0000-000000000001/cancel", {}),
            ("/console/emails/1/save-for-automation", {}),
            ("/console/suppressions/a@b.example/UNSUBSCRIBED/remove", {"note": "subscribed again"}),
        ):
            for csrf in (None, "forged"):
                answer = await client.post(path, data={**data, **({"csrf": csrf} if csrf else {})})
                assert answer.status_code == 403, (path, csrf)
        assert fake_auth.signed_out == [] and fake_tokens.rows == {}
        out = await client.post("/console/logout", data={"csrf": CSRF})
        assert out.status_code == 303 and fake_auth.signed_out == [SESSION_ID]
        assert (await client.get("/console/tokens")).status_code == 303  # signed out


async def test_a_new_token_shows_its_password_once_and_uncached(fake_auth, fake_tokens):
    async with console(fake_auth) as client:
        page = await client.post("/console/tokens", data={"csrf": CSRF, "campaignName": "Receipts"})
        assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
        (row,) = fake_tokens.rows.values()
        assert row.account_id == ACCOUNT and row.created_by == "ada@shop.example" and row.create_contact is False
        assert "cannot be shown again" in page.text
        shown = page.text.split('id="token-password" type="text" readonly value="')[1].split('"')[0]
        assert passwords.verify_password(row.password_hash, shown)


async def test_the_token_pages_carry_the_sessions_csrf_token_in_every_form(fake_auth, fake_tokens):
    fake_tokens.add("ours", ACCOUNT)
    fake_tokens.add("theirs", OTHER)
    async with console(fake_auth) as client:
        for path in ("/console/tokens", "/console/tokens/ours/reset", "/console/tokens/ours/delete"):
            page = await client.get(path)
            assert page.status_code == 200, path
            forms = page.text.count("<form")
            assert forms >= 2 and page.text.count(f'name="csrf" value="{CSRF}"') == forms, path
            if path.endswith(("/reset", "/delete")):  # a confirmation: its form posts to its own path
                assert f'<form method="post" action="{path}"' in page.text and "stops working at once" in page.text
        listed = (await client.get("/console/tokens")).text
        assert "ours" in listed and "theirs" not in listed


async def test_a_token_without_a_campaign_name_is_refused_on_the_form(fake_auth, fake_tokens):
    async with console(fake_auth) as client:
        page = await client.post("/console/tokens", data={"csrf": CSRF, "campaignName": "  "})
        assert page.status_code == 400 and "campaignName" in page.text and fake_tokens.rows == {}


async def test_another_accounts_token_answers_404(fake_auth, fake_tokens):
    fake_tokens.add("theirs", OTHER)
    fake_tokens.add("ours", ACCOUNT)
    async with console(fake_auth) as client:
        assert (await client.get("/console/tokens/ours")).status_code == 200
        for path in ("/console/tokens/theirs", "/console/tokens/theirs/reset", "/console/tokens/theirs/delete"):
            page = await client.get(path)
            assert page.status_code == 404 and "theirs not found" in page.text, path


# --- preview -------------------------------------------------------------------------------------


def test_the_preview_personalizes_and_escapes_like_the_renderer():
    shown = render_preview(
        "Order {{ custom.order_id }} for {{ contact.firstname }}",
        "<p>Hi {{ contact.firstname }}{{ contact.lastname }} {{ contact.city|default('there') }}: "
        "{{ custom.note }}</p>",
        {"firstname": "Ada"},
        {"order_id": 42, "note": "<b>"},
    )
    assert shown.errors == () and shown.subject == "Order 42 for Ada"
    assert shown.html == "<p>Hi Ada there: &lt;b&gt;</p>"


def test_a_missing_custom_property_is_an_inline_error():
    shown = render_preview("Hi", "<p>{{ custom.coupon }}</p>", {}, {})
    assert shown.errors == (
        "HTML: missing custom property 'coupon': a send without it ends MISSING_TEMPLATE_PROPERTIES",
    )


def test_the_preview_is_sandboxed():
    shown = render_preview("{{ ''.__class__.__mro__ }}", "ok", {}, {})
    assert shown.errors and "unsafe" in shown.errors[0] and shown.html == "ok"


def test_the_preview_has_the_renderers_work_limits():
    """Nested loops that would run for hours stop at the renderer's loop budget, inline."""
    started = time.monotonic()
    html = "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}"
    shown = render_preview("Hi", html, {}, {})
    assert time.monotonic() - started < 2
    assert shown.errors == (
        "HTML: template limit exceeded: more than 10000 loop iterations (a send would end HUBL_LIMIT_EXCEEDED)",
    )
    assert "limit exceeded" in render_preview("Hi", "{{ 'x' * 10**9 }}", {}, {}).errors[0]


def test_sample_properties_must_be_a_json_object():
    assert parse_sample('{"a": 1}', "x") == ({"a": 1}, None)
    assert parse_sample("", "x") == ({}, None)
    assert parse_sample("[1]", "The sample")[1] == "The sample must be a JSON object"
    assert "not valid JSON" in parse_sample("{", "x")[1]


# --- one-off sends, unbounce and the token chart -------------------------------------------------


def test_the_address_box_takes_one_a_line_and_drops_blanks_and_repeats():
    text = " ada@shop.example\n\nbob@shop.example, ADA@shop.example\r\n  \n"
    assert addresses_of(text) == ["ada@shop.example", "bob@shop.example"]
    assert addresses_of("  \n") == []


def test_a_datetime_local_value_is_read_as_utc():
    assert utc_time("2030-01-02T09:30") == datetime(2030, 1, 2, 9, 30, tzinfo=UTC)
    assert utc_time("2030-01-02T09:30:15") == datetime(2030, 1, 2, 9, 30, 15, tzinfo=UTC)
    assert utc_time(" ") is None
    for bad in ("tomorrow", "2030-01-02T09:30+02:00"):
        with pytest.raises(ValueError):
            utc_time(bad)


def test_the_send_form_becomes_the_apis_body_or_says_what_is_wrong():
    body = one_off_body(5, {"audience": "addresses", "addresses": "a@x.example\nb@x.example", "sendAt": ""})
    assert body.emailId == 5 and body.audience.addresses == ["a@x.example", "b@x.example"] and body.sendAt is None
    body = one_off_body(5, {"audience": "allContacts", "addresses": "", "sendAt": "2999-01-01T00:00"})
    assert body.audience.allContacts and body.sendAt == datetime(2999, 1, 1, tzinfo=UTC)
    assert one_off_body(5, {"addresses": "a@x.example", "idempotencyKey": "k1"}).idempotencyKey == "k1"
    for fields, message in (
        ({"audience": "addresses", "addresses": " \n"}, "at least one address"),
        ({"addresses": "a@x.example", "sendAt": "2001-01-01T00:00"}, "in the past"),
        ({"addresses": "a@x.example", "sendAt": "soon"}, "not a date and time"),
    ):
        with pytest.raises(ValueError, match=message):
            one_off_body(5, fields)


def test_the_daily_series_has_every_day_with_zeros():
    today = date(2026, 12, 3)
    rows = [
        {"day": today, "type": "SENT", "n": 4},
        {"day": today, "type": "OPEN", "n": 2},
        {"day": date(2026, 11, 20), "type": "CLICK", "n": 1},
        {"day": date(2026, 10, 1), "type": "SENT", "n": 9},  # before the window
    ]
    days = daily_series(rows, today)
    assert len(days) == CHART_DAYS and days[0].day == date(2026, 11, 4) and days[-1].day == today
    assert days[-1].counts == {"SENT": 4, "OPEN": 2, "CLICK": 0}
    assert next(d for d in days if d.day == date(2026, 11, 20)).counts["CLICK"] == 1
    chart = bar_chart(days)
    assert chart.top == 4 and chart.total == {"SENT": 4, "OPEN": 2, "CLICK": 1} and len(chart.bars) == 3
    tallest = max(chart.bars, key=lambda b: b.height)
    assert tallest.series == "sent" and tallest.label == "2026-12-03, sends: 4"
    assert abs(tallest.height - 2 * next(b for b in chart.bars if b.series == "open").height) < 0.2
    assert all(b.y + b.height <= chart.height - 30 + 0.1 for b in chart.bars)


def test_a_quiet_token_has_an_empty_chart():
    chart = bar_chart(daily_series([], date(2026, 12, 3)))
    assert chart.bars == [] and chart.top == 1 and chart.total == {"SENT": 0, "OPEN": 0, "CLICK": 0}


async def test_the_token_page_has_the_chart_its_title_and_a_table(fake_auth, fake_tokens):
    fake_tokens.add("ours", ACCOUNT)
    async with console(fake_auth) as client:
        page = await client.get("/console/tokens/ours")
    assert page.status_code == 200
    ((account, campaign, start, types),) = fake_tokens.chart_asked
    assert account == ACCOUNT and campaign == 10000001 and types == ("SENT", "OPEN", "CLICK")
    assert (datetime.now(UTC) - start).days == CHART_DAYS - 1
    assert '<svg id="token-chart" role="img"' in page.text and '<title id="chart-title">' in page.text
    assert page.text.count('class="bar bar-sent"') == 1 and "sends: 3" in page.text
    assert page.text.count('<tr><th scope="row">') == CHART_DAYS


async def test_removing_a_suppression_asks_for_a_note_then_calls_the_apis_function(fake_auth, monkeypatch):
    asked = []
    real = suppression_api.request_removal

    async def request_removal(deps, account_id, email, reason, note, requested_by):
        asked.append((account_id, email, reason, note, requested_by))
        if not note.strip():
            return await real(deps, account_id, email, reason, note, requested_by)  # its 400, before any I/O
        return {"email": email.lower()}

    monkeypatch.setattr(suppression_api, "request_removal", request_removal)
    path = "/console/suppressions/bob@shop.example/UNSUBSCRIBED/remove"
    async with console(fake_auth) as client:
        confirm = await client.get("/console/suppressions/Bob@Shop.example/UNSUBSCRIBED/remove")
        assert confirm.status_code == 200 and "required" in confirm.text and "applies in moments" in confirm.text
        assert 'action="/console/suppressions/Bob%40Shop.example/UNSUBSCRIBED/remove"' in confirm.text
        assert "bob@shop.example unsubscribed" in confirm.text and "marketing mail" in confirm.text
        refused = await client.post(path, data={"csrf": CSRF, "note": " "})
        assert refused.status_code == 400 and "reason for the removal" in refused.text
        done = await client.post(path, data={"csrf": CSRF, "note": "subscribed again"})
        unknown = await client.get("/console/suppressions/bob@shop.example/HARD_BOUNCE/remove")
    assert done.status_code == 303
    assert done.headers["location"] == "/console/suppressions?removed=bob%40shop.example&reason=UNSUBSCRIBED"
    by = "console-user:ada@shop.example"
    assert asked[-1] == (ACCOUNT, "bob@shop.example", "UNSUBSCRIBED", "subscribed again", by)
    assert unknown.status_code == 404


@pytest.mark.parametrize(
    ("reason", "warning"),
    [
        ("SPAM_REPORT", "mailing someone who complained harms your sending reputation"),
        ("BOUNCED", "mail to it is sent again"),
    ],
)
async def test_each_reasons_confirmation_names_its_consequence(fake_auth, reason, warning):
    async with console(fake_auth) as client:
        page = await client.get(f"/console/suppressions/ann@shop.example/{reason}/remove")
    assert page.status_code == 200 and warning in page.text
    if reason == "SPAM_REPORT":
        assert "ann@shop.example marked your mail as spam" in page.text


def test_the_date_labels_under_the_chart_do_not_crowd():
    chart = bar_chart(daily_series([], date(2026, 12, 3)))
    xs = [x for x, _ in chart.ticks]
    assert chart.ticks[0][1] == "11-04" and chart.ticks[-1][1] == "12-03"
    assert all(b - a > 60 for a, b in itertools.pairwise(xs))


def test_a_page_offset_is_a_bounded_whole_number():
    assert offset_of("50") == 50 and offset_of(None) == 0
    assert offset_of("-1") == 0 and offset_of("x") == 0 and offset_of("999999999") == 0


def test_a_page_shows_size_rows_and_links_its_neighbours_keeping_the_query():
    first = page_of(list(range(4)), offset=0, path="/console/suppressions", query={"q": "a&b"}, size=3)
    assert first.rows == [0, 1, 2] and first.previous is None
    assert first.next == "/console/suppressions?q=a%26b&offset=3"
    middle = page_of(list(range(4)), offset=3, path="/console/emails", query={}, size=3)
    assert (middle.previous, middle.next) == ("/console/emails?offset=0", "/console/emails?offset=6")
    last = page_of([1, 2], offset=2, path="/console/tokens", query={}, size=3)  # an offset off the grid
    assert last.rows == [1, 2] and last.previous == "/console/tokens?offset=0" and last.next is None
    assert page_of([1, 2, 3], offset=0, path="/x", query={}, size=3).next is None  # exactly one page


async def test_a_recipient_search_lists_the_accounts_sends_linked_and_paged(fake_auth, monkeypatch):
    asked = []

    async def statuses_by_recipient(pool, account_id, recipient, *, limit, offset):
        asked.append((account_id, recipient, limit, offset))
        return [
            {"status_id": f"00000000-0000-0000-0000-{i:012d}", "requested_at": datetime(2026, 12, 3, tzinfo=UTC)}
            for i in range(limit)
        ]

    monkeypatch.setattr(sends, "statuses_by_recipient", statuses_by_recipient)
    async with console(fake_auth) as client:
        page = await client.get("/console/sends", params={"by": "recipient", "q": "Bob@Shop.example", "offset": "50"})
    assert page.status_code == 200 and asked == [(ACCOUNT, "Bob@Shop.example", 51, 50)]
    assert page.text.count('href="/console/sends?by=statusId&amp;q=00000000-0000-0000-0000-') == 50
    assert "offset=100" in page.text and "offset=0" in page.text  # next and previous page
