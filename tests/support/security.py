"""What the security tests' mesh is configured with, the way an admin would
(tests/integration/security), and a client identity of its own per test."""

import itertools

VISION_KEY = "AIzaSy-security-secret-Q7w2Xk9pL4"
USER_TOKEN = "security-user-token-3b9d"
SEED_ITEMS = 4
AUDIENCE = "photosearch-security"
_clients = itertools.count(1)


def new_client() -> dict[str, str]:
    """Headers that make the next requests come from a client of their own."""
    n = next(_clients)
    return {"X-Forwarded-For": f"198.18.{n // 250}.{n % 250 + 1}"}
