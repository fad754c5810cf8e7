"""Helpers shared by several test files: app factories and real services the tests start."""
