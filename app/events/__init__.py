"""Live events: one fan-out per process (PostgreSQL LISTEN/NOTIFY or Redis pub/sub)."""
