"""Shared plumbing: typed params parsing, user-facing errors, atomic file writes."""
