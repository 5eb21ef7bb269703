"""spy_detector."""
