"""CR/LF injection in every string field of the single-send API and of SMTP submission: either
refused (an HTTP 4xx, an SMTP 4xx/5xx or a final non-SENT result) or delivered with no injected
header line at the sink (the raw bytes, split at every kind of line break)."""

from __future__ import annotations

import asyncio
import base64
import uuid

import pytest

pytestmark = pytest.mark.e2e

INJECTED = (b"X-Injected:", b"Bcc:")
PAYLOADS = {
    "crlf": "\r\nX-Injected: crlf",
    "lf": "\nX-Injected: lf",
    "cr": "\rX-Injected: cr",
    "crlf-bcc": "\r\nBcc: victim@victim.example",
    "u2028": "\u2028X-Injected: u2028",
    "nel": "\x85X-Injected: nel",
    "crlfcrlf-body": "\r\n\r\nX-Injected: body",
}

# Where the properties land in headers: the subject and the From name render them (keys too).
SUBJECT = (
    "Hi {{ contact.firstname }} {{ custom.p }}"
    " {% for k in custom %}[{{ k }}]{% endfor %}{% for k in contact %}({{ k }}){% endfor %}"
)
FROM_NAME = "Shop {{ custom.p }}"
HTML = "<p>{{ custom.p }} {{ contact.firstname }}</p>"


def message_fields(p: str, to: str) -> dict[str, dict]:
    """Per API field, the request body parts that carry payload `p` (the recipient stays `to`)."""
    name = uuid.uuid4().hex[:8]
    return {
        "message.to": {"message": {"to": to + p}},
        "message.to (local part)": {"message": {"to": to.replace("@", p + "@")}},
        "message.from (name)": {"message": {"to": to, "from": f"Shop{p} <orders@shop.example>"}},
        "message.from (address)": {"message": {"to": to, "from": f"Shop <orders@shop.example{p}>"}},
        "message.cc": {"message": {"to": to, "cc": [f"cc-{name}@example.com{p}"]}},
        "message.bcc": {"message": {"to": to, "bcc": [f"bcc-{name}@example.com{p}"]}},
        "message.replyTo": {"message": {"to": to, "replyTo": [f"reply@example.com{p}"]}},
        "message.sendId": {"message": {"to": to, "sendId": f"send-{name}{p}"}},
        "contactProperties value": {"message": {"to": to}, "contactProperties": {"firstname": f"Sam{p}"}},
        "contactProperties key": {"message": {"to": to}, "contactProperties": {f"k{p}": "v"}},
        "customProperties value": {"message": {"to": to}, "customProperties": {"p": f"x{p}"}},
        "customProperties key": {"message": {"to": to}, "customProperties": {"p": "x", f"k{p}": "v"}},
    }


def email_fields(p: str) -> dict[str, dict]:
    """Per email field, the email's body (its subject and From name render no properties here)."""
    return {
        "email.subject": {"subject": f"Hello{p}"},
        "email.fromName": {"fromName": f"Shop{p}"},
        "email.fromEmail": {"fromEmail": f"orders@shop.example{p}"},
        "email.name": {"name": f"Name{p}"},
        "email.html": {"html": f"<p>x{p}</p>"},
        "email.text": {"text": f"x{p}"},
        "email.replyTo": {"replyTo": [f"reply@example.com{p}"]},
    }


