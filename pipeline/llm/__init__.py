"""Providers behind one small interface: the offline engine and OpenAI-compatible servers."""
