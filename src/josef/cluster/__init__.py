"""Cluster layer: configuration definitions and resolution (more to come: metadata image,
metadata store, partition roles). See docs/configuration.md for every supported config."""