async def test_crlf_in_every_single_send_field_never_reaches_the_sink_as_a_header(h, api, account, raw_sink):
    key = account("sec-crlf")
    base_email, reply = await h.create_email(api, key, subject=SUBJECT, fromName=FROM_NAME, html=HTML)
    assert base_email, reply.text
    gate = asyncio.Semaphore(10)

    async def attempt(field: str, payload: str, email_id: int | None, body: dict, to: str) -> tuple:
        """(field, payload, outcome, injected header lines seen at the sink)"""
        async with gate:
            if email_id is None:  # the payload is in the email itself
                email_id, refused = await h.create_email(api, key, **body)
                if not email_id:
                    assert 400 <= refused.status_code < 500, refused.text
                    return field, payload, f"email refused {refused.status_code}", []
                body = {"message": {"to": to}}
            request = {"emailId": email_id, "customProperties": {"p": "x"}, **body}
            sent = await api.post(h.SEND, headers=h.auth(key), json=request)
            if sent.status_code != 200:
                assert 400 <= sent.status_code < 500, sent.text
                return field, payload, f"HTTP {sent.status_code}", []
            status = await h.final_status(api, key, sent.json()["statusId"], within=90)
            assert status.get("status") == "COMPLETE", (field, payload, status)
            if status["sendResult"] != "SENT":
                return field, payload, status["sendResult"], []
            rcpts = [to, *body["message"].get("cc", []), *body["message"].get("bcc", [])]
            found = []
            for rcpt in rcpts:
                for raw in await raw_sink.wait(rcpt.strip(), within=30):
                    found += h.injected_lines(raw, INJECTED)
            delivered = await raw_sink.messages(to)
            assert delivered, f"{field} {payload!r}: SENT but nothing at the sink for {to}"
            return field, payload, "delivered", found

    jobs = []
    for pname, p in PAYLOADS.items():
        for field in message_fields(p, "x@example.com"):
            to = h.unique()
            jobs.append(attempt(field, pname, base_email, message_fields(p, to)[field], to))
        for field, body in email_fields(p).items():
            jobs.append(attempt(field, pname, None, body, h.unique()))
    results = await asyncio.gather(*jobs)

    fields = {r[0] for r in results}
    injected = [(f, p, lines) for f, p, _, lines in results if lines]
    delivered = sum(1 for r in results if r[2] == "delivered")
    print(
        f"CRLF injection (single-send API): {len(fields)} fields x {len(PAYLOADS)} payloads = {len(results)} sends, "
        f"{len(results) - delivered} refused, {delivered} delivered, {len(injected)} with injected headers at the sink"
    )
    outcomes: dict[str, set[str]] = {}
    for f, _, outcome, _ in results:
        outcomes.setdefault(f, set()).add(outcome)
    for f, seen in sorted(outcomes.items()):
        print(f"  {f}: {', '.join(sorted(seen))}")
    assert injected == []


# --- SMTP -------------------------------------------------------------------------------------------


def b_word(text: str) -> str:
    return "=?utf-8?b?" + base64.b64encode(text.encode()).decode() + "?="


SMTP_HEADER_VALUES = {
    # (name, value as raw bytes inside one header line); long values are refolded by the renderer
    "subject bare CR": b"Subject: hello\rX-Injected: cr",
    "subject encoded-word CRLF (q)": b"Subject: hello =?utf-8?q?a=0D=0AX-Injected:_q?=",
    "subject encoded-word CRLF (b)": ("Subject: hello " + b_word("a\r\nX-Injected: b")).encode(),
    "long subject encoded-word CRLF (refolded)": (
        "Subject: " + "word " * 30 + b_word("a\r\nX-Injected: long") + " tail " * 10
    ).encode(),
    "long subject encoded-word Bcc (refolded)": (
        "Subject: " + "word " * 30 + b_word("a\r\nBcc: victim@victim.example") + " tail"
    ).encode(),
    "from name encoded-word CRLF": None,  # filled per token (needs the domain)
    "custom header encoded-word CRLF, long": (
        "X-Order: " + "o" * 100 + " " + b_word("x\r\nX-Injected: custom") + " end"
    ).encode(),
    "to display name encoded-word CRLF": None,
    "subject NUL": b"Subject: hello\x00X-Injected: nul",
}


