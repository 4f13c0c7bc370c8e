"""The TLS settings of the app's outgoing HTTP clients, built once per process.

``httpx.AsyncClient()`` builds a fresh ``ssl.SSLContext`` every time it is created, and
building one loads the whole CA bundle (certifi's, about 150 certificates): tens of
milliseconds with OpenSSL 3. The app creates its client in the lifespan, and a test suite
enters the lifespan once per test, so that cost was paid by every test. One context per
process is enough: an ``SSLContext`` is only read once built, and httpx accepts it as
``verify=``.

It is built the way httpx builds its default (``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` honoured,
else certifi's bundle), but only once: changing those variables later in the same process
has no effect until ``tls_context.cache_clear()``.
"""

import functools
import ssl

import httpx


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The shared context for every outgoing client of this process (do not modify it)."""
    return httpx.create_ssl_context()
