"""Jobs: long work (the ZIP of everything, imports) on a queue in PostgreSQL, run by a
worker inside each app process or by `python -m app worker` processes."""
