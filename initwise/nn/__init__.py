"""initwise.nn (under construction)."""
