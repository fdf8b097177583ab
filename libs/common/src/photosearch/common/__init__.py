"""Runtime code every photosearch service shares (one copy, imported by all)."""
