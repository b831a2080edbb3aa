"""Running many turns: scripted runs from a JSON Lines file (script.py), their model calls
batched across sessions (batching.py), or spread over Ray actors (ray_script.py,
ray_cluster.py)."""
