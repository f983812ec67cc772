"""The operators' verbs of the `tributary` command, each module registering its own on `main`."""
