"""The user's history as they read it: lists, search, one conversation with its live reply
and share link, bulk actions. It reads conversations, turns and share links together, so it
sits above all three."""
