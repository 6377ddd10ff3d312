"""Bad input on the two SMTP servers: the gateway's submission server (2587) and the tracker's
feedback-loop intake (2591). Each case gets a clear 4xx/5xx (or, for input that is legal, is
accepted and delivered whole); the server keeps serving the next client; nothing is half-accepted
(a refused case's recipient never gets mail, an accepted one always does)."""

from __future__ import annotations

import asyncio
import base64
import email
import uuid
from email.policy import default

import pytest

from mailstream.schemas import EngagementKind, EngagementRecorded
from mailstream.schemas.topics import ENGAGEMENT

pytestmark = pytest.mark.e2e


def refused(code: int) -> bool:
    return 400 <= code < 600


# --- the submission server's cases: each returns the codes of the steps that must be refused --------
# A case gets (client factory, token, rcpt, h); it returns ("refused", [codes]) or ("accepted", [codes]).


def garbage_command(c, t, rcpt, h):
    with c() as s:
        return "refused", [s.cmd("XYZZY hello")[0]]


def mail_before_ehlo(c, t, rcpt, h):
    with c() as s:
        return "refused", [s.cmd(f"MAIL FROM:<x@{t.domain}>")[0]]


def auth_before_starttls(c, t, rcpt, h):
    with c() as s:
        s.cmd("EHLO client.example")
        blob = base64.b64encode(f"\0{t.id}\0{t.password}".encode()).decode()
        return "refused", [s.cmd(f"AUTH PLAIN {blob}")[0], s.cmd(f"MAIL FROM:<x@{t.domain}>")[0]]


def overlong_command(c, t, rcpt, h):
    with c() as s:
        s.starttls()
        return "refused", [s.cmd("NOOP " + "a" * 20_000)[0]]


def nul_in_address(c, t, rcpt, h):
    code = submit(c, t, rcpt, h.message(f"orders@{t.domain}", rcpt), rcpt_bytes=rcpt.encode().replace(b"@", b"\x00@"))
    return ("accepted" if code == 250 else "refused"), [code]


def non_utf8_address(c, t, rcpt, h):
    code = submit(c, t, rcpt, h.message(f"orders@{t.domain}", rcpt), rcpt_bytes=rcpt.encode().replace(b"@", b"\xff@"))
    return ("accepted" if code == 250 else "refused"), [code]


def rcpt_before_mail(c, t, rcpt, h):
    with c() as s:
        s.session(t)
        return "refused", [s.cmd(f"RCPT TO:<{rcpt}>")[0], s.cmd("DATA")[0]]


def bad_mail_syntax(c, t, rcpt, h):
    """MAIL FROM without brackets: refused, or taken leniently (the envelope sender is replaced by the
    account's bounce address anyway) and then the message must be delivered whole."""
    code = submit(c, t, rcpt, h.message(f"orders@{t.domain}", rcpt), mail_line=f"MAIL FROM:x@{t.domain} junk")
    return ("accepted" if code == 250 else "refused"), [code]


def mail_unknown_parameter(c, t, rcpt, h):
    with c() as s:
        s.session(t)
        return "refused", [s.cmd(f"MAIL FROM:<x@{t.domain}> BOGUS=1")[0]]


def bad_rcpt_syntax(c, t, rcpt, h):
    with c() as s:
        s.session(t)
        s.cmd(f"MAIL FROM:<x@{t.domain}>")
        return "refused", [s.cmd("RCPT TO:<not an address>")[0], s.cmd("RCPT TO:<a@b>")[0], s.cmd("DATA")[0]]


def nested_mail(c, t, rcpt, h):
    with c() as s:
        s.session(t)
        s.cmd(f"MAIL FROM:<x@{t.domain}>")
        return "refused", [s.cmd(f"MAIL FROM:<y@{t.domain}>")[0]]


def bad_auth_base64(c, t, rcpt, h):
    with c() as s:
        s.starttls()
        s.cmd("EHLO client.example")
        return "refused", [s.cmd("AUTH PLAIN !!!not-base64!!!")[0], s.cmd(f"MAIL FROM:<x@{t.domain}>")[0]]


