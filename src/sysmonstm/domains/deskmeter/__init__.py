"""Deskmeter: where a person's time goes on their Linux desktops (see docs/deskmeter.md)."""
