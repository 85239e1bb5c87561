"""`make bench`: Chatkeep's storage against the designs a user would pick instead."""
