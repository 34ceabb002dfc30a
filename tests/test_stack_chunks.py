"""bin/keep_stack_chunks.c, which bin/test loads into the test processes: a 16 KiB chunk of Python's frame
stack that is unmapped is kept and handed back, zeroed, to the next such mmap; nothing else is ever kept."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parent.parent / "bin" / "keep_stack_chunks.c"

# Maps and unmaps memory through libc, as Python's frame stack does, and says after each unmapping whether the
# range is still mapped (/proc/self/maps) and what the next mapping of a chunk returned.
PROBE = r'''
import ctypes, json, mmap, os, tempfile

libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
RW, ANON, CHUNK = mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, 16384


def mapped(address):
    with open("/proc/self/maps") as maps:
        for line in maps:
            start, end = (int(part, 16) for part in line.split()[0].split("-"))
            if start <= address < end:
                return True
    return False


def dropped(address, size=CHUNK):
    """Unmaps the range and says whether it is gone."""
    assert libc.munmap(address, size) == 0
    return not mapped(address)


out = {}
chunk = libc.mmap(None, CHUNK, RW, ANON, -1, 0)
ctypes.memset(chunk, 0xAB, CHUNK)
out["chunk"] = dropped(chunk)
again = libc.mmap(None, CHUNK, RW, ANON, -1, 0)
out["reused"] = again == chunk
out["zeroed"] = ctypes.string_at(again, CHUNK) == bytes(CHUNK)
assert libc.mprotect(again, CHUNK, mmap.PROT_READ) == 0
out["protected chunk"] = dropped(again)
out["other size"] = dropped(libc.mmap(None, 2 * CHUNK, RW, ANON, -1, 0), 2 * CHUNK)
out["shared"] = dropped(libc.mmap(None, CHUNK, RW, mmap.MAP_SHARED | mmap.MAP_ANONYMOUS, -1, 0))
with tempfile.TemporaryFile() as file:
    file.truncate(CHUNK)
    out["file"] = dropped(libc.mmap(None, CHUNK, RW, mmap.MAP_PRIVATE, file.fileno(), 0))
    out["shared file"] = dropped(libc.mmap(None, CHUNK, RW, mmap.MAP_SHARED, file.fileno(), 0))
twice = libc.mmap(None, CHUNK, RW, ANON, -1, 0)
libc.munmap(twice, CHUNK)
out["unmapped twice"] = dropped(twice)
kept = libc.mmap(None, CHUNK, RW, ANON, -1, 0)
libc.munmap(kept, CHUNK)
fixed = libc.mmap(kept, CHUNK, RW, ANON | 0x10, -1, 0)  # MAP_FIXED
out["mapped over, then not handed out"] = fixed == kept and libc.mmap(None, CHUNK, RW, ANON, -1, 0) != kept
big = libc.mmap(None, 4 * CHUNK, RW, ANON, -1, 0)
out["part of a larger mapping"] = dropped(big + CHUNK)
libc.munmap(big, 4 * CHUNK)
print(json.dumps(out))
'''


@pytest.fixture(scope="module")
def keeper(tmp_path_factory):
    if not shutil.which("gcc"):
        pytest.skip("no gcc here: bin/test runs the suite without the chunk keeper")
    library = tmp_path_factory.mktemp("keeper") / "keep_stack_chunks.so"
    subprocess.run(["gcc", "-O2", "-Wall", "-Werror", "-shared", "-fPIC", "-o", str(library), str(SOURCE),
                    "-lpthread"], check=True)
    return library


def run_python(script, preload=None, python=sys.executable, timeout=60):
    """What `script` prints, run by `python` with `preload` (the keeper) loaded, or nothing."""
    env = {"PATH": "/usr/bin:/bin", **({"LD_PRELOAD": str(preload)} if preload else {})}
    done = subprocess.run([str(python), "-c", script], env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr
    return done.stdout


def probe(preload=None, python=sys.executable):
    return json.loads(run_python(PROBE, preload, python))


def test_an_unmapped_frame_chunk_is_kept_and_handed_back_zeroed_and_nothing_else_is_kept(keeper, tmp_path):
    kept = probe(keeper)
    assert kept == {"chunk": False, "reused": True, "zeroed": True, "protected chunk": True, "other size": True,
                    "shared": True, "file": True, "shared file": True, "unmapped twice": True,
                    "mapped over, then not handed out": True, "part of a larger mapping": True}
    # Without it, the same chunk is gone when unmapped (so the probe tells the two apart).
    assert probe()["chunk"] is True
    # A program that is not Python, loaded with it, is left alone.
    other = tmp_path / "not-the-interpreter"
    shutil.copy(Path(sys.executable).resolve(), other)
    assert probe(keeper, python=other)["chunk"] is True


def test_python_runs_deep_calls_in_threads_and_forks_with_the_keeper_loaded(keeper):
    script = r'''
import os, threading
def depth(n):
    return 0 if n == 0 else depth(n - 1) + 1
def work(results):
    results.append(sum(depth(300) for _ in range(2000)))
results = []
threads = [threading.Thread(target=work, args=(results,)) for _ in range(4)]
for thread in threads: thread.start()
pid = os.fork()
if pid == 0:
    os._exit(0 if sum(depth(300) for _ in range(500)) == 150000 else 1)
for thread in threads: thread.join()
_, status = os.waitpid(pid, 0)
print(results, os.waitstatus_to_exitcode(status))
'''
    assert run_python(script, keeper, timeout=120).split() == ["[600000,", "600000,", "600000,", "600000]", "0"]
