"""Who may hand the tracker a complaint: the ARF secret, the SMTP report sources, the SNS envelope."""

import base64

import pytest

from mailstream.tracker.feedback_auth import Refused, arf_secret_given, sns_message, source_allowed

pytestmark = pytest.mark.unit

TOPIC = "arn:aws:sns:us-east-1:123456789012:ses-complaints"
AMAZON_CERT = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000000000000000000000.pem"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    ("header", "taken"),
    [
        ("Bearer s3cret", True),
        ("bearer s3cret", True),
        (basic("fbl", "s3cret"), True),
        (basic("", "s3cret"), True),
        ("Bearer s3cre", False),
        ("Bearer s3cretX", False),
        (basic("s3cret", ""), False),  # the secret is the password, not the user
        ("Basic !!notbase64", False),
        ("Token s3cret", False),
        ("", False),
        (None, False),
    ],
)
def test_the_arf_endpoint_takes_the_secret_as_bearer_or_basic_password(header, taken):
    assert arf_secret_given(header, "s3cret") is taken


def test_an_unset_arf_secret_refuses_everyone():
    assert not arf_secret_given("Bearer ", "")
    assert not arf_secret_given(basic("a", ""), "")


def test_report_sources_are_networks():
    nets = ("127.0.0.0/8", "2001:db8::/32", "192.0.2.7")
    assert all(source_allowed(ip, nets) for ip in ("127.9.8.7", "2001:db8::1", "192.0.2.7"))
    assert not source_allowed("192.0.2.8", nets) and not source_allowed("10.0.0.1", nets)
    assert not source_allowed("", nets) and not source_allowed("127.0.0.1", ())


def notification(**changes) -> dict:
    doc = {
        "Type": "Notification",
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": TOPIC,
        "Subject": "My First Message",
        "Message": "Hello world!",
        "Timestamp": "2012-05-02T00:54:06.655Z",
        "SignatureVersion": "1",
        "Signature": base64.b64encode(b"sig").decode(),
        "SigningCertURL": AMAZON_CERT,
    }
    return {k: v for k, v in {**doc, **changes}.items() if v is not None}


def parse(doc, prefixes=()):
    return sns_message(doc, cert_url_prefixes=prefixes, topic_arns=(TOPIC,))


def test_the_string_to_sign_is_amazons_field_order():
    message = parse(notification())
    assert message.string_to_sign == (
        b"Message\nHello world!\nMessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\nSubject\nMy First Message\n"
        b"Timestamp\n2012-05-02T00:54:06.655Z\nTopicArn\n" + TOPIC.encode() + b"\nType\nNotification\n"
    )
    assert message.hash_name == "sha1" and message.signature == b"sig"
    assert b"Subject" not in parse(notification(Subject=None)).string_to_sign  # signed only when present
    assert parse(notification(SignatureVersion="2")).hash_name == "sha256"


def test_a_subscription_confirmation_signs_its_token_and_url():
    doc = notification(Type="SubscriptionConfirmation", Subject=None, Token="tok", SubscribeURL="https://x")
    assert b"SubscribeURL\nhttps://x\n" in parse(doc).string_to_sign and b"Token\ntok\n" in parse(doc).string_to_sign


@pytest.mark.parametrize(
    "doc",
    [
        {"notificationType": "Complaint"},  # bare SES JSON: no signature to check
        "not an object",
        notification(TopicArn="arn:aws:sns:us-east-1:999999999999:someone-elses"),
        notification(SignatureVersion="3"),
        notification(SigningCertURL="http://sns.us-east-1.amazonaws.com/cert.pem"),  # not https
        notification(SigningCertURL="https://sns.us-east-1.amazonaws.com.evil.example/cert.pem"),
        notification(SigningCertURL="https://evil.example/sns.us-east-1.amazonaws.com/cert.pem"),
        notification(SigningCertURL="https://sns.us-east-1.amazonaws.com/cert.pem?x=.pem"),
        notification(Signature="***"),
        notification(Timestamp=None),
    ],
)
def test_what_is_not_a_signed_message_from_an_allowed_topic_is_refused(doc):
    with pytest.raises(Refused):
        parse(doc)


def test_an_operator_prefix_allows_another_certificate_url():
    local = notification(SigningCertURL="http://127.0.0.1:8099/cert.pem")
    with pytest.raises(Refused):
        parse(local)
    assert parse(local, prefixes=("http://127.0.0.1:",)).cert_url == "http://127.0.0.1:8099/cert.pem"
