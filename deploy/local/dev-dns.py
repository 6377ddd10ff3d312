"""The local stack's DNS records, as dnsmasq configuration lines.

`dev-dns.py base` prints the records every local domain relies on (the bounce host, the SPF include
of accounts without a dedicated pool); `dev-dns.py domain < view.json` prints the records a
sending domain's view (GET /mailstream/v1/sending-domains/{domain}) asks to publish.
`stack.sh dns-publish` writes them under .mailstream/dns/ and restarts its dnsmasq (TXT records
are read at start only).
"""

from __future__ import annotations

import json
import sys

BOUNCE_HOST = "bounces.mailstream.local"  # MAILSTREAM_BOUNCE_HOST's default
SPF_INCLUDE = "spf.mailstream.local"  # MAILSTREAM_SPF_INCLUDE's default
LOOPBACK_SENDING_IPS = "127.0.0.0/8"  # every development "dedicated IP" is a loopback address


def txt(host: str, value: str) -> str:
    # One TXT string holds at most 255 bytes (RFC 1035); a 2048-bit DKIM key needs two.
    chunks = [value[i : i + 255] for i in range(0, len(value), 255)]
    return f"txt-record={host}," + ",".join(f'"{c}"' for c in chunks)


def base_lines() -> list[str]:
    return [
        f"host-record={BOUNCE_HOST},127.0.0.1",
        txt(SPF_INCLUDE, f"v=spf1 ip4:{LOOPBACK_SENDING_IPS} ~all"),
    ]


def domain_lines(view: dict) -> list[str]:
    lines = []
    for record in view["records"]:
        if record["type"] == "TXT":
            lines.append(txt(record["host"], record["value"]))
        elif record["type"] == "CNAME":
            lines.append(f"cname={record['host']},{record['value']}")
        else:
            raise SystemExit(f"dev-dns.py: no dnsmasq form for a {record['type']} record")
    return lines


def main() -> None:
    what = sys.argv[1] if len(sys.argv) > 1 else ""
    if what == "base":
        lines = base_lines()
    elif what == "domain":
        lines = domain_lines(json.load(sys.stdin))
    else:
        raise SystemExit("usage: dev-dns.py base | domain < sending-domain.json")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
