"""The demo city generators: grids, risk sources, shelters and hazard points, deterministic from a seed."""
