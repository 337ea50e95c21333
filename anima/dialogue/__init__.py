"""The brain: LLM backends, knowledge base, persona and memory (planned; see issue 4)."""
