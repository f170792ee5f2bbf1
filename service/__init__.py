"""clerk-replica: keeps an app database in sync with Clerk.

Data flows ingest -> inbox -> queue -> apply -> replica; reconcile feeds the same replica writes.
"""
