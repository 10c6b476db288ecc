"""Fine-tune a transformer encoder for IMDb sentiment classification (`python -m train --help`)."""
