"""Shared infrastructure below every layer: the process-wide Spark session and progress reporting."""
