"""ivr-agent: runs an Asterisk call-center hotline by its staff handbook."""

__version__ = "0.1.0"
