"""spy_operator."""
