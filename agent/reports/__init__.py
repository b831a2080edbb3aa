"""What a person reads: turns as terminal lines (display.py), and as a contact sheet and an
HTML report (report.py)."""
