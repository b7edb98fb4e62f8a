"""Tables of the `rooms` package (none yet; each issue adds its own with a migration)."""
