"""A well-behaved third-party plugin, used by tests/test_registry.py."""

from magtask import HeadSpec, TaskSpec, hookimpl


@hookimpl
def register_heads(register):
    register(HeadSpec(name="toy-head", task="toy-task", aliases=("toy",), build=dict,
                      description="A head that exists to be listed"))


@hookimpl
def register_tasks(register):
    register(TaskSpec(name="toy-task", run=lambda ctx: {}, description="A task that exists to be listed"))


@hookimpl
def register_commands(app):
    @app.command("toy-hello")
    def toy_hello():
        """Say hello from a plugin."""
        print("hello from goodplug")
