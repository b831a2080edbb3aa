"""The shapes world: Atelier's embedded default domain (see WORLD.md)."""
