"""Atelier's agent: turns plain-language requests into plans and runs them."""
