"""Payment-delay ML: feature contract, time-based splits, training, evaluation, registry, prediction.

Plain functions callable from a flow, the CLI or a test. Nothing here imports Prefect.
"""
