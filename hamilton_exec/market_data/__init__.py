"""Closed bars and order books in: replay, polling and streaming feeds, feed health."""
