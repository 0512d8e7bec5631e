"""Operator's tools over whole swarms: listing, deletion and retention. May import every layer
below the CLI.
"""
