"""spy_analytics."""