def abandoned_data(c, t, rcpt, h):
    with c() as s:
        s.session(t)
        s.cmd(f"MAIL FROM:<x@{t.domain}>")
        s.cmd(f"RCPT TO:<{rcpt}>")
        assert s.cmd("DATA")[0] == 354
        s.send(h.message(f"orders@{t.domain}", rcpt)[:60])  # then the connection drops
    return "refused", [554]  # nothing to read: the check is that nothing is delivered


def starttls_injection(c, t, rcpt, h):
    """Commands pipelined after STARTTLS in the clear must be thrown away, not run inside TLS."""
    with c() as s:
        blob = base64.b64encode(f"\0{t.id}\0{t.password}".encode()).decode()
        s.send(
            f"EHLO a.example\r\nSTARTTLS\r\nAUTH PLAIN {blob}\r\n".encode()
            + f"MAIL FROM:<x@{t.domain}>\r\nRCPT TO:<{rcpt}>\r\n".encode()
        )
        assert s.reply()[0] == 250
        assert s.reply()[0] == 220
        try:
            s.tls()
            first = s.cmd("NOOP")  # a 235 here would be the injected AUTH's reply
            assert first[0] == 250, f"a command pipelined before TLS ran inside it: {first}"
            return "refused", [s.cmd(f"MAIL FROM:<x@{t.domain}>")[0], s.cmd("DATA")[0]]
        except (OSError, h.SmtpError):  # refusing the handshake is a refusal too
            return "refused", [421]


def mail_size_too_large(c, t, rcpt, h):
    with c() as s:
        s.session(t)
        return "refused", [s.cmd(f"MAIL FROM:<x@{t.domain}> SIZE=900000000")[0]]


def data_too_large(c, t, rcpt, h):
    with c() as s:
        s.session(t)
        s.cmd(f"MAIL FROM:<x@{t.domain}>")
        s.cmd(f"RCPT TO:<{rcpt}>")
        body = (b"x" * 998 + b"\r\n") * 600  # 600 kB > 512 KiB
        return "refused", [s.data(h.message(f"orders@{t.domain}", rcpt, body=body))[0]]


def submit(c, t, rcpt, raw: bytes, mail_from=None, smtputf8=False, rcpt_bytes=None, mail_line=None):
    with c() as s:
        s.session(t)
        code, _ = s.cmd(mail_line or f"MAIL FROM:<{mail_from or 'x@' + t.domain}>" + (" SMTPUTF8" if smtputf8 else ""))
        if code != 250:
            return code
        code, _ = s.cmd(b"RCPT TO:<" + (rcpt_bytes or rcpt.encode()) + b">")
        if code != 250:
            return code
        return s.data(raw)[0]


def mime_case(build):
    """A case submitting one message: accepted (250) or refused (4xx/5xx), both fine, but see the checks."""

    def case(c, t, rcpt, h):
        code = submit(c, t, rcpt, build(t, rcpt, h))
        return ("accepted" if code == 250 else "refused"), [code]

    case.__name__ = build.__name__
    return case


@mime_case
def no_from(t, rcpt, h):
    return f"To: {rcpt}\r\nSubject: no from\r\n\r\nbody\r\n".encode()


@mime_case
def two_froms(t, rcpt, h):
    return h.message(f"orders@{t.domain}", rcpt, extra=f"From: other@{t.domain}\r\n".encode())


@mime_case
def from_with_two_addresses(t, rcpt, h):
    return f"From: a@{t.domain}, b@{t.domain}\r\nTo: {rcpt}\r\nSubject: x\r\n\r\nbody\r\n".encode()


@mime_case
def multipart_without_closing_boundary(t, rcpt, h):
    return (
        f"From: <orders@{t.domain}>\r\nTo: {rcpt}\r\nSubject: unclosed\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/alternative; boundary="b1"\r\n\r\n--b1\r\nContent-Type: text/html\r\n\r\n'
        '<p>hi <a href="https://shop.example/x">x</a>\r\n'
    ).encode()


