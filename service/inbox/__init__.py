"""The inbox: every verified delivery, durable before it is acknowledged, keyed by svix-id."""
