"""Using a trained model: sampling and infilling (``python -m gitnetic generate``), and export as an HF folder."""
