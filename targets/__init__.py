"""Declarative hardware target files (TOML), shipped as package data."""
