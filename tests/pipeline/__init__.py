"""Tests of pipeline (CLI, runners, results, report)."""
