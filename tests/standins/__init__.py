"""Local stand-ins for external services: real HTTP on 127.0.0.1, the provider's wire format, in memory."""
