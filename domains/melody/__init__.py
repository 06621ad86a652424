"""The melody domain (docs/melody.md)."""
