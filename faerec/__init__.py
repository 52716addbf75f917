"""faerec: tail-aware sequential recommenders with LLM item embeddings (FAERec)."""

__version__ = "0.1.0"
