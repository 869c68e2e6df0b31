"""Analyses of trained models (paper Fig. 5 and 7): t-SNE of per-case bottleneck embeddings, and kernel density of
predicted foreground probabilities on labeled vs unlabeled cases. CLIs: benchmarks/analysis_tsne.py, analysis_kde.py.
"""
