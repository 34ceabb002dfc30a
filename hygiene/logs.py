"""Log lines never carry the Secoda token: every line (tracebacks included) goes through the same
redaction as stored errors."""
import logging


class RedactingFormatter(logging.Formatter):
    def format(self, record):
        from catalog_sync.client import redact

        return redact(super().format(record))
