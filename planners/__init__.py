"""Planners: turn a request into a typed Plan of conditioning steps."""
