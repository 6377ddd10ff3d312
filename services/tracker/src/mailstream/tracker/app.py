"""The Faust app object, and nothing else. Configured from settings when the worker starts."""

import faust

app = faust.App(
    "mailstream-tracker",
    origin="mailstream.tracker",
    autodiscover=["mailstream.tracker.agents"],
    web_enabled=False,
    store="memory://",
)
