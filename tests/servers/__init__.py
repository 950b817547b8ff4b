"""Real inference servers for the remote-target tests: their venvs and their start scripts."""
