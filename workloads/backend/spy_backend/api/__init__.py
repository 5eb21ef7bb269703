"""HTTP layer: dependencies, one router per resource, combined in `api.main`."""
