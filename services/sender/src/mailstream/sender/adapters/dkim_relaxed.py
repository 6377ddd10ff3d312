"""DKIM's relaxed canonicalization (RFC 6376 3.4.2, 3.4.4) of a CRLF-only message, with bytes
methods: byte for byte what dkimpy 1.1.8 produces (its rfc822_parse and Relaxed class), which
tests check on random input. dkimpy's regex passes cost ~0.6 ms per 25 KB body and ~50 µs per
header block; these cost a few µs on rendered messages.
"""

from __future__ import annotations

import re

import dkim
from dkim.canonicalization import correct_empty_body, strip_trailing_lines

_FIELD_NAME = bytes(range(0x21, 0x7F))  # the bytes dkimpy's pattern allows in a name: printable US-ASCII
_SPACE_HOPS = 64  # spaces looked at one by one before the full whitespace pass (see relaxed_body)


def header_fields(head: bytes) -> list[list[bytes]]:
    """[name, value] of each field of a header block (its lines end in CRLF), continuation lines
    kept in the value with their CRLF, as dkimpy's rfc822_parse returns them."""
    fields: list[list[bytes]] = []
    for line in head.split(b"\r\n")[:-1]:
        if line[:1] in (b" ", b"\t"):
            if not fields:
                raise dkim.MessageFormatError(f"a continuation line before any header field: {line[:80]!r}")
            fields[-1][1] += line + b"\r\n"
            continue
        colon = line.find(b":", 1)  # a name is one character at least (dkimpy: a ':' too)
        if colon > 0 and not line[:colon].translate(None, _FIELD_NAME):
            fields.append([line[:colon], line[colon + 1 :] + b"\r\n"])
        elif not line.startswith(b"From "):  # an mbox "From " line is skipped, as by dkimpy
            raise dkim.MessageFormatError(f"Unexpected characters in RFC822 header: {line[:80]!r}")
    return fields


def relaxed_header(name: bytes, value: bytes) -> tuple[bytes, bytes]:
    """A field as it is hashed: name lowercased, value unfolded, WSP runs made one space, stripped."""
    value = value.replace(b"\r\n", b"").replace(b"\n", b"").replace(b"\t", b" ")
    while b"  " in value:
        value = value.replace(b"  ", b" ")
    return name.lower().rstrip(), value.strip() + b"\r\n"


def relaxed_body(body: bytes) -> bytes:
    """WSP runs become one space, WSP before a line end goes, empty lines at the end go (dkimpy's
    own helpers for that part: they only look at the end)."""
    if b"\t" in body or _spaces_need_work(body):
        body = _one_space_per_run(body.replace(b"\t", b" "))
        body = body.replace(b" \r\n", b"\r\n")  # one space at most precedes a line end now
    return correct_empty_body(strip_trailing_lines(body))


_RUN = re.compile(rb" {2,}")
_MANY_RUNS = 256


def _one_space_per_run(body: bytes) -> bytes:
    """Every run of spaces as one space. Halving runs with replace() took one pass over the body
    per doubling of the longest run (~1 ms on a 43 KB body with a padded HTML part), and a regular
    expression ~1 ms on indented HTML. Runs are found with memchr-speed searches and measured by a
    match at their start; past _MANY_RUNS (indented HTML) the body is split into words instead."""
    pieces, position = [], 0
    start = body.find(b"  ")
    while start >= 0:
        if len(pieces) >= _MANY_RUNS:
            pieces.append(_by_words(body[position:]))
            return b"".join(pieces)
        end = _RUN.match(body, start).end()
        pieces.append(body[position : start + 1])
        position = end
        start = body.find(b"  ", end)
    if not pieces:
        return body
    pieces.append(body[position:])
    return b"".join(pieces)


def _by_words(text: bytes) -> bytes:
    """Runs of spaces as one space, by split() and join() in C: line ends are held as NUL (which
    split() keeps) so that only spaces separate words. Bodies holding a NUL or another byte split()
    treats as white space (VT, FF, a bare CR or LF) take the regular expression instead."""
    if b"\x00" in text or b"\x0b" in text or b"\x0c" in text:
        return _RUN.sub(b" ", text)
    held = text.replace(b"\r\n", b"\x00")
    if b"\r" in held or b"\n" in held:
        return _RUN.sub(b" ", text)
    joined = b" ".join(held.split())
    if text[:1] == b" ":
        joined = b" " + joined
    if text[-1:] == b" ":
        joined += b" "
    return joined.replace(b"\x00", b"\r\n")


def _spaces_need_work(body: bytes) -> bool:
    """Whether a space starts a run or ends a line. Bodies in base64 have a few spaces in the part
    headers only: hopping from space to space (memchr) answers in ~1 µs, where searching for two
    spaces or space-CRLF walks all of a 63 KB body (~120 µs). Past many spaces (a text body) the
    full pass decides."""
    position = body.find(b" ")
    for _ in range(_SPACE_HOPS):
        if position < 0:
            return False
        if body[position + 1 : position + 2] in (b" ", b"\r"):
            return True
        position = body.find(b" ", position + 1)
    return True
