"""A training run's contract, shared by the trainer and the evaluator: its config (TrainConfig), its folder
(faerec.runs.folder), its checkpoints, and how its model is built from a dataset (faerec.runs.modelling)."""
