"""Apply: stored events become replica writes, in set-based batches; the drain loop that keeps
taking batches while there is work."""
