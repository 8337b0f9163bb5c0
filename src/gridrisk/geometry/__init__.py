"""Pure geometry: coordinate conversions with no database and no web framework."""
