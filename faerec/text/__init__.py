"""Item text embeddings: prompts -> encoders -> content-addressed Parquet cache -> item-aligned tables + PCA.

Public API:
    from faerec.text.embed import embed_dataset      # embed a processed dataset folder; returns the summary
    from faerec.text.store import load_embeddings, load_pca   # float32 [n_items + 1, d], row 0 zeros
    from faerec.text.maintenance import compact_cache, cache_stats

Encoders (faerec.text.encoders): ``minilm`` (default, offline), ``st:<name-or-path>``, ``openai[:<model>]``,
``hf:<path>``; options as ``?key=value&...``. Nothing heavy (torch, transformers, openai) is imported until a
model is actually needed, so a fully cached run stays fast.
"""
