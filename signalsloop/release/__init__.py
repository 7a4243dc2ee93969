"""Packaging and deploying functions to Cloud Run."""
