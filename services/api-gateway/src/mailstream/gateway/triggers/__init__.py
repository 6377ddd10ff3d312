"""Automation triggers (issue 16): records on a customer's own Kafka topic -> sends of an email saved
for automation, through the single-send API's accept path. `python -m mailstream.gateway.triggers`
runs the consumer process; docs/automation.md describes the rules."""
