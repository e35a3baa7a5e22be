#!/usr/bin/env python3
"""Validate docker-compose.yml without Docker.

    .venv/bin/python scripts/check_compose.py [docker-compose.yml]

Checks the structure the deployment relies on: services web, mysql and redis exist; every
service has an image or a build (with its Dockerfile); every depends_on target exists, with a valid
condition (service_healthy needs a healthcheck on the target); web publishes a port; the workers
(services running `flask --app app worker`) serve every job queue between them (`--queues`, default all),
and the message path (`mensajes`) has a worker that serves nothing else, so slow outside work never holds
up the bot; web and the workers get DATABASE_URL (mysql+pymysql:// to a compose service), REDIS_URL,
JOBS_BACKEND=rq and a required SECRET_KEY (${SECRET_KEY:?...}); migrations run in a one-shot service that
web and the workers wait for (service_completed_successfully); named volumes are declared; ${...}
interpolations are well formed; the web's gunicorn (the Dockerfile's CMD) runs an async worker class, so
open live-update streams hold no thread.
When a working `docker compose` is on PATH, `docker compose config` is run as well.

Prints every problem found and exits 1, or prints one OK line and exits 0.
"""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

from web_command import ASYNC_WORKERS, gunicorn_command, option

try:
    import yaml
except ImportError:  # pragma: no cover - depends on the environment
    sys.exit("check_compose: PyYAML is not installed (pip install PyYAML)")

REQUIRED_SERVICES = ("web", "mysql", "redis")
MESSAGES, QUEUES = "mensajes", ("mensajes", "externos")  # services.jobs.MESSAGES, QUEUES
CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")
NAME = r"[A-Za-z_][A-Za-z0-9_]*"
BRACED = re.compile(r"\$\{(" + NAME + r")(?:(:?[-?+])([^}]*))?\}")
BARE = re.compile(r"\$" + NAME)


class Problems(list):
    def add(self, where: str, message: str) -> None:
        self.append(f"{where}: {message}")


def as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def command_text(value) -> str:
    if isinstance(value, list):
        return " ".join(str(part) for part in value)
    return str(value or "")


def environment(service: dict) -> dict:
    """A service's environment as a dict, from the mapping or the list form."""
    env = service.get("environment") or {}
    if isinstance(env, dict):
        return {str(k): "" if v is None else str(v) for k, v in env.items()}
    result = {}
    for item in env:
        key, _, value = str(item).partition("=")
        result[key] = value
    return result


def dependencies(service: dict) -> dict:
    """depends_on as {target: condition}, from the list or the mapping form."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {str(name): "service_started" for name in deps}
    if isinstance(deps, dict):
        return {str(name): (spec or {}).get("condition", "service_started") if isinstance(spec, dict)
                else "service_started" for name, spec in deps.items()}
    return {}


def strings(node, path="$"):
    """Every string in the document with its path, for the interpolation check."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from strings(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from strings(value, f"{path}[{index}]")
    elif isinstance(node, str):
        yield path, node


def check_interpolation(value: str) -> str | None:
    """None when every `$` in value is a valid compose interpolation or the `$$` escape."""
    i = 0
    while i < len(value):
        if value[i] != "$":
            i += 1
            continue
        if value.startswith("$$", i):
            i += 2
            continue
        match = BRACED.match(value, i) or BARE.match(value, i)
        if not match:
            return f"malformed interpolation at {value[i:i + 30]!r} (write $$ for a literal $)"
        i = match.end()
    return None


def resolve_defaults(value: str) -> str:
    """The value with ${X:-default} replaced by its default and other variables by a placeholder."""
    def replace(match):
        operator, argument = match.group(2), match.group(3)
        if operator in (":-", "-"):
            return argument
        return "x"
    return BRACED.sub(replace, value)


def worker_queues(service: dict) -> list[str] | None:
    """The queues a service's `flask --app app worker [--queues a,b]` serves, or None when it runs no worker."""
    command = service.get("command")
    words = [str(word) for word in command] if isinstance(command, list) else str(command or "").split()
    if "worker" not in words or "flask" not in words:
        return None
    queues = ",".join(QUEUES)
    for index, word in enumerate(words):
        if word == "--queues" and index + 1 < len(words):
            queues = words[index + 1]
        elif word.startswith("--queues="):
            queues = word.split("=", 1)[1]
    return [queue.strip() for queue in queues.split(",") if queue.strip()]


