"""Experiments: the paper's tables and figures from one spec, over seeds, with paired significance tests.

    faerec experiment seeds                 # a preset (faerec/experiment/presets/), or a path to a TOML spec
    faerec experiment ablations --dataset amazon2014:Beauty

spec.py reads the spec; runner.py prepares, embeds and trains the grid (a finished run is never trained
again, an unfinished one resumes); aggregate.py and stats.py turn the runs' user_ranks.parquet files into
means ± std, Impr. rows and paired tests; tables.py renders them; figures.py and tsne.py draw the PNGs;
reporting.py writes runs/<name>/report/. The Prefect flow flows/experiment.py runs the same code. No Prefect
here.
"""
