"""Domain services over the database (layers, districts, risk map, shelters, warnings); no FastAPI."""