def check_build(name: str, service: dict, base: Path, problems: Problems) -> None:
    build = service.get("build")
    if build is None:
        return
    if isinstance(build, str):
        context, dockerfile = build, "Dockerfile"
    elif isinstance(build, dict):
        context, dockerfile = build.get("context", "."), build.get("dockerfile", "Dockerfile")
    else:
        problems.add(name, "build must be a path or a mapping")
        return
    if "://" in str(context):
        return
    path = (base / context / dockerfile).resolve()
    if not path.is_file():
        problems.add(name, f"build needs {path}, which does not exist")


def dockerfile_port(base: Path) -> int | None:
    dockerfile = base / "Dockerfile"
    if not dockerfile.is_file():
        return None
    match = re.search(r"-b\s+[\d.]+:(\d+)", dockerfile.read_text(encoding="utf-8"))
    return int(match.group(1)) if match else None


def container_port(entry) -> int | None:
    """The container side of a ports entry ("8000", "8000:8000", "127.0.0.1:80:8000/tcp" or long form)."""
    if isinstance(entry, dict):
        target = entry.get("target")
        return int(target) if str(target).isdigit() else None
    text = resolve_defaults(str(entry)).split("/")[0]
    last = text.rsplit(":", 1)[-1]
    return int(last) if last.isdigit() else None


