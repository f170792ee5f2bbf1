"""The change feed: every replica write that changes a kind's row appends to
`clerk_replica_changes` in the same transaction (triggers), and apps read it by `seq`."""
