"""Replies being written: generation as a service, the in-process registry and its flush
(liveness), the reply bus between processes, and the event stream's updates."""
