"""The embedded demo catalog fixtures live in tests/conftest.py (the store tests use them too)."""
