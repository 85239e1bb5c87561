"""Personal API keys: long-lived bearer tokens a user makes for scripts and other clients."""
