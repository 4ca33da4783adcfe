"""Post-synthesis stages: what happens to an engine's audio before a listener hears it (voice conversion)."""
