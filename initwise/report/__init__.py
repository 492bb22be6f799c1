"""initwise.report (under construction)."""
