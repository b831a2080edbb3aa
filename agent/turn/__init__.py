"""The turn loop: a request planned, each step run on the models, checked and corrected
(orchestrator.py), the checkers (checks.py), the seam to the models (runner.py) and the
events a turn streams (events.py)."""