@mime_case
def multipart_with_no_parts(t, rcpt, h):
    return (
        f"From: <orders@{t.domain}>\r\nTo: {rcpt}\r\nSubject: empty\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="never-used"\r\n\r\njust text\r\n'
    ).encode()


@mime_case
def broken_base64_html(t, rcpt, h):
    return (
        f"From: <orders@{t.domain}>\r\nTo: {rcpt}\r\nSubject: b64\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        "PHA+aGk8L3A+!!!@@@###===\r\nnot base64 at all\r\n"
    ).encode()


@mime_case
def nested_200_deep(t, rcpt, h):
    head = f"From: <orders@{t.domain}>\r\nTo: {rcpt}\r\nSubject: deep\r\nMIME-Version: 1.0\r\n".encode()
    body = b"Content-Type: text/html\r\n\r\n<p>deep</p>\r\n"
    for i in range(200):
        body = (
            f'Content-Type: multipart/mixed; boundary="d{i}"\r\n\r\n--d{i}\r\n'.encode()
            + body
            + f"\r\n--d{i}--\r\n".encode()
        )
    return head + body


@mime_case
def header_without_colon(t, rcpt, h):
    return h.message(f"orders@{t.domain}", rcpt, extra=b"This line has no colon\r\nX-After: 1\r\n")


@mime_case
def garbage_content_type(t, rcpt, h):
    return (
        f"From: <orders@{t.domain}>\r\nTo: {rcpt}\r\nSubject: ct\r\nMIME-Version: 1.0\r\n"
        'Content-Type: text/html; charset="unterminated; boundary=;;;\r\n\r\n<p>x</p>\r\n'
    ).encode()


@mime_case
def unknown_charset_html(t, rcpt, h):
    return (
        f"From: <orders@{t.domain}>\r\nTo: {rcpt}\r\nSubject: cs\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/html; charset=x-no-such-charset\r\n\r\n<p>\xe9t\xe9</p>\r\n"
    ).encode("latin-1")


@mime_case
def no_body_no_blank_line(t, rcpt, h):
    return f"From: <orders@{t.domain}>\r\nTo: {rcpt}\r\nSubject: headers only".encode()


@mime_case
def bare_lf_line_endings(t, rcpt, h):
    return h.message(f"orders@{t.domain}", rcpt).replace(b"\r\n", b"\n")


@mime_case
def header_line_of_100kb(t, rcpt, h):
    return h.message(f"orders@{t.domain}", rcpt, extra=b"X-Long: " + b"y" * 100_000 + b"\r\n")


@mime_case
def raw_utf8_subject(t, rcpt, h):
    return h.message(f"orders@{t.domain}", rcpt, subject="Prüfung ✓ ünïcödé").replace(b"Subject: ", b"Subject: ", 1)


@mime_case
def invalid_utf8_subject(t, rcpt, h):
    raw = h.message(f"orders@{t.domain}", rcpt, subject="PLACEHOLDER")
    return raw.replace(b"PLACEHOLDER", b"caf\xe9 \xff\xfe broken")


@mime_case
def eight_bit_from_name(t, rcpt, h):
    return f'From: "Bäckerei Müller" <orders@{t.domain}>\r\nTo: {rcpt}\r\nSubject: x\r\n\r\nbody\r\n'.encode()


def utf8_envelope(c, t, rcpt, h):
    code = submit(c, t, rcpt, h.message(f"orders@{t.domain}", rcpt), mail_from=f"bäcker@{t.domain}", smtputf8=True)
    return ("accepted" if code == 250 else "refused"), [code]


SMUGGLE_ENDINGS = {"lf": b"\n.\n", "cr": b"\r.\r", "crlf-lf": b"\r\n.\n", "lf-crlf": b"\n.\r\n"}


