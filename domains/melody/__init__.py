"""The melody domain (spec/melody.md)."""
