"""The blind index under its former names, for the chat turn's prebuilt statements.

The tokens are made in `app.encryption.blind_index`; their table is written and read in
`app.conversations.repository`.
"""

from app.conversations.repository import matching_rows, upsert_search_tokens
from app.encryption.blind_index import TokenQuery, index_terms, normalize, token_query, token_row

upsert = upsert_search_tokens

__all__ = [
    "TokenQuery",
    "index_terms",
    "matching_rows",
    "normalize",
    "token_query",
    "token_row",
    "upsert",
]
