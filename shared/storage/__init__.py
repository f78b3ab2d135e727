"""Side-effect interfaces (object store, task store, cache), each with an embedded and a cloud backend."""
