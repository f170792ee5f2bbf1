"""Replica writes: the order-safe, set-based statements every kind's writes are made of.

They know tables, not kinds: service/kinds/ says which table plays which part. Rules (Clerk
delivers late, twice and out of order):
- a snapshot applies only if its `updated_at` is >= the stored one (ties: the later arrival wins);
- a tombstone (`deleted_at`) is lifted only by a snapshot of an object created after it;
- a row ended twice keeps the earlier end;
- owned child rows are exactly those of the newest applied snapshot.
"""
