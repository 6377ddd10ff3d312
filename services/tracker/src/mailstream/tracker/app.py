"""The Faust app object, and nothing else. Configured from settings when the worker starts."""

from mailstream.core.faust_runtime import App

app = App(
    "mailstream-tracker",
    origin="mailstream.tracker",
    autodiscover=["mailstream.tracker.agents"],
    web_enabled=False,
    store="memory://",
    # Two records per message of ~30 KB and ~1 KB: a fetch per 256 KB or 100 ms.
    fetch_min_bytes=256 * 1024,
    fetch_max_wait_ms=100,
)
