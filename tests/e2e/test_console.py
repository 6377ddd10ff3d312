"""The admin console in a real browser (Debian's headless chromium driven by Playwright) against
the running stack: sign-in, an email made in the browser and sent through the API, SMTP tokens
that authenticate over SMTP (and stop after a reset or delete), domains, send statuses, another
account's objects (404), screenshots of every screen and an axe-core accessibility check."""

from __future__ import annotations

import asyncio
import email
import random
import re
import shutil
import smtplib
import ssl
import subprocess
import sys
import tarfile
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import httpx
import pytest
from playwright import async_api as playwright_api

from mailstream.core.settings import LinkSettings
from mailstream.schemas.links import LinkKind, LinkSigner, TrackedLink

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
GATEWAY = "http://127.0.0.1:8080"
SHOTS = ROOT / ".mailstream" / "screenshots"  # git-ignored: the test artifacts
VENDOR = ROOT / ".mailstream" / "vendor"
AXE_VERSION = "4.14.1"  # npm axe-core (MPL-2.0), fetched with npm at test time
MAILSTREAM_CLI = str(Path(sys.executable).with_name("mailstream"))
SMTP_PORT = 2587
TLS = ssl.create_default_context()
TLS.check_hostname = False
TLS.verify_mode = ssl.CERT_NONE  # the development server's certificate is self-signed
LINKS = LinkSettings.from_env()
SIGNER = LinkSigner.from_setting(LINKS.link_signing_keys)  # the renderer's signer, for an unsubscribe link


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("Debian's chromium is not installed: deploy/local/system-packages.sh installs it (make run)")
    return found


@dataclass
class User:
    email: str
    password: str
    key: str  # the account's API key
    account_id: int


def make_user(name: str) -> User:
    """An account with its first user (the accounts CLI), and the user's console password (the users CLI)."""
    address = f"{name}-{uuid.uuid4().hex[:8]}@shop.example"
    created = subprocess.run(
        [MAILSTREAM_CLI, "accounts", "create", f"{name}-{uuid.uuid4().hex[:6]}", "--user-email", address],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    account_id = int(re.search(r"created account (\d+)", created.stderr).group(1))
    password = f"pw-{uuid.uuid4().hex}"
    subprocess.run(
        [MAILSTREAM_CLI, "users", "set-password", address, "--password-stdin"],
        input=password + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return User(address, password, created.stdout.strip(), account_id)


@pytest.fixture
def user(stack) -> User:
    return make_user("console")


@pytest.fixture(scope="module")
async def browser():
    async with playwright_api.async_playwright() as p:
        launched = await p.chromium.launch(executable_path=chromium_path(), headless=True, args=["--no-sandbox"])
        yield launched
        await launched.close()


@pytest.fixture
async def page(browser):
    # bypass_csp: the axe check injects its script inline, which the console's CSP refuses
    context = await browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 900})
    opened = await context.new_page()
    yield opened
    await context.close()


