"""Import: other products' and Chatkeep's own exports brought back as archived conversations.

`router` takes the upload (`upload` bounds it on disk), `reading` recognises the file and
streams its conversations one at a time under budgets, `formats` converts other products'
entries, `checks` turns each into a checked conversation, `service` writes them in batches
bounded by rows and bytes, and `admission` lets one large import run per process at a
time. It sits above `exports`, whose formats it reads.
"""
