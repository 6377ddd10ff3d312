"""The envelope sender (MAIL FROM) of each message: a signed VERP return path, so a bounce that
comes back after the receiving server said 250 (a DSN, RFC 3464) leads the tracker to the message
and its recipient (mailstream.schemas.return_paths has the format).

    b-<message id and MAC, base32>@<return-path label>.<sending domain>

The domain is the one the domain settings publish for the sending domain: the RETURN_PATH CNAME
`<MAILSTREAM_RETURN_PATH_LABEL>.<domain>` -> the bounce host (docs/domains.md). A message id that
is not a UUID keeps the From address as its envelope sender.
"""

from __future__ import annotations

from mailstream.schemas.return_paths import ReturnPaths


class ReturnPath:
    def __init__(self, paths: ReturnPaths, label: str) -> None:
        self._paths = paths
        self._label = label.strip(".").lower()

    def __call__(self, message_id: str, from_address: str) -> str:
        domain = from_address.rpartition("@")[2].lower()
        if not domain:
            return from_address
        host = f"{self._label}.{domain}" if self._label else domain
        return self._paths.address(message_id, host) or from_address
