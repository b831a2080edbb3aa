"""Scripts that train the embedded shapes-world models (run as `python -m training.NAME`)."""
