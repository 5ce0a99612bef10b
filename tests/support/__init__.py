"""Helpers shared by the tests: generated media, videos, and a CLI launcher."""
