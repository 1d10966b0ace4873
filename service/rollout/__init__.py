"""Rollout: aliases, traffic, history and the promotion gate."""
