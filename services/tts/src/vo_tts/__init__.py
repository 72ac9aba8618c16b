"""vo tts service."""
