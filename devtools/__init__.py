"""Development tools: the local process runner (`make run`) and its child processes."""
