"""Vector tiles: the tile collections, Web Mercator tile maths and the per-worker tile cache."""
