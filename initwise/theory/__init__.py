"""initwise.theory (under construction)."""
