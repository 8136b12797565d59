"""Shared builders for the offline_store tests (and the kill-test writer process)."""
