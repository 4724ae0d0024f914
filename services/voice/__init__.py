"""The voice service: private Discord voice channels for running FACEIT matches."""
