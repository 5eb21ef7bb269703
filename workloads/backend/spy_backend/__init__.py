"""spy_backend."""
