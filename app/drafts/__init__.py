"""The draft ledger: what was asked, what was drafted, what went out (drafts, versions,
published posts, stored images), the publishers that send a post, and the routes that
read them. Its SQL is in `repository.py`. The assistant writes the ledger; the ledger's
routes read a conversation the caller owns."""
