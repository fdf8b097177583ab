"""Domain errors. Raised anywhere; mapped once to gRPC codes (interceptors)
and once more to HTTP codes (gateway)."""


class DomainError(Exception):
    """Base class: the message is shown to the caller, so it must be actionable."""


class InvalidArgument(DomainError):
    pass


class NotFound(DomainError):
    pass


class AlreadyExists(DomainError):
    pass


class FailedPrecondition(DomainError):
    pass


class PermissionDenied(DomainError):
    pass


class Unauthenticated(DomainError):
    pass


class ResourceExhausted(DomainError):
    pass


class Unavailable(DomainError):
    """A dependency is down; retrying later may succeed."""


class DeadlineExceeded(DomainError):
    pass
