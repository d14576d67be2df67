"""Deskmeter: watcher, intervals, queries, focus rules, pages."""
