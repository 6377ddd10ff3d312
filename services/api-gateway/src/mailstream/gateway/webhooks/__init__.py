"""Event webhooks (issue 19, docs/webhooks.md): the delivery, engagement and unsubscribe events of
an account POSTed, signed and batched, to its endpoints. `python -m mailstream.gateway.webhooks`
runs the dispatcher; the gateway's routes/webhooks.py manages the endpoints."""
