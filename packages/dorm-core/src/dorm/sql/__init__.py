"""The query representation and the SQL compiler."""
