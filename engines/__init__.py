"""What runs: the engine interface, the registry and the adapters."""
