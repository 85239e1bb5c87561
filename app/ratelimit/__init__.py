"""Per-user rate limits with visible quotas; counters shared through RATE_LIMIT_STORAGE_URL."""
