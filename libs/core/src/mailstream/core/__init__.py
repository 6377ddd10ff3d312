"""Runtime plumbing shared by mailstream services. No business logic, no topic names."""
