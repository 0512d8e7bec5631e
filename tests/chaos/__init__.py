"""The chaos suite: the product under SIGKILLs and lost replies (``./scripts/test.sh -m chaos``)."""
