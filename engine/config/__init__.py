"""The marketers' configuration: load and validate YAML (stage 1), then compile it (stage 2)."""
