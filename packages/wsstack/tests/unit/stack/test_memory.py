"""Giving freed heap back after start-up."""

from __future__ import annotations

import subprocess
import sys

from wsstack.testing import BOUND


def test_release_uses_the_standard_library_only_and_frees_garbage_cycles():
    # GIVEN a process holding a reference cycle it no longer references
    code = (
        "import sys, gc, weakref; before = set(sys.modules)\n"
        "from wsstack.memory import release_free_memory\n"
        "class Node: pass\n"
        "a, b = Node(), Node(); a.other, b.other = b, a; gone = weakref.ref(a); del a, b\n"
        "gc.disable(); release_free_memory()\n"
        "new = {m.split('.')[0] for m in set(sys.modules) - before} - set(sys.stdlib_module_names) - {'wsstack'}\n"
        "print(gone() is None, sorted(new))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=BOUND)
    # THEN the cycle is collected, with nothing outside the standard library imported
    assert out.stdout.strip() == "True []"
