"""initwise.datainit (under construction)."""
