"""Shared pieces of the benchmarks: tools, a server under test, wrk runs and their parsing."""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
VENV_BIN = Path(sys.executable).parent


def ensure_tool(binary: str, package: str) -> str:
    """Path of BINARY, installing the Debian PACKAGE that provides it when missing."""
    found = shutil.which(binary)
    if found:
        return found
    print(f"installing {package} for the benchmark (apt-get)…", file=sys.stderr)
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", package], check=True, stdout=subprocess.DEVNULL)
    found = shutil.which(binary)
    if not found:
        sys.exit(f"{binary} is still missing after installing {package}")
    return found


def machine() -> dict:
    """The facts a reader needs to weigh the figures."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "mem_gib": round(mem_gib, 1),
        "python": platform.python_version(),
    }


@contextmanager
def server(database_url: str, port: int, workers: int = 1, env: dict[str, str] | None = None):
    """`gridrisk serve` as a subprocess (the real thing, as deployed), stopped on exit; ENV adds
    settings (e.g. GRIDRISK_REPLICA_URLS)."""
    env = {
        **os.environ,
        "GRIDRISK_DATABASE_URL": database_url,
        "GRIDRISK_LOG_LEVEL": "warning",
        **(env or {}),
    }
    cmd = [str(VENV_BIN / "gridrisk"), "serve", "--port", str(port), "--workers", str(workers)]
    # The log goes to a file: a pipe nobody reads would fill up in a long run and stall the server.
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None:
                log.seek(0)
                sys.exit(f"the server exited: {log.read().decode()[-2000:]}")
            time.sleep(0.2)
        else:
            sys.exit("the server did not become healthy within 60 s")
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if not m:
        raise ValueError(f"unparsable latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def wrk(
    url: str, *, connections: int = 8, threads: int = 2, seconds: int = 15, script: Path | None = None
) -> dict:
    """Run wrk against URL and return requests/s, p50/p90/p99 (ms) and error counts."""
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "5s"]
    if script:
        cmd += ["-s", str(script)]
    out = subprocess.run([*cmd, url], check=True, capture_output=True, text=True).stdout
    result = {"url": url, "connections": connections, "seconds": seconds}
    result["rps"] = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    for pct in ("50", "90", "99"):
        result[f"p{pct}_ms"] = _ms(re.search(rf"^\s+{pct}(?:\.000)?%\s+(\S+)", out, re.M).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    result["non_2xx"] = int(non2xx.group(1)) if non2xx else 0
    errors = re.search(r"Socket errors:.*", out)
    result["socket_errors"] = errors.group(0) if errors else ""
    result["requests"] = int(re.search(r"(\d+) requests in", out).group(1))
    return result


def interleaved(
    targets: dict[str, dict], *, rounds: int, seconds: int, connections: int = 8
) -> dict[str, dict]:
    """wrk on each target in turn, ROUNDS times, SECONDS each: a ratio between targets then sees the
    same shared, noisy machine (one long run after another does not). TARGETS: name → wrk keywords
    (url, script). Requests and errors add up; rps is their total over the total time; the latency
    percentiles are the median of the rounds'."""
    runs: dict[str, list[dict]] = {name: [] for name in targets}
    for _ in range(rounds):
        for name, target in targets.items():
            run = wrk(target["url"], connections=connections, seconds=seconds, script=target.get("script"))
            runs[name].append(run)
    out = {}
    for name, results in runs.items():
        requests = sum(r["requests"] for r in results)
        out[name] = {
            "url": results[0]["url"],
            "connections": connections,
            "seconds": seconds * rounds,
            "rounds": rounds,
            "requests": requests,
            "rps": round(requests / (seconds * rounds), 2),
            **{f"p{p}_ms": statistics.median(r[f"p{p}_ms"] for r in results) for p in ("50", "90", "99")},
            "non_2xx": sum(r["non_2xx"] for r in results),
            "rps_by_round": [r["rps"] for r in results],
        }
    return out


def loop_script(paths: list[str], path: Path) -> Path:
    """A wrk script requesting PATHS in turn, wrapping around (each thread from its own offset)."""
    path.write_text(
        "local paths = {" + ",".join(json.dumps(p) for p in paths) + "}\n"
        "local i = 0\n"
        "function setup(thread) thread:set('offset', math.random(1, #paths)) end\n"
        "function init(args) i = offset or 1 end\n"
        "function request()\n"
        "  i = i % #paths + 1\n"
        "  return wrk.format('GET', paths[i])\n"
        "end\n"
    )
    return path


def save(name: str, data: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False))
    return path
