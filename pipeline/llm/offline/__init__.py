"""The offline engine: a deterministic reader of notes that needs no model."""