def check(path: Path) -> tuple[Problems, dict]:
    problems = Problems()
    where = path.name
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        problems.add(where, "file not found")
        return problems, {}
    except yaml.YAMLError as error:
        problems.add(where, f"not valid YAML: {error}")
        return problems, {}
    if not isinstance(document, dict):
        problems.add(where, "the top level must be a mapping")
        return problems, {}
    services = document.get("services")
    if not isinstance(services, dict) or not services:
        problems.add(where, "no services defined")
        return problems, {}
    base = path.resolve().parent

    for node_path, value in strings(document):
        error = check_interpolation(value)
        if error:
            problems.add(node_path, error)

    for name in REQUIRED_SERVICES:
        if name not in services:
            problems.add(where, f"service {name!r} is missing")

    declared_volumes = set((document.get("volumes") or {}).keys())
    for name, service in services.items():
        if not isinstance(service, dict):
            problems.add(name, "service definition must be a mapping")
            continue
        if not service.get("image") and not service.get("build"):
            problems.add(name, "needs an image or a build")
        check_build(name, service, base, problems)
        for target, condition in dependencies(service).items():
            if target not in services:
                problems.add(name, f"depends_on {target!r}, which is not a service")
                continue
            if condition not in CONDITIONS:
                problems.add(name, f"depends_on {target!r} with unknown condition {condition!r}")
            if condition == "service_healthy" and not (services[target] or {}).get("healthcheck"):
                problems.add(name, f"waits for {target!r} to be healthy, but {target!r} has no healthcheck")
        for volume in as_list(service.get("volumes")):
            if isinstance(volume, dict):
                source = volume.get("source") if volume.get("type", "volume") == "volume" else None
            else:
                parts = str(volume).split(":")
                source = parts[0] if len(parts) > 1 else None  # "/path" alone is an anonymous volume
            if source and not source.startswith((".", "/", "~", "$")) and source not in declared_volumes:
                problems.add(name, f"uses volume {source!r}, not declared under top-level volumes")

    # Dependency cycles would keep `docker compose up` from starting anything.
    cycles = set()

    def visit(name, trail):
        if name in trail:
            cycle = trail[trail.index(name):]
            start = cycle.index(min(cycle))
            cycles.add(tuple(cycle[start:] + cycle[:start]))
            return
        for target in dependencies(services.get(name) or {}):
            if target in services:
                visit(target, trail + [name])
    for name in services:
        visit(name, [])
    for cycle in sorted(cycles):
        problems.add(cycle[0], "depends_on cycle: " + " -> ".join(cycle + (cycle[0],)))

    web = services.get("web") or {}
    ports = as_list(web.get("ports"))
    if "web" in services and not ports:
        problems.add("web", "publishes no port (ports:)")
    expected = dockerfile_port(base) if web.get("build") and not web.get("command") else None
    if ports and expected and expected not in {container_port(p) for p in ports}:
        problems.add("web", f"publishes {ports}, but gunicorn listens on {expected} (Dockerfile)")
    if web.get("build") and not web.get("command"):
        try:
            worker_class = option(gunicorn_command(base / "Dockerfile"), "-k", "--worker-class") or "sync"
        except (OSError, ValueError) as error:
            problems.add("web", str(error))
        else:
            if worker_class not in ASYNC_WORKERS:
                problems.add("web", f"gunicorn runs {worker_class} workers: each open /eventos stream would hold one of "
                                    f"their threads ({', '.join(ASYNC_WORKERS)} does not; see the README)")

    workers = {name: worker_queues(service) for name, service in services.items()
               if isinstance(service, dict) and worker_queues(service) is not None}
    if not workers:
        problems.add(where, "no service runs `flask --app app worker`")
    for name, queues in workers.items():
        for queue in sorted(set(queues) - set(QUEUES)):
            problems.add(name, f"serves queue {queue!r}, which is not one of {', '.join(QUEUES)}")
    served = {queue for queues in workers.values() for queue in queues}
    for queue in QUEUES:
        if workers and queue not in served:
            problems.add(where, f"no worker serves the queue {queue!r} (flask --app app worker --queues ...)")
    if workers and not any(queues == [MESSAGES] for queues in workers.values()):
        problems.add(where, f"the queue {MESSAGES!r} needs a worker of its own (--queues {MESSAGES}): a worker that "
                            "also serves outside work can be held up by a slow outside service")

    for name in ["web", *workers]:
        service = services.get(name)
        if not isinstance(service, dict):
            continue
        env = environment(service)
        deps = dependencies(service)
        for key in ("DATABASE_URL", "REDIS_URL", "JOBS_BACKEND", "SECRET_KEY"):
            if not env.get(key):
                problems.add(name, f"environment {key} is missing")
        database_url = resolve_defaults(env.get("DATABASE_URL", ""))
        if database_url and not database_url.startswith("mysql+pymysql://"):
            problems.add(name, f"DATABASE_URL must start with mysql+pymysql://, not {database_url[:40]!r}")
        for key in ("DATABASE_URL", "REDIS_URL"):
            url = resolve_defaults(env.get(key, ""))
            host = urlsplit(url).hostname if "://" in url else None
            if url and host not in services:
                problems.add(name, f"{key} points at host {host!r}, which is not a service")
            elif url and host not in deps:
                problems.add(name, f"{key} points at {host!r}, but {name} does not depend on it")
        redis_url = env.get("REDIS_URL", "")
        if redis_url and not resolve_defaults(redis_url).startswith(("redis://", "rediss://")):
            problems.add(name, "REDIS_URL must start with redis:// or rediss://")
        if env.get("JOBS_BACKEND") and env["JOBS_BACKEND"] != "rq":
            problems.add(name, f"JOBS_BACKEND must be rq, not {env['JOBS_BACKEND']!r}")
        if env.get("SECRET_KEY") and not env["SECRET_KEY"].startswith("${SECRET_KEY:?"):
            problems.add(name, "SECRET_KEY must be required from the environment: ${SECRET_KEY:?message}")
        migrators = [target for target, condition in deps.items()
                     if condition == "service_completed_successfully"
                     and "db upgrade" in command_text((services.get(target) or {}).get("command"))]
        if not migrators:
            problems.add(name, "must depend on a one-shot service running `flask --app app db upgrade` "
                               "with condition: service_completed_successfully")

    mysql = services.get("mysql")
    if isinstance(mysql, dict):
        if mysql.get("image") and not str(mysql["image"]).startswith(("mariadb", "mysql")):
            problems.add("mysql", f"image should be mariadb or mysql, not {mysql.get('image')!r}")
        if not mysql.get("healthcheck"):
            problems.add("mysql", "needs a healthcheck")
    redis = services.get("redis")
    if isinstance(redis, dict) and redis.get("image") and not str(redis["image"]).startswith("redis"):
        problems.add("redis", f"image should be redis, not {redis.get('image')!r}")
    return problems, services


def docker_compose_config(path: Path) -> str | None:
    """Run `docker compose config -q` when Docker is available; the error text, or None."""
    if not shutil.which("docker"):
        return None
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0:
        return None
    env = {**os.environ, "SECRET_KEY": os.environ.get("SECRET_KEY") or "check-compose-placeholder"}
    result = subprocess.run(["docker", "compose", "-f", str(path), "config", "-q"], capture_output=True,
                            text=True, env=env)
    return None if result.returncode == 0 else (result.stderr or result.stdout).strip()


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    root = Path(__file__).resolve().parents[1]
    path = Path(argv[0]) if argv else root / "docker-compose.yml"
    problems, services = check(path)
    if not problems:
        error = docker_compose_config(path)
        if error:
            problems.add(path.name, f"docker compose config failed: {error}")
    if problems:
        print(f"{path}: {len(problems)} problem(s)", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    print(f"{path}: OK ({len(services)} services: {', '.join(services)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
