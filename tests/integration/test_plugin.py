"""The pytest plugin's fixtures work in a project that uses pytest-asyncio's defaults.

Runs pytest in a subprocess on a throw-away test module outside this repository (so this
project's ``asyncio_mode = "auto"`` does not apply), in *strict* mode and in auto mode.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TEST_MODULE = textwrap.dedent(
    '''
    import pytest

    import tipcrpc

    svc = tipcrpc.Service("plugin.check")


    @svc.method
    def hello(name: str) -> str:
        return f"hello {name}"


    @pytest.mark.asyncio
    async def test_memory_cluster(memory_cluster):
        async with memory_cluster.node("a") as a, memory_cluster.node("b") as b:
            async with tipcrpc.serve(svc, transport=a), tipcrpc.connect(b) as client:
                assert await client.call(svc, "hello", "strict") == "hello strict"


    @pytest.mark.asyncio
    async def test_memory_transport(memory_transport):
        assert memory_transport.own_node is not None
    '''
)


@pytest.mark.parametrize("mode", ["strict", "auto"])
def test_fixtures_in_asyncio_mode(tmp_path: Path, mode: str) -> None:
    (tmp_path / "test_uses_plugin.py").write_text(TEST_MODULE)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
         "-o", f"asyncio_mode={mode}", "-o", "asyncio_default_fixture_loop_scope=function",
         str(tmp_path / "test_uses_plugin.py")],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 passed" in proc.stdout
