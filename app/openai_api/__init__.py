"""An OpenAI-compatible API (`/v1`) whose every exchange lands in the key owner's history."""
