"""Email: rendering (Jinja2 templates), transports (SMTP, .eml files) and the outbox worker."""
