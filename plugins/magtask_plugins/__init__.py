"""magtask's built-in plugins, registered through the `magtask` entry-point group exactly as a
third-party package registers its own (see pyproject.toml): `tasks` (classify, generate, predict:
what is scored and how), `heads` (the models each task trains, one subpackage per task) and `blocks`
(building blocks several heads share; a block never imports from a head or a task)."""
