"""SMTP delivery with aiosmtplib: connections bound to the source IP, kept and reused
per (remote host, port, source IP)."""

from __future__ import annotations

from collections import defaultdict

import aiosmtplib

from mailstream.sender.outcomes import Delivered, Outcome, classify_smtp_error

Route = tuple[str, int, str]  # remote host, port, source IP


class SmtpTransport:
    def __init__(self, *, helo_name: str, timeout: float, max_idle_per_route: int = 8) -> None:
        self._helo = helo_name
        self._timeout = timeout
        self._idle: dict[Route, list[aiosmtplib.SMTP]] = defaultdict(list)
        self._max_idle = max_idle_per_route

    async def _connection(self, route: Route) -> aiosmtplib.SMTP:
        idle = self._idle[route]
        while idle:
            smtp = idle.pop()
            if smtp.is_connected:
                return smtp
        host, port, source_ip = route
        smtp = aiosmtplib.SMTP(
            hostname=host,
            port=port,
            source_address=(source_ip, 0),
            local_hostname=self._helo,
            timeout=self._timeout,
            start_tls=None,
            validate_certs=False,
        )
        await smtp.connect()
        return smtp

    async def deliver(self, route: Route, mail_from: str, recipients: list[str], mime: bytes) -> Outcome:
        smtp = None
        try:
            smtp = await self._connection(route)
            _, reply = await smtp.sendmail(mail_from, recipients, mime)
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
            if smtp is not None:
                smtp.close()
            return classify_smtp_error(exc)
        if len(self._idle[route]) < self._max_idle:
            self._idle[route].append(smtp)
        else:
            await smtp.quit()
        return Delivered(250, reply)

    async def close(self) -> None:
        for connections in self._idle.values():
            for smtp in connections:
                if smtp.is_connected:
                    try:
                        await smtp.quit()
                    except aiosmtplib.SMTPException:
                        smtp.close()
        self._idle.clear()
