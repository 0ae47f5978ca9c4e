"""The worked example: purchase intent of online shoppers' sessions (`pipeline.py`, README.md)."""
