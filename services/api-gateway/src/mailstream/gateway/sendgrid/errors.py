"""SendGrid's error shape: {"errors": [{"message", "field", "help"}]}, with its status codes."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from mailstream.core.retry import MailstreamError

HELP = "docs/sendgrid.md"  # in the mailstream repository: what is supported


class SendGridError(MailstreamError):
    """An answer in SendGrid's shape; every error of the request is listed, each naming its field."""

    def __init__(self, status: int, errors: list[dict[str, Any]], headers: dict[str, str] | None = None) -> None:
        super().__init__("; ".join(f"{e.get('field')}: {e['message']}" for e in errors))
        self.status, self.errors, self.headers = status, errors, headers


def error(field: str | None, message: str, help_: str | None = None) -> dict[str, Any]:
    return {"message": message, "field": field, "help": help_}


def bad_request(field: str | None, message: str) -> SendGridError:
    return SendGridError(400, [error(field, message)])


def unsupported(field: str, what: str | None = None) -> dict[str, Any]:
    return error(field, f"{what or field} is not supported by mailstream's /v3/mail/send", f"{HELP}#not-supported")


def response(exc: SendGridError) -> JSONResponse:
    return JSONResponse({"errors": exc.errors}, status_code=exc.status, headers=exc.headers)
