"""Chatkeep: server-side AI-chat conversations per user, in PostgreSQL."""
