"""`radar demo` end to end on a small data set, then the API it serves."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def test_demo_prints_the_summary_and_serves(tmp_path):
    port = 18000 + os.getpid() % 1000
    env = {
        **os.environ,
        "RADAR_NO_PROGRESS": "1",
        "RADAR_DATABASE_URL": f"sqlite:///{tmp_path}/radar.db",
        "RADAR_API__PORT": str(port),
        "RADAR_API__AUTH": "true",
    }  # as shipped: keys required
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "service.cli.main",
            "demo",
            "--per-week",
            "60",
            "--workdir",
            str(tmp_path / "demo"),
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    try:
        deadline = time.time() + 600
        health = None
        while time.time() < deadline and proc.poll() is None:
            line = proc.stdout.readline()
            lines.append(line)
            if "dashboard: http" in line:  # radar serve's last line, once it is about to listen
                key = re.search(r"Admin API key.*?: (rk_\S+)", "".join(lines), re.S).group(1)
                auth = {"Authorization": f"Bearer {key}"}
                for _ in range(100):
                    try:
                        health = httpx.get(
                            f"http://127.0.0.1:{port}/v1/health", headers=auth, timeout=2
                        ).json()
                        break
                    except httpx.HTTPError:
                        time.sleep(0.2)
                break
        out = "".join(lines)
        assert health and health["status"] == "ok" and health["items"] > 1000, out
        page = httpx.get(
            f"http://127.0.0.1:{port}/v1/feedback",
            params={"region": "East", "limit": 3},
            headers=auth,
        ).json()
        assert len(page["items"]) == 3 and page["next_cursor"]
        assert httpx.get(f"http://127.0.0.1:{port}/v1/feedback").status_code == 401
        # the demo ends with the dashboard's URL, the key in its fragment; the page is served
        link = re.search(r"Dashboard: (http://\S+)", out).group(1)
        assert link == f"http://127.0.0.1:{port}/dashboard/#key={key}", link
        assert out.rstrip().endswith(f"dashboard: http://127.0.0.1:{port}/dashboard/")
        page = httpx.get(link.split("#")[0])
        assert page.status_code == 200 and 'id="radar-config"' in page.text
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    assert "ingested in" in out and "stored items:" in out
    assert "Largest taste shift:" in out
    assert re.search(r"share of items negative on taste", out)
    assert (tmp_path / "demo" / "demo_feedback.csv.truth.json").exists()
