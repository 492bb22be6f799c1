"""initwise.schemes (under construction)."""
