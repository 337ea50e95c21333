"""Listening: voice activity, endpointing and speech recognition (planned; see issue 3)."""
