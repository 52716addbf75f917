"""A one-command local Prefect stack: server on loopback, work pools, deployments and workers.

``faerec serve`` starts ``prefect server start`` on 127.0.0.1, creates the process work pools (``faerec-process``
for the pipeline and ``gpu`` for training), runs ``prefect --no-prompt deploy --all`` from the project root and
starts a worker, so that ``prefect deployment run faerec/full-pipeline`` works right after. ``faerec stop``
stops the workers and then the server. Each process runs in its own session (process group), so a stop also
ends the flow-run processes a worker started; the pids live in ``.prefect/stack/state.json``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

from faerec.errors import FaerecError
from faerec.io import write_json
from flows import processes

PIPELINE_POOL = "faerec-process"
GPU_POOL = "gpu"
PROJECT_DIR_ENV = "FAEREC_PROJECT_DIR"  # prefect.yaml's pull step changes into this folder


def project_root() -> Path:
    """The folder holding prefect.yaml: $FAEREC_PROJECT_DIR, else the checkout this package lives in."""
    if os.environ.get(PROJECT_DIR_ENV):
        return Path(os.environ[PROJECT_DIR_ENV]).resolve()
    return Path(__file__).resolve().parent.parent


@dataclass
class StackConfig:
    host: str = "127.0.0.1"
    port: int = 4200
    pools: tuple[str, ...] = (PIPELINE_POOL, GPU_POOL)
    workers: tuple[str, ...] = (PIPELINE_POOL,)  # pools that get a local worker
    deploy: bool = True
    set_profile: bool = True  # write PREFECT_API_URL into the active Prefect profile (restored on stop)
    project_dir: Path = field(default_factory=project_root)
    state_dir: Path | None = None  # default: <project>/.prefect/stack
    start_timeout: float = 120.0

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}/api"

    @property
    def stack_dir(self) -> Path:
        return Path(self.state_dir) if self.state_dir else self.project_dir / ".prefect" / "stack"


@dataclass
class StackState:
    api_url: str
    server_pid: int
    worker_pids: dict[str, int] = field(default_factory=dict)
    previous_api_url: str | None = None
    profile_set: bool = False

    @classmethod
    def load(cls, stack_dir: Path) -> StackState | None:
        path = stack_dir / "state.json"
        if not path.exists():
            return None
        try:
            return cls(**json.loads(path.read_text()))
        except (json.JSONDecodeError, TypeError) as exc:
            raise FaerecError(f"unreadable stack state ({exc}); delete it after stopping the processes by hand",
                              path=path) from None

    def save(self, stack_dir: Path) -> None:
        write_json(stack_dir / "state.json", asdict(self))


def up(config: StackConfig) -> dict:
    """Start (or complete) the stack; returns a summary with the UI address and the pids."""
    stack_dir = config.stack_dir
    stack_dir.mkdir(parents=True, exist_ok=True)
    state = StackState.load(stack_dir)
    if state is not None and not (processes.alive(state.server_pid) and healthy(state.api_url)):
        down(config)  # stale: a crashed or killed stack; clean it up and start over
        state = None
    started = time.perf_counter()
    try:
        if state is None:
            if processes.port_in_use(config.host, config.port):
                raise FaerecError(f"port {config.port} on {config.host} is already in use; "
                                  "choose another with --port")
            state = StackState(api_url=config.api_url, server_pid=_start_server(config))
            state.save(stack_dir)
            wait_healthy(config.api_url, config.start_timeout, state.server_pid, stack_dir / "server.log")
        env = stack_env(config, state.api_url)
        create_pools(config.pools, state.api_url)
        for pool in config.workers:  # workers start in the background while deploy runs
            if not processes.alive(state.worker_pids.get(pool, -1)):
                state.worker_pids[pool] = processes.spawn(
                    [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool, "--type", "process",
                     "--name", f"faerec-{pool}"],
                    env, stack_dir / f"worker-{pool}.log", config.project_dir)
                state.save(stack_dir)
        if config.deploy:
            deploy(config.project_dir, env, stack_dir / "deploy.log")
        if config.set_profile and not state.profile_set:
            state.previous_api_url = _profile_value("PREFECT_API_URL", env)
            _prefect(["config", "set", f"PREFECT_API_URL={state.api_url}"], env)
            state.profile_set = True
            state.save(stack_dir)
    except BaseException:
        down(config)
        raise
    return {
        "api_url": state.api_url,
        "ui": state.api_url.removesuffix("/api"),
        "server_pid": state.server_pid,
        "workers": state.worker_pids,
        "profile_api_url_set": state.profile_set,
        "logs": str(stack_dir),
        "seconds": round(time.perf_counter() - started, 1),
    }


def down(config: StackConfig, timeout: float = 20.0) -> dict:
    """Stop the workers (two SIGTERMs: a Prefect worker exits on the second), then the server."""
    stack_dir = config.stack_dir
    state = StackState.load(stack_dir)
    if state is None:
        return {"stopped": [], "running": False}
    stopped = []
    for pool, pid in state.worker_pids.items():
        if processes.stop_group(pid, timeout, signals=(signal.SIGTERM, signal.SIGTERM)):
            stopped.append(f"worker:{pool}:{pid}")
    if state.profile_set:
        env = stack_env(config, state.api_url)
        if state.previous_api_url:
            _prefect(["config", "set", f"PREFECT_API_URL={state.previous_api_url}"], env, check=False)
        else:
            _prefect(["config", "unset", "PREFECT_API_URL", "-y"], env, check=False)
    if processes.stop_group(state.server_pid, timeout, signals=(signal.SIGTERM,)):
        stopped.append(f"server:{state.server_pid}")
    (stack_dir / "state.json").unlink(missing_ok=True)
    return {"stopped": stopped, "running": False}


def stack_env(config: StackConfig, api_url: str) -> dict[str, str]:
    """Environment for the CLI calls and workers: pointed at this server, no analytics, fast pick-up."""
    env = dict(os.environ)
    env["PREFECT_API_URL"] = api_url
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    env.setdefault("PREFECT_WORKER_QUERY_SECONDS", "2")
    env[PROJECT_DIR_ENV] = str(config.project_dir)
    # flow-run processes import faerec and flows from this checkout, installed or not
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(config.project_dir), env.get("PYTHONPATH")) if p)
    return env


def healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def wait_healthy(api_url: str, timeout: float, pid: int | None = None, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if healthy(api_url):
            return
        if pid is not None and not processes.alive(pid):
            raise FaerecError(f"the Prefect server exited during start-up:\n{_tail(log)}", path=log)
        time.sleep(0.5)
    raise FaerecError(f"the Prefect server did not answer at {api_url} within {timeout:.0f} s", path=log)


def create_pools(pools: tuple[str, ...], api_url: str) -> list[str]:
    """Create the process work pools that do not exist yet, through the REST API; returns the new ones."""
    from prefect.workers.process import ProcessWorker

    created = []
    for pool in pools:
        try:
            _request(api_url, f"work_pools/{pool}")
            continue
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                raise
        _request(api_url, "work_pools/", {"name": pool, "type": ProcessWorker.type,
                                          "base_job_template": ProcessWorker.get_default_base_job_template()})
        created.append(pool)
    return created


def _request(api_url: str, path: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{api_url}/{path}", data=data, method="POST" if body is not None else "GET",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


def deploy(project_dir: Path, env: dict[str, str], log: Path) -> None:
    """``prefect --no-prompt deploy --all`` from the project root (prefect.yaml), logged to ``log``."""
    # The pull step in prefect.yaml reads FAEREC_PROJECT_DIR when a flow run starts; leaving it out of the
    # deploy environment keeps the placeholder unresolved, so no absolute folder is stored in the deployment.
    deploy_env = {k: v for k, v in env.items() if k != PROJECT_DIR_ENV}
    result = _prefect(["--no-prompt", "deploy", "--all"], deploy_env, cwd=project_dir, check=False)
    log.write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise FaerecError(f"prefect deploy failed:\n{_tail(log)}", path=log)


def _start_server(config: StackConfig) -> int:
    env = stack_env(config, config.api_url)
    env.pop("PREFECT_API_URL")  # the server itself must not look for another API
    # The UI asks the API at PREFECT_UI_API_URL, which otherwise defaults to port 4200 whatever --port says.
    env.update(PREFECT_SERVER_API_HOST=config.host, PREFECT_SERVER_API_PORT=str(config.port),
               PREFECT_UI_API_URL=config.api_url)
    return processes.spawn([sys.executable, "-m", "prefect", "server", "start", "--host", config.host, "--port",
                   str(config.port), "--analytics-off"], env, config.stack_dir / "server.log", config.project_dir)


def _prefect(args: list[str], env: dict[str, str], cwd: Path | None = None,
             check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "prefect", *args], env=env, cwd=cwd, capture_output=True,
                            text=True, timeout=300)
    if check and result.returncode != 0:
        raise FaerecError(f"`prefect {' '.join(args)}` failed: {(result.stderr or result.stdout).strip()[-2000:]}")
    return result


def _profile_value(name: str, env: dict[str, str]) -> str | None:
    """The value of a setting stored in the active profile (not from the environment)."""
    clean = {k: v for k, v in env.items() if k != name}
    out = _prefect(["config", "view", "--hide-defaults", "--hide-sources"], clean, check=False).stdout
    for line in out.splitlines():
        if line.startswith(f"{name}="):
            return line.split("=", 1)[1].strip().strip("'\"")
    return None


def _tail(log: Path | None, lines: int = 20) -> str:
    if log is None or not log.exists():
        return ""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
