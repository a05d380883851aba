from magtask import HeadSpec, hookimpl


@hookimpl
def register_heads(register):
    register(HeadSpec(name="no-build", task="toy-task", build=None))
