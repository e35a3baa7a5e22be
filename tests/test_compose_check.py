"""scripts/check_compose.py on the job queues: the real compose file passes; workers that leave a queue
unserved, or give the message path no worker of its own, are reported."""
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from check_compose import check  # noqa: E402


def problems_with(tmp_path, change) -> list[str]:
    document = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    change(document["services"])
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(document))
    (tmp_path / "Dockerfile").write_text((ROOT / "Dockerfile").read_text())
    return check(path)[0]


def test_the_compose_file_runs_a_worker_per_queue(tmp_path):
    assert problems_with(tmp_path, lambda services: None) == []


def test_one_worker_for_both_queues_leaves_the_bot_behind_outside_work(tmp_path):
    def one_worker(services):
        del services["worker-externos"]
        services["worker-mensajes"]["command"] = ["flask", "--app", "app", "worker"]
    assert any("needs a worker of its own" in problem for problem in problems_with(tmp_path, one_worker))


def test_a_queue_without_a_worker_is_reported(tmp_path):
    problems = problems_with(tmp_path, lambda services: services.pop("worker-externos"))
    assert any("no worker serves the queue 'externos'" in problem for problem in problems)
