"""espeak-ng as a ttsperf engine: a worked example of a plug-in (see docs/engines.md)."""
