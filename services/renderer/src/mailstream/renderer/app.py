"""The Faust app object, and nothing else. Configured from settings when the worker starts."""

from mailstream.core.faust_runtime import App

app = App(
    "mailstream-renderer",
    origin="mailstream.renderer",
    autodiscover=["mailstream.renderer.agents"],
    web_enabled=False,
    store="memory://",
    # Send requests are 1-3 KB: a fetch per 64 KB (a few dozen requests) or 50 ms.
    fetch_min_bytes=64 * 1024,
    fetch_max_wait_ms=50,
)
