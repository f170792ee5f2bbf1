"""Apply: turn a stored event into replica writes, one event per transaction."""
