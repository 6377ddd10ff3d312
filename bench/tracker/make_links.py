"""Writes signed tracking-link paths (opens and clicks) for the tracker benchmark, one per line.

    python bench/tracker/make_links.py OUT_FILE [COUNT]

Links are signed with the stack's MAILSTREAM_LINK_SIGNING_KEYS and name a benchmark-only account id
(printed), so the benchmark's statistics rows never mix with a real account's.
"""

from __future__ import annotations

import random
import sys
import uuid

from mailstream.core.settings import LinkSettings
from mailstream.schemas.links import LinkKind, LinkSigner, TrackedLink


def main() -> None:
    out, count = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    settings = LinkSettings.from_env()
    signer = LinkSigner.from_setting(settings.link_signing_keys)
    account_id = 900_000_000 + random.randrange(1_000_000)
    messages = [str(uuid.uuid4()) for _ in range(count // 10 or 1)]
    with open(out, "w") as f:
        for i in range(count):
            message_id = messages[i % len(messages)]
            recipient = f"bench-{message_id[:8]}@bench.example"
            if i % 2:
                link = TrackedLink(LinkKind.OPEN, message_id, account_id, recipient, 1, None)
            else:
                url = f"https://shop.example/p/{i % 7}"
                link = TrackedLink(LinkKind.CLICK, message_id, account_id, recipient, 1, None, url)
            f.write("/" + signer.url("http://x", link).split("/", 3)[3] + "\n")
    print(f"{count} links for benchmark account {account_id} in {out}")


if __name__ == "__main__":
    main()
