"""Worked examples of pipelines built with the framework (which never imports them)."""
