"""Lesson 15's exercise: versions of the app that build TLS contexts again (the test must catch both)."""

import ssl
from unittest.mock import patch

import httpx

from course.exercise import Mutant


def _fresh_context_per_client():
    # what httpx.AsyncClient() does without verify=: the app before the fix
    return patch("app.main.tls_context", httpx.create_ssl_context)


def _uncached_tls_context():
    return patch("app.main.tls_context", lambda: ssl.create_default_context())


MUTANTS = [
    Mutant("the lifespan builds a fresh TLS context for every client (the app before the fix)", _fresh_context_per_client),
    Mutant("tls_context() builds a new context on every call (its cache removed)", _uncached_tls_context),
]
