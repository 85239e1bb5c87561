"""Import: other products' and Chatkeep's own exports brought back as archived conversations.

`reading` recognises the file and streams its conversations one at a time under budgets,
`checks` turns each into a checked conversation, `service` writes them in batches bounded
by rows and bytes, and `admission` lets one large import run per process at a time.
"""
