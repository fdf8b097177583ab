"""What the reliability tests' mesh is configured with (tests/integration/reliability)."""

# The Google Vision key the fake Vision accepts.
VISION_KEY = "AIzaSy-reliability-key-5f0c1e"
SEED_ITEMS = 6
