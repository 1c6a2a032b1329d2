"""Real subprocess runs of the installed entry point: pipes, NO_COLOR, stdin, exit codes (PRODUCT §2, §6)."""

from __future__ import annotations

import os
import pty
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PY_M = [sys.executable, "-m", "clvtool"]
HEADER = (
    "customer_id,channel,cohort,first_order,last_order,orders,revenue,refunds,aov,days_since_last,"
    "tenure_days,frequency,recency,T,status,cac,historic_clv,net_value,payback_days,left_censored,p_alive,"
    "expected_orders,predicted_clv,total_clv,net_clv,rfm,segment,rank,share,cumulative_share,pareto_class"
)
SMALL = """\
customer_id,order_id,date,amount,channel
c1,o1,2024-01-05,10.00,google
c1,o2,2024-02-10,20,email
c2,o3,2024-01-20,30,
c3,o4,2024-03-01,5,facebook
"""


def console_script() -> str:
    """The installed `clvtool` script: on PATH, else beside this interpreter (an unactivated venv)."""
    found = shutil.which("clvtool") or shutil.which("clvtool", path=str(Path(sys.executable).parent))
    assert found, "the clvtool console script is not installed"
    return found


@pytest.fixture(params=["python -m", "script"])
def clvtool(request: pytest.FixtureRequest) -> list[str]:
    return PY_M if request.param == "python -m" else [console_script()]


def run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kwargs)  # type: ignore[call-overload]


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sample data set large enough that the customers CSV overflows a pipe buffer."""
    out = tmp_path_factory.mktemp("big")
    done = run([*PY_M, "sample", str(out), "-n", "3000", "--seed", "5"])
    assert done.returncode == 0, done.stderr
    return out / "transactions.csv"


@pytest.fixture
def small() -> Path:
    path = Path("small.csv").resolve()
    path.write_text(SMALL)
    return path


def test_head_closes_the_pipe_without_a_traceback(clvtool: list[str], big_file: Path) -> None:
    full = run([*clvtool, "customers", str(big_file), "-f", "csv"])
    assert full.returncode == 0
    assert len(full.stdout.encode()) > 256 * 1024  # well beyond a pipe buffer
    cmd = " ".join(shlex.quote(c) for c in [*clvtool, "customers", str(big_file), "-f", "csv"])
    done = run(["bash", "-c", f'{cmd} 2>err.txt | head -1; echo "status=${{PIPESTATUS[0]}}" >&2'])
    assert done.stdout == HEADER + "\n"
    err = Path("err.txt").read_text()
    assert "Traceback" not in err
    assert "BrokenPipeError" not in err
    assert "Exception ignored" not in err
    assert "status=0" in done.stderr


def _table_on_a_terminal(cmd: list[str], env: dict[str, str]) -> bytes:
    """Run with stdout on a pseudo-terminal and return what it printed there."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(cmd, stdout=slave, stderr=subprocess.PIPE, env=env)
    finally:
        os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO once the child has closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    proc.communicate(timeout=120)
    assert proc.returncode == 0
    return b"".join(chunks)


def test_no_color_gives_plain_text_on_a_terminal(small: Path) -> None:
    cmd = [*PY_M, "customers", str(small), "-f", "table", "--columns", "customer_id,revenue"]
    base = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120"}
    coloured = _table_on_a_terminal(cmd, base)
    assert b"c1" in coloured
    assert b"\x1b[" in coloured  # the control: a terminal does get styles
    plain = _table_on_a_terminal(cmd, {**base, "NO_COLOR": "1"})
    assert b"c1" in plain and b"30.00" in plain
    assert b"\x1b" not in plain


def test_no_color_table_on_a_pipe(clvtool: list[str], small: Path) -> None:
    done = run([*clvtool, "customers", str(small), "-f", "table"], env={**os.environ, "NO_COLOR": "1"})
    assert done.returncode == 0, done.stderr
    assert "30.00" in done.stdout
    assert "\x1b" not in done.stdout
    assert "\x1b" not in done.stderr


def test_stdin_dash(clvtool: list[str], small: Path) -> None:
    from_file = run([*clvtool, "customers", str(small), "-f", "csv"])
    cmd = " ".join(shlex.quote(c) for c in [*clvtool, "customers", "-", "-f", "csv"])
    piped = run(["bash", "-c", f"cat {shlex.quote(str(small))} | {cmd}"])
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.splitlines()[0] == HEADER
    assert piped.stdout == from_file.stdout
    assert [line.split(",")[0] for line in piped.stdout.splitlines()[1:]] == ["c1", "c2", "c3"]


def test_unknown_option_exits_2(clvtool: list[str], small: Path) -> None:
    done = run([*clvtool, "customers", str(small), "--no-such-option"])
    assert done.returncode == 2
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    assert "--no-such-option" in done.stderr


def test_bad_file_exits_1_with_one_line(clvtool: list[str]) -> None:
    done = run([*clvtool, "customers", "missing.csv"])
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.splitlines() == [done.stderr.strip()]
    assert done.stderr.startswith("clvtool: error: missing.csv")


def test_help_lists_the_commands() -> None:
    done = run([*PY_M, "--help"])
    assert done.returncode == 0
    for command in ("customers", "check", "sample"):
        assert command in done.stdout
    assert "Traceback" not in done.stderr


def test_version(clvtool: list[str]) -> None:
    from clvtool import __version__

    done = run([*clvtool, "--version"])
    assert done.returncode == 0
    assert done.stdout == f"clvtool {__version__}\n"
