"""mailstream sender: delivers rendered messages over SMTP from the assigned source IP."""
