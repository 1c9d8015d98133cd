"""Mail: the marketers' templates and, later, rendering and the outbox."""
