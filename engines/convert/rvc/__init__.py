"""RVC v2 (Retrieval-based Voice Conversion) as a post-synthesis stage, on rvc-next's model code."""