def smuggling(ending: str):
    """SMTP smuggling: a non-CRLF end of data followed by a second message (with a foreign From).
    Only the outer message may be accepted: the smuggled recipient never gets mail, here or downstream."""

    def case(c, t, rcpt, h):
        smuggled = f"smuggled-{uuid.uuid4().hex[:10]}@example.com"
        case.smuggled.append(smuggled)
        inner = (
            f"MAIL FROM:<ceo@victim.example>\r\nRCPT TO:<{smuggled}>\r\nDATA\r\n"
            f"From: CEO <ceo@victim.example>\r\nTo: {smuggled}\r\nSubject: smuggled\r\n\r\nsmuggled\r\n"
        ).encode()
        raw = h.message(f"orders@{t.domain}", rcpt, body=b"outer body" + SMUGGLE_ENDINGS[ending] + inner)
        code = submit(c, t, rcpt, raw)
        return ("accepted" if code == 250 else "refused"), [code]

    case.__name__ = f"smuggling_{ending}"
    case.smuggled = []
    return case


CASES = [
    garbage_command,
    mail_before_ehlo,
    auth_before_starttls,
    overlong_command,
    nul_in_address,
    non_utf8_address,
    rcpt_before_mail,
    bad_mail_syntax,
    mail_unknown_parameter,
    bad_rcpt_syntax,
    nested_mail,
    bad_auth_base64,
    abandoned_data,
    starttls_injection,
    mail_size_too_large,
    data_too_large,
    no_from,
    two_froms,
    from_with_two_addresses,
    multipart_without_closing_boundary,
    multipart_with_no_parts,
    broken_base64_html,
    nested_200_deep,
    header_without_colon,
    garbage_content_type,
    unknown_charset_html,
    no_body_no_blank_line,
    bare_lf_line_endings,
    header_line_of_100kb,
    raw_utf8_subject,
    invalid_utf8_subject,
    eight_bit_from_name,
    utf8_envelope,
    *(smuggling(e) for e in SMUGGLE_ENDINGS),
]
MUST_REFUSE = {"no_from", "two_froms", "from_with_two_addresses"}


def serves_next_client(h, port: int) -> bool:
    with h.RawSmtp(port) as s:
        return s.greeting[0] == 220 and s.cmd("EHLO next.example")[0] == 250 and s.cmd("QUIT")[0] == 221


async def test_submission_server_refuses_bad_dialogues_and_mime_and_keeps_serving(h, smtp_token, raw_sink):
    token = await smtp_token("sec-smtp-bad")
    source = h.client_address()

    def client():
        return h.RawSmtp(h.SMTP_PORT, source=source)

    outcomes: dict[str, tuple[str, list[int], str]] = {}
    for case in CASES:
        rcpt = h.unique()
        kind, codes = await asyncio.to_thread(case, client, token, rcpt, h)
        outcomes[case.__name__] = (kind, codes, rcpt)
        assert await asyncio.to_thread(serves_next_client, h, h.SMTP_PORT), f"no next client after {case.__name__}"
        if kind == "refused":
            assert codes and all(refused(c) for c in codes), (case.__name__, codes)
        else:
            assert codes == [250], (case.__name__, codes)
    for name in MUST_REFUSE:
        assert outcomes[name][0] == "refused", (name, outcomes[name])

    # a normal message afterwards is accepted and delivered
    good = h.unique()
    code = await asyncio.to_thread(submit, client, token, good, h.message(f"orders@{token.domain}", good))
    assert code == 250
    assert len(await raw_sink.wait(good)) == 1

    # accepted means delivered whole (once, From still the account's domain); refused means nothing arrives
    half_accepted, refused_count, accepted_count = [], 0, 0
    for name, (kind, codes, rcpt) in outcomes.items():
        got = await raw_sink.wait(rcpt, within=30 if kind == "accepted" else 0)
        if kind == "accepted":
            accepted_count += 1
            if len(got) != 1:
                half_accepted.append((name, codes, len(got)))
                continue
            parsed = email.message_from_bytes(got[0], policy=default)
            assert parsed["From"].addresses[0].domain == token.domain, (name, parsed["From"])
        else:
            refused_count += 1
            if got:
                half_accepted.append((name, codes, len(got)))
    smuggled = [s for case in CASES for s in getattr(case, "smuggled", [])]
    smuggled_delivered = [s for s in smuggled if await raw_sink.messages(s)]
    print(
        f"SMTP submission bad input: {len(CASES)} cases, {refused_count} refused with 4xx/5xx, "
        f"{accepted_count} legal and accepted, {len(half_accepted)} half-accepted, "
        f"{len(smuggled_delivered)}/{len(smuggled)} smuggled messages delivered, next client served after each"
    )
    print("  refused:", ", ".join(f"{n}={c}" for n, (k, c, _) in outcomes.items() if k == "refused"))
    print("  accepted:", ", ".join(n for n, (k, _, _) in outcomes.items() if k == "accepted"))
    assert half_accepted == []
    assert smuggled_delivered == []


