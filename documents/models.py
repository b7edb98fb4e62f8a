"""Tables of the `documents` package (none yet; each issue adds its own with a migration)."""
