"""Chat turns: open in one short transaction, generate with no connection held, close in another."""
