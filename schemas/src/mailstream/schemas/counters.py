"""The statistics counters: columns of the tracker's `stats` table (its `stats_counters` view),
which the tracker increments and the gateway serves, per account, per email and per SMTP token.

- sent: messages rendered and handed to the sender (once per message);
- delivered / bounced / dropped: the message's final delivery outcome (once per message);
- opens_total / clicks_total: every OPEN / CLICK event, human and machine;
- opens_machine / clicks_machine: the events flagged machine;
- opens_unique_human / clicks_unique_human: distinct (message, recipient) with a human open / click;
- spam_reports: SPAM_REPORT events; unsubscribes: email.unsubscribe events (any reason).
Open rate = opens_unique_human / delivered, click rate = clicks_unique_human / delivered.
"""

COUNTERS = (
    "sent",
    "delivered",
    "bounced",
    "dropped",
    "opens_total",
    "opens_unique_human",
    "opens_machine",
    "clicks_total",
    "clicks_unique_human",
    "clicks_machine",
    "spam_reports",
    "unsubscribes",
)
DIMENSIONS = ("account", "email", "token")
