"""Images for drafts: the generators (a card drawn here, or an images API). They only make
bytes; the drafts ledger stores them."""
