"""What the fallback tests' fake Google Vision is set up with (tests/integration/fallback)."""

# The Google Vision key the fake Vision accepts.
API_KEY = "AIzaSyFAKE-test-key-0123456789abcdef"
