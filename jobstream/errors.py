"""The exceptions raised across layers; each is translated at the edge that meets the user."""


class JobstreamError(Exception):
    """Root of every error jobstream raises on purpose."""


class ConfigError(JobstreamError):
    """The configuration is unusable; the message names the key."""


class SourceError(JobstreamError):
    """The Bazhuayu API could not answer after the bounded retries."""


class AuthError(SourceError):
    """The API refused the credentials (Invalid.Grant): retrying soon will not help."""


class BrokerUnavailable(JobstreamError):
    """Kafka cannot be reached (or a topic is not there yet) for something that must wait on it:
    the web edge answers 503 with the message."""


class DateParseError(JobstreamError, ValueError):
    """A date field has a value no known format matches."""
