from tributary.cli import entrypoint

entrypoint()
