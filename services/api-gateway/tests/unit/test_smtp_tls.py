"""The STARTTLS context: a configured certificate, or a self-signed one made in memory."""

import ssl

from cryptography import x509

from mailstream.gateway.settings import GatewaySettings
from mailstream.gateway.smtp.server import self_signed_pem, tls_context


def test_without_a_configured_certificate_a_self_signed_one_is_made_for_the_hostname():
    cert, key = self_signed_pem("smtp.shop.example")
    parsed = x509.load_pem_x509_certificate(cert)
    names = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "smtp.shop.example" in names.get_values_for_type(x509.DNSName)
    assert b"PRIVATE KEY" in key
    context = tls_context(GatewaySettings.from_env({}))
    assert isinstance(context, ssl.SSLContext) and context.minimum_version == ssl.TLSVersion.TLSv1_2


def test_a_configured_certificate_and_key_are_loaded(tmp_path):
    cert, key = self_signed_pem("mail.example")
    (tmp_path / "c.pem").write_bytes(cert)
    (tmp_path / "k.pem").write_bytes(key)
    settings = GatewaySettings.from_env(
        {"MAILSTREAM_SMTP_TLS_CERT": str(tmp_path / "c.pem"), "MAILSTREAM_SMTP_TLS_KEY": str(tmp_path / "k.pem")}
    )
    assert isinstance(tls_context(settings), ssl.SSLContext)
