"""lm-evaluation-harness tasks inside owb (`--tasks lmeval:NAME`): `task` is the Task, `load` finds and loads lm-eval
tasks, `scorer` scores through lm-eval's filters and metrics. lm-eval itself is imported only when such a task is
asked for (the `lmeval` extra)."""

PREFIX = "lmeval:"
