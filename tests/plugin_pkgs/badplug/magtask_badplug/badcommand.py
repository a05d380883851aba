from magtask import hookimpl


@hookimpl
def register_commands(app):
    raise ValueError("cannot add my command")
