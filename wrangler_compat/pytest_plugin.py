"""dohost's pytest plugin (work in progress)."""
