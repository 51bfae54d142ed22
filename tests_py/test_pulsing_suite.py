"""Pulsing's own queue test suite with persisting as the default backend.

The suite is ``tests/python/streaming`` of Pulsing at its 0.1.2 release, vendored
unchanged in ``pulsing_suite/`` (see its README.md). It runs twice, each time in
a fresh interpreter: with Pulsing's MemoryBackend (the baseline) and with the
name ``"memory"`` registered to :class:`persisting.PersistingBackend`. Every test
that passes on the baseline must pass on persisting, except the tests listed in
:data:`ASSERT_DEFAULT_BACKEND`, which check the default backend's name or class.

A test that does not finish within :data:`PER_TEST_TIMEOUT` fails (pytest-timeout
inside the suite). If a run makes no progress for :data:`STALL_TIMEOUT` (a hang
pytest-timeout cannot interrupt, such as one at interpreter exit), its threads'
stacks are dumped, the process is killed, the running test counts as hung, and
the run resumes after it; on persisting, a stall with no test running (a hang at
interpreter exit, say) fails too.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SUITE = Path(__file__).resolve().parent / "pulsing_suite"

#: Seconds one vendored test may take (its slowest baseline test takes ~30 s).
PER_TEST_TIMEOUT = 90
#: Seconds without a line in a run's report before the run is killed.
STALL_TIMEOUT = PER_TEST_TIMEOUT + 30
#: Seconds both runs may take in all.
RUN_BUDGET = 1200

#: Tests that assert the default backend's name or class: with "memory"
#: registered to PersistingBackend they fail by design. Test id -> reason.
ASSERT_DEFAULT_BACKEND: dict[str, str] = {
    "tests/python/streaming/test_queue.py::test_bucket_storage_direct": (
        'asserts stats["backend"] == "memory" for a BucketStorage opened with '
        'backend="memory"; PersistingBackend reports "persisting"'
    ),
    "tests/python/streaming/test_queue_backends.py::TestBackendRegistration"
    "::test_get_builtin_backend_by_name": (
        'asserts get_backend_class("memory") is MemoryBackend; it is PersistingBackend'
    ),
    "tests/python/streaming/test_queue_backends.py::TestBucketStorageWithBackend"
    "::test_bucket_storage_with_memory_backend": (
        'asserts stats["backend"] == "memory" for a BucketStorage opened with '
        'backend="memory"; PersistingBackend reports "persisting"'
    ),
    "tests/python/streaming/test_queue_backends.py::TestQueueAPIWithBackend"
    "::test_default_backend_is_memory": (
        'asserts a bucket of a queue opened without backend= reports stats["backend"] '
        '== "memory"; PersistingBackend reports "persisting"'
    ),
}

#: sha256 of every vendored file: they stay exactly as Pulsing released them.
VENDORED: dict[str, str] = {
    "LICENSE": "c71d239df91726fc519c6eb72d318ec65820627232b2f796219e87dcf35d0ab4",
    "tests/python/conftest.py": "96c718d9682630386289e816a82761056dcbcda18d50b8ba67b91e4e7fffb07e",
    "tests/python/streaming/__init__.py": (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    ),
    "tests/python/streaming/test_queue.py": (
        "00a671de525a8dee2cd6ffe0ab16007dfcba4d1cb37b039672f2820a3e82c6c6"
    ),
    "tests/python/streaming/test_queue_backends.py": (
        "8fc02c9130f58d58eb58a9bfc7bd5fcacfaca95a494ef887c9d1ddf11ee5256c"
    ),
    "tests/python/streaming/test_queue_topic_chaos.py": (
        "c00148f2cbcbf0a16635e160549d8cdc8c19d9a670931e88f55dc6ed6e24c71c"
    ),
    "tests/python/streaming/test_topic.py": (
        "70d5daedb74a1d4fbfbe91d8356cebf6cab283df68805f7702e19b75b812fc81"
    ),
}


@dataclass
class Outcome:
    outcome: str  # passed, failed, skipped or hung
    message: str = ""
    seconds: float = 0.0


@dataclass
class Run:
    """One backend's run of the suite, possibly over several processes."""

    backend: str
    workdir: Path
    results: dict[str, Outcome] = field(default_factory=dict)
    # Tests started in an earlier process of this run: not run again.
    done: set[str] = field(default_factory=set)
    proc: subprocess.Popen[bytes] | None = None
    attempt: int = 0
    last_progress: float = 0.0
    report_size: int = 0
    seconds: float = 0.0
    log: list[str] = field(default_factory=list)
    # Stacks of stalls with no test running (a hang between tests or at exit).
    stalls: list[str] = field(default_factory=list)

    @property
    def report(self) -> Path:
        return self.workdir / f"report-{self.attempt}.jsonl"

    def start(self) -> None:
        self.attempt += 1
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            "-c",
            str(SUITE / "pytest.ini"),
            "--rootdir",
            str(SUITE),
            "-p",
            "no:cacheprovider",
            "-q",
            "-rN",
            f"--timeout={PER_TEST_TIMEOUT}",
            "--timeout-method=signal",
            f"--basetemp={self.workdir / f'tmp-{self.attempt}'}",
        ]
        for nodeid in sorted(self.done):
            cmd += ["--deselect", nodeid]
        env = dict(os.environ)
        env.update(PULSING_SUITE_BACKEND=self.backend, PULSING_SUITE_REPORT=str(self.report))
        env.pop("PYTEST_ADDOPTS", None)
        out = open(self.workdir / f"output-{self.attempt}.txt", "wb")
        self.proc = subprocess.Popen(
            cmd,
            cwd=SUITE,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()
        self.last_progress = time.monotonic()
        self.report_size = 0

    def events(self) -> list[dict[str, str]]:
        if not self.report.exists():
            return []
        with open(self.report, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.endswith("\n")]

    def collect(self, killed: bool) -> list[str]:
        """Fold this process's report into results; a test started and not torn
        down in a killed process hung. Returns the hung tests."""
        started: list[str] = []
        hung: list[str] = []
        phases: dict[str, list[dict[str, str]]] = {}
        for event in self.events():
            if event["event"] == "start":
                started.append(event["nodeid"])
            else:
                phases.setdefault(event["nodeid"], []).append(event)
        for nodeid in started:
            self.done.add(nodeid)
            reports = phases.get(nodeid, [])
            if killed and not any(r["when"] == "teardown" for r in reports):
                self.results[nodeid] = Outcome("hung", self._stacks(), float(STALL_TIMEOUT))
                hung.append(nodeid)
                continue
            self.results[nodeid] = _outcome(reports)
        return hung

    def _stacks(self) -> str:
        path = Path(str(self.report) + ".stacks")
        text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
        return f"no progress for {STALL_TIMEOUT} s; Python stacks:\n{text}"

    def poll(self) -> bool:
        """Advance the run; True while it goes on."""
        assert self.proc is not None
        size = self.report.stat().st_size if self.report.exists() else 0
        now = time.monotonic()
        if size != self.report_size:
            self.report_size, self.last_progress = size, now
        rc = self.proc.poll()
        if rc is not None:
            self.collect(killed=False)
            self.log.append(f"process {self.attempt} exited with {rc}")
            return False
        if now - self.last_progress < STALL_TIMEOUT:
            return True
        # Stalled: dump the stacks, kill, and go on after the running test.
        os.killpg(self.proc.pid, signal.SIGUSR1)
        time.sleep(2)
        self.stop()
        if not self.collect(killed=True):
            self.stalls.append(self._stacks())
        self.log.append(f"process {self.attempt} killed after {STALL_TIMEOUT} s without progress")
        self.start()
        return True

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def _outcome(reports: list[dict[str, str]]) -> Outcome:
    seconds = sum(float(r["duration"]) for r in reports)
    for r in reports:
        if r["outcome"] == "failed":
            return Outcome("failed", f"{r['when']}: {r['message']}", seconds)
    if any(r["outcome"] == "skipped" for r in reports):
        return Outcome("skipped", "", seconds)
    if any(r["when"] == "call" and r["outcome"] == "passed" for r in reports):
        return Outcome("passed", "", seconds)
    return Outcome("failed", "no call phase reported", seconds)


def run_suite(backends: list[str], workdir: Path) -> dict[str, Run]:
    """Run the suite once per backend, side by side (it mostly waits)."""
    runs = {}
    for backend in backends:
        (workdir / backend).mkdir(parents=True)
        runs[backend] = Run(backend, workdir / backend)
    begin = time.monotonic()
    active = list(runs.values())
    for run in active:
        run.start()
    try:
        while active:
            time.sleep(0.5)
            for run in list(active):
                if not run.poll():
                    run.seconds = time.monotonic() - begin
                    active.remove(run)
            if time.monotonic() - begin > RUN_BUDGET:
                raise TimeoutError(f"the Pulsing suite took over {RUN_BUDGET} s")
    finally:
        for run in runs.values():
            run.stop()
    return runs


@pytest.fixture(scope="module")
def suite_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    return run_suite(["memory", "persisting"], tmp_path_factory.mktemp("pulsing_suite"))


def _summary(run: Run) -> str:
    counts: dict[str, int] = {}
    for result in run.results.values():
        counts[result.outcome] = counts.get(result.outcome, 0) + 1
    return f"{run.backend}: {counts} in {run.seconds:.0f} s ({'; '.join(run.log)})"


def test_vendored_suite_is_unchanged() -> None:
    for name, digest in VENDORED.items():
        data = (SUITE / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest, f"pulsing_suite/{name} was modified"
    vendored = {p.relative_to(SUITE).as_posix() for p in (SUITE / "tests").rglob("*.py")}
    assert vendored == {n for n in VENDORED if n.endswith(".py")}


@pytest.mark.timeout(RUN_BUDGET + 120)
def test_memory_baseline(suite_runs: dict[str, Run]) -> None:
    """The baseline ran: the suite was collected and its tests pass on MemoryBackend."""
    run = suite_runs["memory"]
    print(_summary(run))
    passed = {n for n, r in run.results.items() if r.outcome == "passed"}
    assert len(passed) >= 100, _summary(run)
    stale = set(ASSERT_DEFAULT_BACKEND) - passed
    assert not stale, f"excluded tests that do not pass on MemoryBackend: {sorted(stale)}"


@pytest.mark.timeout(RUN_BUDGET + 120)
def test_persisting_passes_what_memory_passes(suite_runs: dict[str, Run]) -> None:
    baseline, run = suite_runs["memory"], suite_runs["persisting"]
    print(_summary(baseline))
    print(_summary(run))
    failures = []
    for nodeid, base in sorted(baseline.results.items()):
        if base.outcome != "passed" or nodeid in ASSERT_DEFAULT_BACKEND:
            continue
        result = run.results.get(nodeid, Outcome("missing", "not run"))
        if result.outcome != "passed":
            failures.append(f"{nodeid}: {result.outcome}: {result.message}")
    assert not failures, (
        f"{len(failures)} test(s) pass on MemoryBackend but not on PersistingBackend "
        f"(outputs under {run.workdir}):\n" + "\n".join(failures)
    )
    assert not run.stalls, "the suite hung outside any test (e.g. at interpreter exit):\n" + (
        "\n".join(run.stalls)
    )
