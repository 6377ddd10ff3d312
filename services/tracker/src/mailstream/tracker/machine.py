"""Machine opens and link scanners: the rules that set an engagement event's machine flag.

Pure. A request is a machine's when its user agent is a privacy proxy, an image prefetcher or a
link scanner, when it is a HEAD request, or (clicks) when it comes within a few seconds of the
message's delivery: scanners follow every link as the message arrives, people do not.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

# Lower-cased substrings of user agents that are not a person reading the message.
MACHINE_AGENTS = (
    "googleimageproxy",  # Gmail's image proxy fetches the pixel on the server side
    "yahoomailproxy",
    "yahoo! slurp",
    "outlook-ios-linkpreview",
    "microsoft office protocol discovery",
    "ms-office",
    "barracuda",
    "proofpoint",
    "mimecast",
    "symantec",
    "trendmicro",
    "bitdefender",
    "safelinks",
    "linkchecker",
    "urlscan",
    "headlesschrome",
    "phantomjs",
    "python-requests",
    "python-httpx",
    "aiohttp",
    "curl/",
    "wget/",
    "go-http-client",
    "java/",
    "okhttp",
    "bot",
    "spider",
    "crawler",
    "preview",
    "prefetch",
)
_MACHINE_RE = re.compile("|".join(re.escape(a) for a in MACHINE_AGENTS))

# Apple Mail Privacy Protection fetches through Apple's proxies with this exact, version-less agent.
APPLE_MPP_AGENT = "Mozilla/5.0"

CLICK_SCAN_WINDOW = timedelta(seconds=5)


def machine_agent(user_agent: str | None) -> bool:
    if not user_agent or not user_agent.strip():
        return True  # browsers and mail clients always send one
    if user_agent.strip() == APPLE_MPP_AGENT:
        return True
    return _MACHINE_RE.search(user_agent.lower()) is not None


def is_machine(
    *,
    user_agent: str | None,
    method: str,
    click: bool,
    occurred_at: datetime,
    delivered_at: datetime | None,
    scan_window: timedelta = CLICK_SCAN_WINDOW,
) -> bool:
    if method.upper() == "HEAD" or machine_agent(user_agent):
        return True
    return click and delivered_at is not None and timedelta(0) <= occurred_at - delivered_at <= scan_window
