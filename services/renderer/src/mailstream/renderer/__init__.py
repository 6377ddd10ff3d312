"""mailstream renderer: turns a send request into the exact bytes a mailbox receives."""
