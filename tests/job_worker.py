"""`flask --app app worker` for the tests' RQ workers: the real command, in a process that has also
registered the tests' own tasks (tests.job_tasks).

    python -m tests.job_worker [--queues mensajes,externos]
"""
import sys

from flask.cli import main

import tests.job_tasks  # noqa: F401 (registers the test tasks)

if __name__ == "__main__":
    sys.argv = ["flask", "--app", "app", "worker", *sys.argv[1:]]
    main()
