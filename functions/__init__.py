"""One folder per agent; each is an independently deployable HTTP function."""
