"""Packet representation: parse/emit, sequence arithmetic, options. No protocol logic."""
