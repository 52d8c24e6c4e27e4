"""Layered, validated, hot-reloading configuration store."""
