"""The fan-out of one-off sends to many contacts: `python -m mailstream.gateway.fanout`."""