@pytest.fixture(scope="module")
def axe_script() -> Path:
    """axe.min.js of the npm package, unpacked once into a git-ignored folder."""
    target = VENDOR / f"axe-core-{AXE_VERSION}" / "axe.min.js"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        packed = subprocess.run(
            ["npm", "pack", f"axe-core@{AXE_VERSION}", "--pack-destination", str(target.parent), "--silent"],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        archive = target.parent / packed.stdout.strip().splitlines()[-1]
        with tarfile.open(archive) as tar:
            target.write_bytes(tar.extractfile("package/axe.min.js").read())
    return target


async def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def sign_in(page, user: User) -> None:
    await page.goto(f"{GATEWAY}/console/login")
    await page.get_by_label("Email").fill(user.email)
    await page.get_by_label("Password", exact=True).fill(user.password)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/console/emails")


def client_address() -> str:
    """A loopback address of its own, so that the SMTP AUTH throttle of other tests does not interfere."""
    return f"127.{random.randrange(100, 250)}.{random.randrange(1, 250)}.{random.randrange(1, 250)}"


def smtp_login(username: str, password: str) -> int:
    """The code of the AUTH reply over STARTTLS (235 accepted, 535 refused)."""
    with smtplib.SMTP("127.0.0.1", SMTP_PORT, timeout=30, source_address=(client_address(), 0)) as smtp:
        smtp.starttls(context=TLS)
        try:
            code, _ = smtp.login(username, password)
        except smtplib.SMTPAuthenticationError as exc:
            return exc.smtp_code
        return code


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# --- sign-in ------------------------------------------------------------------------------------


async def test_sign_in_with_the_password_the_cli_set_and_sign_out(page, user):
    await page.goto(f"{GATEWAY}/console/tokens")
    assert "/console/login" in page.url  # not signed in
    await shot(page, "01-sign-in")
    await page.get_by_label("Email").fill(user.email)
    await page.get_by_label("Password", exact=True).fill("not the password")
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_text("Wrong email or password.").wait_for()
    await page.get_by_label("Password", exact=True).fill(user.password)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/console/tokens")  # back where the user was going
    cookies = {c["name"]: c for c in await page.context.cookies()}
    session = cookies["mailstream_console"]
    assert session["httpOnly"] and session["sameSite"] == "Lax" and session["path"] == "/console"
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url("**/console/login")
    await page.goto(f"{GATEWAY}/console/emails")
    assert "/console/login" in page.url


# --- emails -------------------------------------------------------------------------------------


async def test_an_email_made_in_the_browser_is_sent_through_the_api_personalized(page, user, api, sink, unique_address):
    await sign_in(page, user)
    await page.get_by_role("link", name="New email").click()
    await shot(page, "02-new-email")
    await page.get_by_label("Name (internal)").fill("Order shipped")
    await page.get_by_label("Subject").fill("Order {{ custom.order_id }} shipped")
    await page.get_by_label("From name").fill("Shop")
    await page.get_by_label("From address").fill("orders@shop.example")
    await page.get_by_label("HTML").fill(
        "<h1>Hi {{ contact.firstname }}</h1><p>Order {{ custom.order_id }} left our warehouse.</p>"
    )
    await page.get_by_label("Transactional").check()
    await page.get_by_label("Track opens and clicks").uncheck()
    await page.get_by_role("button", name="Create draft").click()
    await page.get_by_text("Email created.").wait_for()

    # the preview: a missing custom property is an inline error, then the sample fills it
    errors = page.locator("#preview-errors")
    assert "missing custom property 'order_id'" in await errors.inner_text()
    await page.get_by_label("Sample custom properties (JSON)").fill('{"order_id": "A-17"}')
    await page.get_by_role("button", name="Preview without saving").click()
    await page.locator("#preview-subject").get_by_text("Order A-17 shipped").wait_for()
    assert await page.locator("#preview-errors").count() == 0
    frame = page.frame_locator("iframe.preview")
    assert await frame.locator("h1").inner_text() == "Hi Ada"
    await shot(page, "03-email-editor")

    email_id = int(await page.get_by_label("Email id", exact=True).input_value())
    await page.get_by_role("button", name="Convert to single-send API").click()
    await page.get_by_text("Converted to the single-send API.").wait_for()
    assert "Transactional" in await page.locator(".meta").inner_text()

    await page.get_by_role("link", name="Emails", exact=True).click()
    row = page.get_by_role("row").filter(has_text="Order shipped")
    assert "Draft" in await row.inner_text() and "Transactional" in await row.inner_text()
    await shot(page, "02-emails-list")

    to = unique_address()
    sent = await api.post(
        "/marketing/v3/transactional/single-email/send",
        headers=auth(user.key),
        json={
            "emailId": email_id,
            "message": {"to": to, "sendId": f"console-{uuid.uuid4().hex}"},
            "contactProperties": {"firstname": "Grace"},
            "customProperties": {"order_id": "B-42"},
        },
    )
    assert sent.status_code == 200 and sent.json()["status"] == "PENDING", sent.text
    (received,) = await sink.wait_for(to)
    msg = email.message_from_string(received["data"], policy=default)
    assert msg["Subject"] == "Order B-42 shipped" and msg["From"] == "Shop <orders@shop.example>"
    html = msg.get_body(("html",)).get_content()
    assert "<h1>Hi Grace</h1>" in html and "Order B-42 left our warehouse." in html

    # the email's statistics, as the stats API serves them
    for _ in range(100):
        figures = (await api.get("/mailstream/v1/stats", headers=auth(user.key), params={"emailId": email_id})).json()
        if figures["sent"] >= 1:
            break
        await asyncio.sleep(0.1)
    await page.goto(f"{GATEWAY}/console/emails/{email_id}")
    sent_figure = page.locator(".figures div").filter(has_text="Sent").locator("dd")
    assert await sent_figure.inner_text() == str(figures["sent"])


async def test_a_published_email_gets_the_apis_clone_hint(page, user, api):
    created = await api.post(
        "/mailstream/v1/emails",
        headers=auth(user.key),
        json={"name": "Welcome", "subject": "Welcome", "fromEmail": "hello@shop.example", "html": "<p>Hi</p>"},
    )
    email_id = created.json()["emailId"]
    assert (await api.post(f"/mailstream/v1/emails/{email_id}/publish", headers=auth(user.key))).status_code == 200
    await sign_in(page, user)
    await page.goto(f"{GATEWAY}/console/emails/{email_id}")
    assert "clone this email and convert the clone" in await page.locator("main").inner_text()
    await page.get_by_role("button", name="Convert to single-send API").click()
    api_says = await api.post(f"/mailstream/v1/emails/{email_id}/convert-to-single-send-api", headers=auth(user.key))
    assert api_says.status_code == 409
    await page.get_by_role("alert").get_by_text(api_says.json()["message"]).wait_for()
    await page.get_by_role("button", name="Clone").click()
    await page.get_by_text("This is a new draft, cloned from the email.").wait_for()
    await page.get_by_role("button", name="Convert to single-send API").click()
    await page.get_by_text("Converted to the single-send API.").wait_for()


async def api_email(api, user: User, name: str, **extra) -> int:
    created = await api.post(
        "/mailstream/v1/emails",
        headers=auth(user.key),
        json={
            "name": name,
            "subject": name,
            "fromEmail": "news@shop.example",
            "html": "<p>Hello</p>",
            "subscriptionType": "TRANSACTIONAL",
            **extra,
        },
    )
    assert created.status_code == 201, created.text
    return created.json()["emailId"]


async def test_send_now_to_two_addresses_and_schedule_then_cancel(page, user, api, sink, unique_address):
    email_id = await api_email(api, user, "Launch")
    await sign_in(page, user)
    await page.goto(f"{GATEWAY}/console/emails/{email_id}")
    first, second = unique_address(), unique_address("example.org")
    await page.get_by_label("These addresses", exact=True).check()
    await page.get_by_label("Addresses, one a line").fill(f"{first}\n{second}\n")
    await page.get_by_role("button", name="Send or schedule").click()
    await page.get_by_text("One-off send recorded").wait_for()
    for to in (first, second):
        (received,) = await sink.wait_for(to)
        assert email.message_from_string(received["data"], policy=default)["Subject"] == "Launch"
    for _ in range(100):  # the progress, once the tracker has both outcomes
        await page.reload()
        progress = await page.locator("#one-off-sends tbody tr").first.locator(".send-progress").inner_text()
        if progress.startswith("2 sent"):
            break
        await asyncio.sleep(0.2)
    assert progress.startswith("2 sent, 0 failed, 0 pending, 0 skipped"), progress

    later = unique_address()
    await page.get_by_label("Addresses, one a line").fill(later)
    await page.get_by_label("Send at, in UTC").fill("2099-01-01T09:30")
    await page.get_by_role("button", name="Send or schedule").click()
    await page.get_by_text("One-off send scheduled").wait_for()
    row = page.locator("#one-off-sends tbody tr").first
    assert "Scheduled" in await row.inner_text() and "2099-01-01 09:30" in await row.inner_text()
    await shot(page, "03b-email-one-off-sends")
    await row.get_by_role("button", name="Cancel").click()
    await page.get_by_text("One-off send canceled.").wait_for()
    row = page.locator("#one-off-sends tbody tr").first
    assert await row.locator(".send-state").inner_text() == "Canceled"
    assert (await row.locator(".send-progress").inner_text()).startswith("Canceled: 0 sent")
    assert await row.get_by_role("button", name="Cancel").count() == 0
    listed = (await api.get("/mailstream/v1/one-off-sends", headers=auth(user.key))).json()["results"]
    assert len(listed) == 2 and listed[0]["state"] == "CANCELED"
    assert await sink.wait_for(later, within=1) == []

    await page.get_by_label("Addresses, one a line").fill("not an address")
    await page.get_by_label("Send at, in UTC").fill("")
    await page.get_by_role("button", name="Send or schedule").click()
    await page.get_by_role("alert").get_by_text("is not a valid email address").wait_for()


async def test_save_for_automation_shows_the_flag_and_a_published_email_gets_the_hint(page, user, api):
    draft = await api_email(api, user, "Receipt")
    published = await api_email(api, user, "Published")
    assert (await api.post(f"/mailstream/v1/emails/{published}/publish", headers=auth(user.key))).status_code == 200
    await sign_in(page, user)
    await page.goto(f"{GATEWAY}/console/emails/{draft}")
    assert await page.locator("#automation-flag").inner_text() == "not saved for automation"
    await page.get_by_role("button", name="Save for automation").click()
    await page.get_by_text("Saved for automation: trigger rules can use this email.").wait_for()
    assert await page.locator("#automation-flag").inner_text() == "saved for automation"
    assert await page.get_by_role("button", name="Save for automation").count() == 0
    view = (await api.get(f"/mailstream/v1/emails/{draft}", headers=auth(user.key))).json()
    assert view["savedForAutomation"] is True
    await page.get_by_role("link", name="Emails", exact=True).click()
    row = page.get_by_role("row").filter(has_text="Receipt")
    assert (await row.locator("td").nth(5).inner_text()) == "Yes"

    await page.goto(f"{GATEWAY}/console/emails/{published}")
    assert "clone this email and save the clone" in await page.locator("main").inner_text()
    await page.get_by_role("button", name="Save for automation").click()
    api_says = await api.post(f"/mailstream/v1/emails/{published}/save-for-automation", headers=auth(user.key))
    assert api_says.status_code == 409
    await page.get_by_role("alert").get_by_text(api_says.json()["message"]).wait_for()


# --- SMTP tokens --------------------------------------------------------------------------------


async def test_a_token_made_in_the_browser_authenticates_until_reset_and_delete(page, user):
    await sign_in(page, user)
    await page.get_by_role("link", name="SMTP tokens").click()
    campaign = f"Receipts {uuid.uuid4().hex[:6]}"
    await page.get_by_label("Campaign name").fill(campaign)
    await page.get_by_label("Create contacts automatically for recipients").check()
    await page.get_by_role("button", name="Generate token").click()
    await page.get_by_text("it cannot be shown again").wait_for()
    token_id = await page.get_by_label("Username (token id)", exact=True).input_value()
    password = await page.get_by_label("Password", exact=True).input_value()
    assert len(password) >= 32
    await page.get_by_role("button", name="Copy Password").wait_for()  # the copy button (JavaScript on)
    await shot(page, "05-token-password-once")
    assert await asyncio.to_thread(smtp_login, token_id, password) == 235

    await page.goto(page.url)  # the page again, by GET: the password is gone
    assert password not in await page.content()
    row = page.get_by_role("row").filter(has_text=campaign)
    assert token_id in await row.inner_text() and "Yes" in await row.inner_text()
    await shot(page, "04-tokens")
    await row.get_by_role("link", name="View details").click()
    await page.locator("#stat-open-rate").wait_for()
    assert password not in await page.content()
    assert "Open rate" in await page.locator(".figures").inner_text()
    await shot(page, "06-token-details")

    await page.get_by_role("link", name="Reset password").click()
    assert "The old password stops working at once" in await page.locator("main").inner_text()
    await shot(page, "07-token-reset-confirm")
    await page.get_by_role("button", name="Reset the password").click()
    await page.get_by_text("it cannot be shown again").wait_for()
    new_password = await page.get_by_label("Password", exact=True).input_value()
    assert new_password != password
    assert await asyncio.to_thread(smtp_login, token_id, password) == 535
    assert await asyncio.to_thread(smtp_login, token_id, new_password) == 235

    await page.goto(f"{GATEWAY}/console/tokens")
    await page.get_by_role("row").filter(has_text=campaign).get_by_role("link", name="Delete").click()
    assert "Its password stops working at once" in await page.locator("main").inner_text()
    await shot(page, "07b-token-delete-confirm")
    await page.get_by_role("button", name="Delete the token").click()
    await page.get_by_text(f"Token {token_id} deleted").wait_for()
    assert await page.get_by_role("row").filter(has_text=campaign).count() == 0
    assert await asyncio.to_thread(smtp_login, token_id, new_password) == 535


def smtp_submit(token_id: str, password: str, sender: str, to: str) -> int:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, "Chart"
    msg.set_content("Hello")
    with smtplib.SMTP("127.0.0.1", SMTP_PORT, timeout=30, source_address=(client_address(), 0)) as smtp:
        smtp.starttls(context=TLS)
        smtp.login(token_id, password)
        smtp.send_message(msg)
    return 250


async def test_the_token_details_chart_counts_a_real_smtp_send(page, user, api, sink, unique_address):
    created = await api.post(
        "/marketing/v3/transactional/smtp-tokens",
        headers=auth(user.key),
        json={"campaignName": "Chart", "createContact": False},
    )
    token = created.json()
    domain = f"chart-{uuid.uuid4().hex[:8]}.example"
    assert (
        await api.post("/mailstream/v1/sending-domains", headers=auth(user.key), json={"domain": domain})
    ).status_code == 201
    to = unique_address()
    await asyncio.to_thread(smtp_submit, token["id"], token["password"], f"orders@{domain}", to)
    assert len(await sink.wait_for(to)) == 1
    await sign_in(page, user)
    today = datetime.now(UTC).date().isoformat()
    for _ in range(100):  # the SENT event, once the tracker has it
        await page.goto(f"{GATEWAY}/console/tokens/{token['id']}")
        if await page.locator("#token-chart rect.bar-sent").count() == 1:
            break
        await asyncio.sleep(0.3)
    chart = page.locator("#token-chart")
    assert await chart.get_attribute("role") == "img"
    assert await chart.locator("title").first.text_content() == "Sends, opens and clicks per day"
    assert "in all sends: 1," in await chart.locator("desc").text_content()
    assert await chart.locator("rect.bar-sent title").text_content() == f"{today}, sends: 1"
    table_row = page.locator("#token-chart-table tr").filter(has_text=today)
    assert (await table_row.locator("td").first.text_content()) == "1"
    await shot(page, "06b-token-chart")


# --- another account ----------------------------------------------------------------------------


async def test_another_accounts_user_sees_none_of_its_objects(page, user, api):
    theirs = await api.post(
        "/mailstream/v1/emails",
        headers=auth(user.key),
        json={"name": "Secret email", "subject": "s", "fromEmail": "a@shop.example", "html": "<p>x</p>"},
    )
    token = await api.post(
        "/marketing/v3/transactional/smtp-tokens",
        headers=auth(user.key),
        json={"campaignName": "Secret campaign", "createContact": False},
    )
    domain = f"secret-{uuid.uuid4().hex[:8]}.example"
    await api.post("/mailstream/v1/sending-domains", headers=auth(user.key), json={"domain": domain})
    email_id, token_id = theirs.json()["emailId"], token.json()["id"]

    other = make_user("other")
    await sign_in(page, other)
    assert "Secret email" not in await page.content()
    for path in (f"/console/emails/{email_id}", f"/console/tokens/{token_id}", f"/console/tokens/{token_id}/reset"):
        answer = await page.goto(f"{GATEWAY}{path}")
        assert answer.status == 404, path
        assert "Not found" in await page.locator("h1").inner_text()
    await shot(page, "11-not-found")
    await page.goto(f"{GATEWAY}/console/tokens")
    assert "Secret campaign" not in await page.content()
    await page.goto(f"{GATEWAY}/console/domains")
    assert domain not in await page.content()
    # a form posted to another account's object: 404 too, and the object is untouched
    csrf = await page.locator("input[name=csrf]").first.input_value()
    for path in (f"/console/tokens/{token_id}/delete", f"/console/emails/{email_id}/convert"):
        answer = await page.request.post(f"{GATEWAY}{path}", form={"csrf": csrf})
        assert answer.status == 404, path
    still = await api.get(f"/marketing/v3/transactional/smtp-tokens/{token_id}", headers=auth(user.key))
    assert still.status_code == 200


# --- domains, send statuses, suppressions -------------------------------------------------------


async def test_domains_records_verify_and_ip_status(page, user):
    await sign_in(page, user)
    await page.get_by_role("link", name="Domains").click()
    assert "Not ready" in await page.locator("#ip-status").inner_text()
    domain = f"shop-{uuid.uuid4().hex[:8]}.example"
    await page.get_by_label("Domain", exact=True).fill(domain)
    await page.get_by_role("button", name="Add domain").click()
    section = page.locator(f"section[id='domain-{domain}']")
    table = section.get_by_role("table")
    text = await table.inner_text()
    assert "DKIM" in text and "SPF" in text and "TXT" in text and f"._domainkey.{domain}" in text
    await section.get_by_role("button", name=f"Verify {domain} now").click()
    await page.locator(f"section[id='domain-{domain}']").get_by_text("last checked").wait_for()
    await shot(page, "08-domains")


async def ping_send(api, user: User, to: str, send_id: str | None = None) -> str:
    """A single send of a new single-send-API email; its statusId."""
    created = await api.post(
        "/mailstream/v1/emails",
        headers=auth(user.key),
        json={"name": "Ping", "subject": "Ping", "fromEmail": "ping@shop.example", "html": "<p>ping</p>"},
    )
    email_id = created.json()["emailId"]
    await api.post(f"/mailstream/v1/emails/{email_id}/convert-to-single-send-api", headers=auth(user.key))
    message = {"to": to, "sendId": send_id} if send_id else {"to": to}
    sent = await api.post(
        "/marketing/v3/transactional/single-email/send",
        headers=auth(user.key),
        json={"emailId": email_id, "message": message},
    )
    return sent.json()["statusId"]


async def test_send_statuses_by_status_id_send_id_and_recipient(page, user, api, unique_address):
    send_id = f"ping-{uuid.uuid4().hex}"
    to = unique_address()
    status_id = await ping_send(api, user, to, send_id)
    others = await ping_send(api, make_user("other"), to)  # another account's send to the same address
    await sign_in(page, user)
    await page.get_by_role("link", name="Send statuses").click()
    await page.get_by_label("Value").fill(status_id)
    await page.get_by_role("button", name="Search").click()
    await page.get_by_role("heading", name=f"Send {status_id}").wait_for()
    assert await page.locator("#send-status").inner_text() in ("PENDING", "PROCESSING", "COMPLETE")
    await page.get_by_label("Search by").select_option("sendId")
    await page.get_by_label("Value").fill(send_id)
    await page.get_by_role("button", name="Search").click()
    await page.get_by_role("heading", name=f"Send {status_id}").wait_for()
    await shot(page, "09-send-status")
    await page.get_by_label("Value").fill("no-such-send")
    await page.get_by_role("button", name="Search").click()
    await page.get_by_role("alert").get_by_text("No send with sendId no-such-send").wait_for()
    await page.get_by_label("Search by").select_option("recipient")
    await page.get_by_label("Value").fill(to.upper())
    await page.get_by_role("button", name="Search").click()
    listed = page.locator("#recipient-sends tbody tr")
    await listed.first.wait_for()
    assert await listed.count() == 1 and others not in await page.content()
    await page.get_by_role("link", name=status_id).click()
    await page.get_by_role("heading", name=f"Send {status_id}").wait_for()
    await page.get_by_role("link", name="Suppressions").click()
    await page.get_by_role("heading", name="Suppressions").wait_for()
    await shot(page, "10-suppressions")


async def unsubscribe(user: User, to: str) -> None:
    """The recipient's one-click unsubscribe (RFC 8058) at the tracker, through a link signed as the
    renderer signs the links of a marketing email."""
    link = TrackedLink(LinkKind.UNSUBSCRIBE, str(uuid.uuid4()), user.account_id, to)
    async with httpx.AsyncClient(timeout=10) as client:
        reply = await client.post(
            SIGNER.url(LINKS.tracking_base_url, link),
            content="List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert reply.status_code == 200, reply.text


async def suppression_rows(page, to: str, *, until) -> list[str]:
    """The address's rows of the suppression list (the tracker applies changes moments later)."""
    for _ in range(100):
        await page.goto(f"{GATEWAY}/console/suppressions?q={to}")
        rows = await page.get_by_role("row").filter(has_text=to).all_inner_texts()
        if until(rows):
            break
        await asyncio.sleep(0.2)
    return rows


async def confirm_removal(page, name: str, note: str) -> None:
    """On the confirmation page: the required note, then the button."""
    note_field = page.get_by_label("Reason for the removal")
    assert await note_field.get_attribute("required") is not None
    await note_field.fill(note)
    await page.get_by_role("button", name=f"Remove the {name} suppression").click()
    await page.get_by_text("the change applies in moments").wait_for()


async def test_remove_a_bounce_then_an_unsubscribe_from_the_suppression_list(page, user, api, sink, unique_address):
    email_id = await api_email(api, user, "Bounce")
    assert (
        await api.post(f"/mailstream/v1/emails/{email_id}/convert-to-single-send-api", headers=auth(user.key))
    ).status_code == 200
    to = unique_address()
    assert (await sink.client.put(f"/api/rejects/{to}", json={"reply": "550 5.1.1 no such user"})).status_code == 200
    try:
        sent = await api.post(
            "/marketing/v3/transactional/single-email/send",
            headers=auth(user.key),
            json={"emailId": email_id, "message": {"to": to}},
        )
        assert sent.status_code == 200, sent.text
        await unsubscribe(user, to)
        await sign_in(page, user)
        # the hard bounce and the unsubscribe, once the tracker suppressed the address for both
        rows = await suppression_rows(page, to, until=lambda rows: len(rows) == 2)
    finally:
        await sink.client.delete(f"/api/rejects/{to}")
    assert ["BOUNCED" in rows[0], "UNSUBSCRIBED" in rows[1]] == [True, True], rows
    await shot(page, "12-suppression-bounced")
    await page.get_by_role("link", name=f"Remove the bounce suppression of {to}").click()
    assert "mail to it is sent again" in await page.locator("main").inner_text()
    await shot(page, "13-unbounce-confirm")
    await confirm_removal(page, "bounce", "the mailbox exists again")
    rows = await suppression_rows(page, to, until=lambda rows: len(rows) < 2)
    assert len(rows) == 1 and "UNSUBSCRIBED" in rows[0]  # only the reason named was removed
    await page.get_by_role("link", name=f"Remove the unsubscribe suppression of {to}").click()
    assert "sends them marketing mail again" in await page.locator("main").inner_text()
    await shot(page, "14-unsubscribe-remove-confirm")
    await confirm_removal(page, "unsubscribe", "they subscribed again on the website")
    assert await suppression_rows(page, to, until=lambda rows: not rows) == []
    view = (await api.get(f"/mailstream/v1/suppressions/{to}", headers=auth(user.key))).json()
    changes = [(c["action"], c["suppression"], c["reason"], c["requestedBy"]) for c in view["history"]]
    assert changes == [
        ("REMOVE", "BOUNCED", "the mailbox exists again", f"console-user:{user.email}"),
        ("REMOVE", "UNSUBSCRIBED", "they subscribed again on the website", f"console-user:{user.email}"),
    ]


# --- accessibility -------------------------------------------------------------------------------


async def test_every_screen_has_no_serious_accessibility_violation(page, user, api, axe_script):
    created = await api.post(
        "/mailstream/v1/emails",
        headers=auth(user.key),
        json={"name": "A11y", "subject": "Hi {{ custom.x }}", "fromEmail": "a@shop.example", "html": "<p>Hi</p>"},
    )
    token = await api.post(
        "/marketing/v3/transactional/smtp-tokens",
        headers=auth(user.key),
        json={"campaignName": "A11y", "createContact": True},
    )
    domain = {"domain": f"a11y-{uuid.uuid4().hex[:6]}.example"}
    await api.post("/mailstream/v1/sending-domains", headers=auth(user.key), json=domain)
    email_id, token_id = created.json()["emailId"], token.json()["id"]
    for n in range(50):  # more than a page of emails: the list's pager
        body = {"name": f"Filler {n:02d}", "subject": "s", "fromEmail": "a@shop.example", "html": "<p>x</p>"}
        assert (await api.post("/mailstream/v1/emails", headers=auth(user.key), json=body)).status_code == 201
    screens = [
        "/console/login",
        "/console/emails",
        "/console/emails?offset=50",
        "/console/emails/new",
        f"/console/emails/{email_id}",  # with an inline preview error
        "/console/tokens",
        f"/console/tokens/{token_id}",
        f"/console/tokens/{token_id}/reset",
        f"/console/tokens/{token_id}/delete",
        "/console/domains",
        "/console/sends?by=sendId&q=nothing",
        "/console/suppressions",
        "/console/suppressions/someone@shop.example/SPAM_REPORT/remove",
    ]
    found = {}
    for path in screens:
        if path == "/console/emails":
            await sign_in(page, user)
        else:
            await page.goto(f"{GATEWAY}{path}")
        await page.add_script_tag(path=str(axe_script))
        result = await page.evaluate("axe.run(document, {resultTypes: ['violations']})")
        serious = [
            f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
            for v in result["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        if serious:
            found[path] = serious
    assert found == {}
    await page.goto(f"{GATEWAY}/console/emails")
    assert await page.locator("tbody tr").count() == 50
    await page.locator("#next-page").click()
    (row,) = await page.locator("tbody tr").all_inner_texts()  # the 51st, oldest first
    assert "Filler 49" in row and await page.get_by_role("link", name="Previous page").count() == 1


async def test_the_console_works_without_javascript(browser, user):
    context = await browser.new_context(java_script_enabled=False)
    page = await context.new_page()
    try:
        await sign_in(page, user)
        await page.get_by_role("link", name="SMTP tokens").click()
        await page.get_by_label("Campaign name").fill("No script")
        await page.get_by_role("button", name="Generate token").click()
        await page.get_by_text("it cannot be shown again").wait_for()
        password = page.get_by_label("Password", exact=True)
        assert len(await password.input_value()) >= 32 and await password.get_attribute("readonly") is not None
        assert await page.get_by_role("button", name="Copy").count() == 0  # the copy buttons need the script
        await page.get_by_role("link", name="Emails", exact=True).click()
        await page.get_by_role("link", name="New email").click()
        await page.get_by_label("Name (internal)").fill("No script")
        await page.get_by_label("Subject").fill("Hi {{ contact.firstname }}")
        await page.get_by_label("From address").fill("a@shop.example")
        await page.get_by_role("button", name="Create draft").click()
        await page.locator("#preview-subject").get_by_text("Hi Ada").wait_for()
    finally:
        await context.close()


async def test_keyboard_reaches_the_skip_link_first_and_it_shows(page, user):
    await sign_in(page, user)
    await page.keyboard.press("Tab")
    focused = await page.evaluate("document.activeElement.textContent")
    assert focused == "Skip to content"
    box = await page.get_by_role("link", name="Skip to content").bounding_box()
    assert box is not None and box["x"] >= 0  # moved into view when focused
    await page.keyboard.press("Enter")
    assert await page.evaluate("document.activeElement.id") == "main"
