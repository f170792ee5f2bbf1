"""The operator's console under /console: login, a first page per instance, events, actions."""
