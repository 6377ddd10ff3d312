"""mailstream tracker: send statuses, engagement and feedback loops, statistics."""
