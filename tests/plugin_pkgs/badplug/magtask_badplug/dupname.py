from magtask import HeadSpec, hookimpl


@hookimpl
def register_heads(register):
    register(HeadSpec(name="toy-impostor", task="toy-task", aliases=("toy",), build=dict))
