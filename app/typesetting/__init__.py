"""Typesetting: a conversation laid out as a PDF, in any script. It knows nothing of where
the conversation comes from; the exports hand it what to print."""
