"""mailstream API gateway: HTTP (and SMTP) ingress that publishes send requests."""
