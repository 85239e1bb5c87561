"""What a user does to their whole account, across every domain: delete it, download all of
it, see where they stand in every rate limit. It sits above the domains it spans."""
