"""The shapes world: Atelier's embedded default domain (see world/WORLD.md)."""
