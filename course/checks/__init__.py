"""Lesson-specific exercise checks (mutants and property checks)."""
