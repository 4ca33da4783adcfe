"""F5-TTS (flow-matching DiT + Vocos) for the lab.

Kept light: the registry imports ``engines.f5.engine`` to read capabilities, and
only the methods of ``F5Engine`` import torch and f5_tts.
"""
