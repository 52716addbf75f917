"""Recommendations out of a finished run: top-K exports, similar items, candidate-only (new) items, and an
HTTP API. Sits beside faerec.train (both use faerec.eval, faerec.runs and below; neither imports the other).

    faerec recommend RUN --k 20 --out recs.parquet      faerec.serve.recommend
    faerec similar RUN --item ID -k 10                   faerec.serve.similar
    faerec api RUN [--host 127.0.0.1] [--port 8000]      faerec.serve.api (FastAPI + uvicorn, imported there only)

Every ranking masks history with faerec.eval.ranking.mask_scores, the one home of the candidate-set rule.
"""
