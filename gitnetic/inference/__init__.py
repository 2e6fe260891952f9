"""Using a trained model: sampling and infilling (``python -m gitnetic generate``)."""