# --- the tracker's feedback-loop intake -------------------------------------------------------------


def arf(message_id: str, recipient: str, *, feedback_part: bool = True, extra_header: bytes = b"") -> bytes:
    b = f"b_{uuid.uuid4().hex}"
    fields = (
        f"--{b}\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nUser-Agent: Sec/1.0\r\n"
        f"Version: 1\r\nOriginal-Rcpt-To: <{recipient}>\r\n\r\n"
        if feedback_part
        else ""
    )
    return (
        b"From: <fbl@isp.example>\r\nTo: <fbl@mailstream.example>\r\nSubject: FBL\r\nMIME-Version: 1.0\r\n"
        + extra_header
        + (
            f'Content-Type: multipart/report; report-type=feedback-report; boundary="{b}"\r\n\r\n'
            f"--{b}\r\nContent-Type: text/plain\r\n\r\nA report.\r\n"
            f"{fields}"
            f"--{b}\r\nContent-Type: message/rfc822\r\n\r\nX-Mailstream-ID: {message_id}\r\nSubject: x\r\n\r\nbody\r\n"
            f"--{b}--\r\n"
        ).encode()
    )


def feedback_cases(message_id: str, recipient: str):
    def dialogue(*lines):
        def run(s):
            s.cmd("HELO isp.example")
            return [s.cmd(line)[0] for line in lines][-1:]  # the last step is the bad one

        return run

    def data(raw: bytes, *, helo: bool = True):
        def run(s):
            s.cmd("HELO isp.example")
            s.cmd("MAIL FROM:<fbl@isp.example>")
            s.cmd("RCPT TO:<fbl@mailstream.example>")
            return [s.data(raw)[0]]

        return run

    def abandoned(s):
        s.cmd("HELO isp.example")
        s.cmd("MAIL FROM:<fbl@isp.example>")
        s.cmd("RCPT TO:<fbl@mailstream.example>")
        s.cmd("DATA")
        s.send(arf(message_id, recipient)[:-40])
        return [554]

    def oversized(s):
        s.cmd("HELO isp.example")
        s.cmd("MAIL FROM:<fbl@isp.example>")
        s.cmd("RCPT TO:<fbl@mailstream.example>")
        raw = arf(message_id, recipient, extra_header=b"X-Pad: " + b"p" * 990 + b"\r\n" + b"X-Pad: p\r\n" * 1)
        pad = (b"z" * 998 + b"\r\n") * 11_000  # 11 MB > the 10 MiB limit
        return [s.data(raw.replace(b"A report.\r\n", b"A report.\r\n" + pad))[0]]

    not_arf = f"From: <a@isp.example>\r\nSubject: hi\r\nX-Mailstream-ID: {message_id}\r\n\r\nspam!\r\n".encode()
    return {
        "garbage command": dialogue("XYZZY"),
        "data before rcpt": dialogue("MAIL FROM:<a@isp.example>", "DATA"),
        "overlong command": dialogue("NOOP " + "a" * 20_000),
        "non-utf8 command": dialogue(b"MAIL FROM:<\xff\xfe@isp.example>", "DATA"),
        "not a report": data(not_arf),
        "report without feedback part": data(arf(message_id, recipient, feedback_part=False)),
        "truncated report": data(arf(message_id, recipient)[:300]),
        "garbage bytes": data(bytes(range(256)) * 8),
        "abandoned data": abandoned,
        "over 10 MiB": oversized,
    }


