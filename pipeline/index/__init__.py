"""The advice index: Chroma (embedded or a server), the local embedding model, its cache."""
