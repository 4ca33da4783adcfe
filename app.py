"""Hugging Face Spaces entry: launches the ttsperf dashboard (Piper selected)."""

from dashboard.app import main

if __name__ == "__main__":
    main()
