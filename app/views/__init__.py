"""Thin widgets: they show state and emit user intents; none of them imports torch or `engine`."""
