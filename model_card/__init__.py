"""Model card and Hub publishing for a finished training run: `python -m model_card build|push RUN_DIR`."""
