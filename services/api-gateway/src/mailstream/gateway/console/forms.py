"""The console's form parsing and its token chart, without I/O: a textarea of addresses, a
datetime-local field read as UTC, and the daily sends/opens/clicks as an inline SVG bar chart."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

CHART_DAYS = 30
PAGE_SIZE = 50  # rows a list page shows
SERIES = (("SENT", "Sends"), ("OPEN", "Opens"), ("CLICK", "Clicks"))


def addresses_of(text: str) -> list[str]:
    """One address a line (commas and blanks also split); empty lines and repeats dropped, order kept."""
    seen: dict[str, None] = {}
    for line in text.replace(",", "\n").splitlines():
        address = line.strip()
        if address and address.lower() not in {a.lower() for a in seen}:
            seen[address] = None
    return list(seen)


def offset_of(value: str | None, *, most: int = 100_000) -> int:
    """A list page's offset from the query string: a whole number from 0 to most, else 0."""
    try:
        offset = int(value or 0)
    except ValueError:
        return 0
    return offset if 0 <= offset <= most else 0


@dataclass(frozen=True)
class Page:
    rows: list[Any]
    previous: str | None  # the previous page's link; None on the first page
    next: str | None  # None on the last page


def page_of(fetched: list[Any], *, offset: int, path: str, query: dict[str, str], size: int = PAGE_SIZE) -> Page:
    """One page of a list fetched with LIMIT size + 1 OFFSET offset (the extra row says there is a
    next page), with the links to its neighbours: path?query&offset=N."""

    def link(to: int) -> str:
        return f"{path}?{urlencode({**query, 'offset': to})}"

    return Page(
        rows=list(fetched[:size]),
        previous=link(max(offset - size, 0)) if offset > 0 else None,
        next=link(offset + size) if len(fetched) > size else None,
    )


def utc_time(value: str) -> datetime | None:
    """A datetime-local value (2026-12-03T09:30, seconds optional), read as UTC; None when empty.
    Raises ValueError when it is not one."""
    value = value.strip()
    if not value:
        return None
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is not None:
        raise ValueError("a time without a zone (it is read as UTC)")
    return parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class DayCounts:
    day: date
    counts: dict[str, int]  # SENT, OPEN, CLICK


def daily_series(rows: list[dict[str, Any]], today: date, days: int = CHART_DAYS) -> list[DayCounts]:
    """Every day of the last `days` (today included, oldest first) with its counts, 0 when none."""
    by_day: dict[date, dict[str, int]] = {}
    for r in rows:
        by_day.setdefault(r["day"], {})[r["type"]] = int(r["n"])
    first = today - timedelta(days=days - 1)
    out = []
    for i in range(days):
        d = first + timedelta(days=i)
        found = by_day.get(d, {})
        out.append(DayCounts(d, {key: found.get(key, 0) for key, _ in SERIES}))
    return out


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    series: str
    label: str  # e.g. "2026-12-03, sends: 4"


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    top: int  # the largest count, the y axis's top
    bars: list[Bar]
    ticks: list[tuple[float, str]]  # x, a date label under the axis
    total: dict[str, int]


def bar_chart(series: list[DayCounts], *, width: int = 720, height: int = 220) -> Chart:
    """Grouped bars, one group a day: each bar's height is its count over the largest count."""
    left, bottom, top_pad = 40, 30, 10
    plot_w, plot_h = width - left - 10, height - bottom - top_pad
    top = max([max(d.counts.values()) for d in series] + [1])
    group = plot_w / max(len(series), 1)
    bar_w = group / (len(SERIES) + 1)
    bars, ticks = [], []
    for i, d in enumerate(series):
        x0 = left + i * group
        for j, (key, name) in enumerate(SERIES):
            n = d.counts[key]
            h = plot_h * n / top
            if n:
                bars.append(
                    Bar(
                        round(x0 + j * bar_w + bar_w / 2, 1),
                        round(top_pad + plot_h - h, 1),
                        round(bar_w, 1),
                        round(h, 1),
                        key.lower(),
                        f"{d.day.isoformat()}, {name.lower()}: {n}",
                    )
                )
        if (i % 7 == 0 and i < len(series) - 3) or i == len(series) - 1:  # labels that do not overlap
            ticks.append((round(x0 + group / 2, 1), d.day.strftime("%m-%d")))
    total = {key: sum(d.counts[key] for d in series) for key, _ in SERIES}
    return Chart(width, height, top, bars, ticks, total)
