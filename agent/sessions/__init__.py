"""Sessions and their store: the SQLite database and content-addressed image files
(store.py), a session's turns, undo, redo and branches (session.py), and how images are read
and labelled on disk (image_files.py, pnginfo.py)."""
