"""Dialects: thin translators between a cloud's wire format and the core pipeline."""