async def test_feedback_smtp_refuses_bad_input_without_events_and_keeps_serving(h, api, account, raw_sink, tail):
    key = account("sec-fbl")
    email_id, reply = await h.create_email(api, key)
    assert email_id, reply.text
    to = h.unique()
    sent = await api.post(h.SEND, headers=h.auth(key), json={"emailId": email_id, "message": {"to": to}})
    assert sent.status_code == 200, sent.text
    (raw,) = await raw_sink.wait(to)
    message_id = email.message_from_bytes(raw, policy=default)["X-Mailstream-ID"]
    for _ in range(300):  # the tracker must know the message, or a report would be ignored anyway
        if await h.db("SELECT 1 FROM tracked_messages WHERE message_id = $1", uuid.UUID(message_id)):
            break
        await asyncio.sleep(0.1)

    def run(case):
        with h.RawSmtp(h.FEEDBACK_PORT) as s:
            return case(s)

    cases = feedback_cases(message_id, to)
    results = {}
    async with tail(ENGAGEMENT, record_type=EngagementRecorded) as events:
        for name, case in cases.items():
            results[name] = await asyncio.to_thread(run, case)
            assert results[name] and all(refused(c) for c in results[name]), (name, results[name])
            assert await asyncio.to_thread(serves_next_client, h, h.FEEDBACK_PORT), f"no next client after {name}"
        reports = lambda e: e.message_id == message_id and e.kind is EngagementKind.SPAM_REPORT  # noqa: E731
        bad_events = await events.collect(reports, count=1, within=3)
        assert bad_events == [], "a refused report published an event"
        # a valid report afterwards is taken: exactly one spam report
        good = await asyncio.to_thread(
            run,
            lambda s: [
                s.cmd("HELO isp.example")[0],
                s.cmd("MAIL FROM:<fbl@isp.example>")[0],
                s.cmd("RCPT TO:<fbl@mailstream.example>")[0],
                s.data(arf(message_id, to))[0],
            ],
        )
        assert good[-1] == 250, good
        taken = await events.collect(reports, count=1, within=20, settle=1.0)
    assert len(taken) == 1
    print(
        f"Feedback SMTP bad input: {len(cases)} cases, {len(cases)} refused with 4xx/5xx, "
        f"0 events from them, next client served after each, then 1 valid report -> 1 spam report event"
    )
    print("  codes:", ", ".join(f"{n}={c}" for n, c in results.items()))


async def test_a_recipient_with_a_nul_or_undecodable_byte_is_refused_at_rcpt_for_good(h, smtp_token):
    token = await smtp_token("sec-smtp-nul")

    def rcpt_reply(address: bytes) -> tuple[int, str]:
        with h.RawSmtp(h.SMTP_PORT, source=h.client_address()) as s:
            s.session(token)
            s.cmd(f"MAIL FROM:<x@{token.domain}>")
            code, text = s.cmd(b"RCPT TO:<" + address + b">")
            if code != 250:
                return code, text
            return s.data(h.message(f"orders@{token.domain}", "someone@example.com"))

    replies = {
        name: await asyncio.to_thread(rcpt_reply, h.unique().encode().replace(b"@", bad + b"@"))
        for name, bad in (("NUL", b"\x00"), ("0xFF", b"\xff"), ("0x01", b"\x01"))
    }
    print(f"SMTP recipients with control/undecodable bytes: {', '.join(f'{n}={c}' for n, (c, _) in replies.items())}")
    assert all(500 <= code < 600 for code, _ in replies.values()), replies
