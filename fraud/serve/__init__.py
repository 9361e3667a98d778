"""Scoring: files, the HTTP service, reason codes, drift."""
