"""Tests of the deployment files: the alert rules and the dashboard against the code."""
