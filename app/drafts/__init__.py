"""The draft ledger as the user reads it: a conversation's drafts, their posts, stored images.
It reads a conversation the caller owns, so it sits above conversations; the ledger itself
is the assistant's."""
