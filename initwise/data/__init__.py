"""initwise.data (under construction)."""
