"""libaesql from Python: autoencoders trained and scored inside SQLite.

    import sqlite3, aesql
    con = sqlite3.connect('mnist.db')
    con.enable_load_extension(True)
    aesql.load(con)
    con.enable_load_extension(False)
    con.execute("SELECT ae_info()").fetchone()

load(con) loads the extension into one connection (as sqlite_vec.load does;
extension loading must be enabled on it); loadable_path() is the extension's
path without its suffix, as SQLite's load_extension and the sqlite3 shell's
.load take it. The SQL functions are described in libaesql's README.md.
"""
import os
from importlib import metadata

try:
    __version__ = metadata.version(__name__)  # include/aesql.h's AESQL_VERSION
except metadata.PackageNotFoundError:        # used from a source tree, not installed
    __version__ = None
__all__ = ['load', 'loadable_path', '__version__']


def loadable_path():
    """The path of the bundled libaesql.so, without the '.so'."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), 'libaesql')


def load(conn):
    """Loads libaesql into conn, a sqlite3.Connection with extension loading
    enabled (conn.enable_load_extension(True))."""
    if not hasattr(conn, 'load_extension'):
        raise RuntimeError("aesql.load: this Python's sqlite3 module was built without "
                           "extension loading; use a Python whose sqlite3 has "
                           "enable_load_extension (Debian's /usr/bin/python3 has)")
    try:
        conn.load_extension(loadable_path())
    except Exception as e:
        if 'not authorized' in str(e):
            raise type(e)("aesql.load: extension loading is off for this connection; "
                          "call conn.enable_load_extension(True) first") from e
        raise
