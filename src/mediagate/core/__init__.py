"""Dialect-free domain logic: authorise -> receive -> check -> commit -> tell."""
