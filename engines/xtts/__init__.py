"""Coqui XTTS v2 adapter. Kept empty of imports: the registry reads capabilities cheaply."""
