"""spy_bot."""
