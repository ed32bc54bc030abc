"""The VirNucPro FastESM2 acceptance suite (pytest)."""
