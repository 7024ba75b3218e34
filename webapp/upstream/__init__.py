"""The OpenAI-compatible upstream: the client (requests, typed errors), its body reader, and
what makes the upstream's text storable. Knows nothing of Flask or the database."""
