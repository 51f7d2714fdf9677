"""Resilience: faults of real backends, bad input and attacks, against the real bot."""
