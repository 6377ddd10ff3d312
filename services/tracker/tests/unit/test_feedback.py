import json

import pytest

from mailstream.tracker.feedback import NotAReport, parse_arf, parse_ses

MID = "0b6c3f9e-5a55-4c1e-9d7e-3f0e8a1b2c3d"

# RFC 5965 section 3's example, the original message being one of ours.
ARF = f"""From: <abusedesk@example.com>
Date: Thu, 8 Mar 2005 17:40:36 EDT
Subject: FW: Earn money
To: <abuse@example.net>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report;
     boundary="part1_13d.2e68ed54_boundary"

--part1_13d.2e68ed54_boundary
Content-Type: text/plain; charset="US-ASCII"
Content-Transfer-Encoding: 7bit

This is an email abuse report for an email message received from IP
192.0.2.1 on Thu, 8 Mar 2005 14:00:00 EDT.

--part1_13d.2e68ed54_boundary
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: SomeGenerator/1.0
Version: 1
Original-Mail-From: <orders@shop.example>
Original-Rcpt-To: <User@Example.com>
Arrival-Date: Thu, 8 Mar 2005 14:00:00 EDT
Reporting-MTA: dns; mail.example.com
Source-IP: 192.0.2.1

--part1_13d.2e68ed54_boundary
Content-Type: message/rfc822
Content-Disposition: inline

From: <orders@shop.example>
To: <user@example.com>
Subject: Earn money
MIME-Version: 1.0
Content-type: text/plain
Message-ID: <{MID}@shop.example>
X-Mailstream-ID: {MID}
Date: Thu, 02 Sep 2004 12:31:03 -0500

Spam Spam Spam
--part1_13d.2e68ed54_boundary--
""".replace("\n", "\r\n").encode()


def test_an_rfc5965_report_names_our_message_and_the_recipient():
    c = parse_arf(ARF)
    assert (c.message_id, c.recipient, c.feedback_type, c.is_spam) == (MID, "user@example.com", "abuse", True)
    assert c.user_agent == "SomeGenerator/1.0"


def test_the_message_id_header_is_enough_when_x_mailstream_id_was_stripped():
    c = parse_arf(ARF.replace(f"X-Mailstream-ID: {MID}\r\n".encode(), b""))
    assert c.message_id == MID


def test_headers_only_reports_are_read():
    raw = ARF.replace(b"Content-Type: message/rfc822", b"Content-Type: text/rfc822-headers")
    assert parse_arf(raw).message_id == MID


def test_not_spam_feedback_is_not_a_spam_report():
    assert not parse_arf(ARF.replace(b"Feedback-Type: abuse", b"Feedback-Type: not-spam")).is_spam


@pytest.mark.parametrize(
    "raw",
    [b"From: a@b\r\n\r\nhello", ARF.replace(b"report-type=feedback-report", b"report-type=delivery-status"), b""],
)
def test_other_messages_are_refused(raw):
    with pytest.raises(NotAReport):
        parse_arf(raw)


def ses_complaint(**complaint):
    return {
        "notificationType": "Complaint",
        "complaint": {
            "complainedRecipients": [{"emailAddress": "Jane@Example.com"}],
            "timestamp": "2026-11-28T12:00:00.000Z",
            "feedbackId": "0000013786031775-fea503bc-7497-49e1-881b-a0379bb037d3-000000",
            "userAgent": "Comcast Feedback Loop (V0.01)",
            "complaintFeedbackType": "abuse",
            **complaint,
        },
        "mail": {
            "timestamp": "2026-11-28T11:59:00.000Z",
            "messageId": "0000013786031775-163e3910-53eb-4c8e-a04a-f29debf88a84-000000",
            "source": "orders@shop.example",
            "headers": [{"name": "X-Mailstream-ID", "value": MID}],
            "commonHeaders": {"messageId": f"<{MID}@shop.example>"},
        },
    }


def test_an_ses_complaint_names_our_message_and_the_recipient():
    (c,) = parse_ses(json.dumps(ses_complaint()).encode())
    assert (c.message_id, c.recipient, c.is_spam, c.source) == (MID, "jane@example.com", True, "ses")


def test_an_ses_complaint_inside_an_sns_envelope():
    envelope = {"Type": "Notification", "MessageId": "x", "Message": json.dumps(ses_complaint())}
    (c,) = parse_ses(json.dumps(envelope).encode())
    assert c.message_id == MID


def test_an_ses_complaint_without_headers_uses_the_common_message_id():
    doc = ses_complaint()
    del doc["mail"]["headers"]
    assert parse_ses(json.dumps(doc).encode())[0].message_id == MID


def test_ses_not_spam_and_other_notifications():
    (c,) = parse_ses(json.dumps(ses_complaint(complaintFeedbackType="not-spam")).encode())
    assert not c.is_spam
    with pytest.raises(NotAReport):
        parse_ses(json.dumps({"notificationType": "Bounce"}).encode())
    with pytest.raises(NotAReport):
        parse_ses(b"<xml/>")