@pytest.mark.parametrize("part", ["envelope", "header values"])
async def test_crlf_in_smtp_envelope_and_header_values_never_reaches_the_sink_as_a_header(
    h, smtp_token, raw_sink, part
):
    token = await smtp_token("sec-crlf-smtp")
    source = h.client_address()

    def session():
        s = h.RawSmtp(h.SMTP_PORT, source=source)
        return s.session(token)

    def replies(s, line: bytes) -> list[int]:
        """Every reply to one line that may hold several commands (a line break inside it)."""
        s.send(line + b"\r\n")
        codes = [s.reply()[0]]
        s.sock.settimeout(1.0)
        try:
            while True:
                codes.append(s.reply()[0])
        except (TimeoutError, OSError):
            pass
        s.sock.settimeout(20)
        s.file = s.sock.makefile("rb")  # a timed-out reader cannot be read again
        return codes

    def envelope(mail_from: bytes, rcpt: bytes, to: str) -> tuple[list[int], int]:
        """MAIL FROM / RCPT TO with a line break inside the address, then a normal message to `to`:
        (the replies to the broken command, the DATA reply or 0)."""
        with session() as s:
            codes = replies(s, b"MAIL FROM:<" + mail_from + b">")
            if codes[0] != 250:
                return codes, 0
            codes += replies(s, b"RCPT TO:<" + rcpt + b">")
            if s.cmd(f"RCPT TO:<{to}>")[0] != 250:
                return codes, 0
            return codes, s.data(h.message(f"orders@{token.domain}", to))[0]

    envelope_cases = {}
    envelope_results: dict = {}
    header_results: dict = {}
    for pname, sep in (("crlf", b"\r\n"), ("lf", b"\n"), ("cr", b"\r")):
        envelope_cases[f"MAIL FROM {pname}"] = (f"x@{token.domain}".encode() + sep + b"X-Injected: 1", b"")
        envelope_cases[f"RCPT TO {pname}"] = (f"x@{token.domain}".encode(), sep + b"Bcc: v@x.example")
    for name, (mail_from, rcpt_tail) in (envelope_cases if part == "envelope" else {}).items():
        to = h.unique()
        rcpt = (h.unique().encode() + rcpt_tail) if rcpt_tail else to.encode()
        data_code, codes = await asyncio.to_thread(
            h.retrying, lambda m=mail_from, r=rcpt, t=to: envelope(m, r, t)[::-1]
        )
        envelope_results[name] = (codes, data_code, to)

    values = dict(SMTP_HEADER_VALUES)
    values["from name encoded-word CRLF"] = (
        "From: " + b_word("Shop\r\nX-Injected: from") + f" <orders@{token.domain}>"
    ).encode()
    values["to display name encoded-word CRLF"] = (
        "To: " + b_word("Jane\r\nBcc: victim@victim.example") + " <{rcpt}>"
    ).encode()

    def submit(name: str, line: bytes, rcpt: str) -> tuple[int, str]:
        line = line.replace(b"{rcpt}", rcpt.encode())
        headers = [f"From: Shop <orders@{token.domain}>".encode(), f"To: {rcpt}".encode(), b"Subject: plain"]
        kind = line.split(b":", 1)[0].lower()
        headers = [hd for hd in headers if hd.split(b":", 1)[0].lower() != kind] + [line]
        raw = (
            b"\r\n".join(headers)
            + b"\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>hi</p>\r\n"
        )
        with session() as s:
            s.cmd(f"MAIL FROM:<x@{token.domain}>")
            assert s.cmd(f"RCPT TO:<{rcpt}>")[0] == 250
            return s.data(raw)

    for name, line in (values if part == "header values" else {}).items():
        rcpt = h.unique()
        header_results[name] = (await asyncio.to_thread(h.retrying, submit, name, line, rcpt), rcpt)

    injected, delivered = [], 0
    for name, (_, data_code, to) in envelope_results.items():
        if data_code == 250:
            for raw in await raw_sink.wait(to, within=60):
                if lines := h.injected_lines(raw, INJECTED):
                    injected.append((name, lines))
    dropped = []
    for name, ((code, text), rcpt) in header_results.items():
        if code != 250:
            assert 400 <= code < 600, (name, code)
            continue
        result = await h.send_result(text)
        if result != "SENT":  # accepted, then refused by the renderer: no injection, but see the report
            dropped.append((name, result))
            continue
        got = await raw_sink.wait(rcpt, within=60)
        assert len(got) == 1, f"{name}: {len(got)} messages at the sink"
        delivered += 1
        if lines := h.injected_lines(got[0], INJECTED):
            injected.append((name, lines))
    print(
        f"CRLF injection (SMTP, {part}): {len(envelope_results)} envelope cases (MAIL FROM, RCPT TO x CRLF/LF/CR), "
        f"{sum(1 for _, d, _ in envelope_results.values() if d == 250)} then delivered; "
        f"{len(header_results)} header-value cases: {len(header_results) - delivered - len(dropped)} refused, "
        f"{delivered} delivered, "
        f"{len(dropped)} accepted then dropped {dropped}, "
        f"{len(injected)} with injected headers at the sink"
    )
    print("  envelope:", ", ".join(f"{n}={c}+DATA {d}" for n, (c, d, _) in envelope_results.items()))
    print("  headers:", ", ".join(f"{n}={c}" for n, ((c, _), _) in header_results.items()))
    assert injected == [], injected
