"""The one way a request is refused: an HTTP status and one line a user can act on (``{"error": "..."}``)."""


class Rejected(Exception):
    """A request the server refuses, with its HTTP status (4xx: the client's to fix, 503: try later)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
