"""Which cell am I in, from memory: every layer's cells in one spatial index, kept current from the outbox."""
