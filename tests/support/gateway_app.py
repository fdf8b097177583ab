"""What the gateway app of tests/unit/gateway (in the test's loop, against the fakes)
is set up with."""

ADMIN_TOKEN = "admin-secret-token-123"
CONTRIBUTOR_TOKEN = "contributor-secret-token-456"
