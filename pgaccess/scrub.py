"""Connection strings and error messages without their secrets."""

import psycopg
from psycopg.conninfo import conninfo_to_dict

from .targets import configured_targets


def conninfo_describe(conninfo: str) -> str:
    """user@host:port/dbname of a connection string: enough to find it, no password."""
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:
        return "unparseable connection string"
    user = f"{params['user']}@" if params.get("user") else ""
    port = f":{params['port']}" if params.get("port") else ""
    return f"{user}{params.get('host', 'localhost')}{port}/{params.get('dbname', '')}"


def secrets_scrub(text: str) -> str:
    """`text` with every configured target's password replaced by ***."""
    for conninfo in configured_targets().values():
        try:
            password = conninfo_to_dict(conninfo).get("password")
        except psycopg.ProgrammingError:
            continue
        if password:
            text = text.replace(str(password), "***")
    return text
