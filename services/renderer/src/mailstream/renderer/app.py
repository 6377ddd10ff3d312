"""The Faust app object, and nothing else. Configured from settings when the worker starts."""

import faust

app = faust.App(
    "mailstream-renderer",
    origin="mailstream.renderer",
    autodiscover=["mailstream.renderer.agents"],
    web_enabled=False,
    store="memory://",
)
