"""Tests of the sending side of a stream: spool, sender, TLS."""
