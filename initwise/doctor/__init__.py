"""initwise.doctor (under construction)."""
