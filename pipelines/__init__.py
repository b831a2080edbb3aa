"""Pipelines: one adapter per conditioning operation over diffusers."""
