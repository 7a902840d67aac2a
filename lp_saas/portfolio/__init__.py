"""The portfolio itself: course outcomes, diverse performance, self-statements, selection, files."""
