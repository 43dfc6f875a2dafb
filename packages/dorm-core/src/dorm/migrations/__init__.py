"""Schema changes: the SchemaEditor (and, later, migrations)."""
