"""Message header names that are contracts between services."""

# Our message id in every message the renderer writes; feedback-loop reports carry it back to the
# tracker, which attributes the complaint to the message, its account and its recipient.
MESSAGE_ID_HEADER = "X-Mailstream-ID"
