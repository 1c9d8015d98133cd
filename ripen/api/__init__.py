"""The HTTP API: thin; it translates requests into engine calls and domain errors into 4xx."""
