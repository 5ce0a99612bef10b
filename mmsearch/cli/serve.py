"""``mmsearch serve``: the HTTP API and the web page over an index (see :mod:`mmsearch.server`)."""

from __future__ import annotations

import contextlib
import socket
from typing import Any

import click

from mmsearch.cli.options import index_option, open_engine, setting_option
from mmsearch.errors import import_optional
from mmsearch.settings import Settings


@click.command("serve")
@index_option
@setting_option("host", metavar="ADDRESS")
@setting_option("port", metavar="N")
@setting_option("token", metavar="SECRET")
@setting_option("allow_writes", is_flag=True, default=None)
@setting_option("max_upload_mb", metavar="MB")
@setting_option("allow_url_fetch", is_flag=True, default=None)
@setting_option("precision")
@click.option("--open", "open_page", is_flag=True, help="Open the page in a web browser.")
def serve_cmd(index: str | None, open_page: bool, **options: Any) -> None:
    """Serve the index: a web page at / and a JSON API at /api (docs at /docs).

    \b
    mmsearch serve --index indexes/photos              # http://127.0.0.1:8765/
    mmsearch serve --host 0.0.0.0 --token "$SECRET"    # other machines, with a token
    mmsearch serve --allow-writes                      # tagging and re-indexing too
    mmsearch serve --open                              # and open the page in a browser

    Serves until Ctrl-C. A --host other than loopback needs --token.
    """
    from mmsearch.server import ServerConfig, create_app

    uvicorn: Any = import_optional("uvicorn", None, "mmsearch serve")
    server_settings = {k: options.pop(k) for k in list(options) if k != "precision"}
    config = ServerConfig.from_settings(Settings.resolve(**server_settings))
    config.check()
    with open_engine(index, precision=options["precision"]) as engine:
        _ = engine.embedder  # load the model now, not on the first request
        app = create_app(engine, config)
        sock = _bind(config.host, config.port)
        host, port = sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        url = f"http://{shown}:{port}/"
        click.echo(f"mmsearch: serving {engine.folder} at {url} (Ctrl-C stops)")
        if open_page:
            import webbrowser

            webbrowser.open(url + (f"?token={config.token}" if config.token else ""))
        server = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        )
        # uvicorn re-raises Ctrl-C once it has shut down cleanly: that is the normal end
        with contextlib.suppress(KeyboardInterrupt):
            server.run(sockets=[sock])
    click.echo("mmsearch: stopped")


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket, so the URL printed is the one served (also for --port 0)."""
    from mmsearch.errors import ConfigError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY only on sockets that say
    # they are TCP, and without it every keep-alive response waits on Nagle and the client's
    # delayed ACK (measured in docs/benchmarks.md, section "Server")
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"can't listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock
