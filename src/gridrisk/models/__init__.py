"""Pydantic request and response models, named XCreate, XUpdate and XPublic."""
