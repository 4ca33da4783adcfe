"""Sweeps: grids of settings run and stored with resume keys; streaming sweeps."""
