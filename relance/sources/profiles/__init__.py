"""Column-mapping profiles shipped with relance (YAML files, found by name via importlib.resources)."""
