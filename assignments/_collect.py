"""The student side of ``assignments/secure.py``: run a notebook's code cells in this fresh process, then call
the graded functions on the grader's instances under a runtime trace, and write their outputs. No comparison
with any reference happens here; nothing here decides a score.

    python assignments/_collect.py NOTEBOOK JOB.json OUT.json

Refuses credit (records a violation) when, during a graded call, any frame of the ``tabular`` package runs that
is not an allowed function (or called from one) — whatever name reached it, in the calling thread or in a thread
started through ``threading`` —, when the trace is switched off or replaced, or a process is started. Opening a
``tabular`` source file at any time after set-up is reported in the notes. This is not a sandbox: student code
runs with the grader's rights (run untrusted work in a container).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading

WATCHED = {"sys.setprofile", "sys.settrace", "threading.setprofile", "threading.settrace", "_thread.start_new_thread",
           "subprocess.Popen", "os.system", "os.fork", "os.forkpty", "os.posix_spawn", "os.exec", "os.spawn"}
CALL_SECONDS = 20  # per graded call
CELL_SECONDS = int(os.environ.get("MODELADV_CELL_SECONDS", 120))  # per cell: an endless loop costs this only


def encode(x, depth: int = 0):
    """JSON-able form of instances and outputs: arrays (float or integer), numbers, sequences, dicts and
    TabularMDPs (``json`` keeps NaN and infinities)."""
    import numpy as np

    from tabular import TabularMDP

    if depth > 6:
        return {"err": "nested too deeply"}
    if isinstance(x, TabularMDP):
        return {"mdp": {"P": encode(x.dense_P()), "R": encode(x.R), "p0": encode(x.p0), "gamma": float(x.gamma),
                        "terminal": encode(np.asarray(x.terminal, dtype=np.int64))}}
    if isinstance(x, dict):
        return {"d": {str(k): encode(v, depth + 1) for k, v in x.items()}}
    if isinstance(x, (list, tuple)):
        return {"l": [encode(v, depth + 1) for v in x]}
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, np.ndarray) and x.dtype.kind in "iu":
        return {"i": x.ravel().tolist(), "s": list(x.shape)}
    try:
        a = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        return {"err": f"not numeric: {type(x).__name__}"}
    if a.size > 10**6:
        return {"err": "output too large"}
    return {"a": a.ravel().tolist(), "s": list(a.shape)}


def decode(x):
    """The inverse of :func:`encode` (``{"err": ...}`` stays a dict: the grader reports it)."""
    import numpy as np

    from tabular import TabularMDP

    if isinstance(x, dict):
        if "mdp" in x:
            m = x["mdp"]
            return TabularMDP(decode(m["P"]), decode(m["R"]), decode(m["p0"]), float(m["gamma"]),
                              terminal=np.asarray(decode(m["terminal"]), dtype=bool))
        if "d" in x:
            return {k: decode(v) for k, v in x["d"].items()}
        if "l" in x:
            return [decode(v) for v in x["l"]]
        if "a" in x:
            a = np.asarray(x["a"], dtype=float).reshape(x["s"])
            return a if a.ndim else float(a)
        if "i" in x:
            return np.asarray(x["i"], dtype=np.int64).reshape(x["s"])
    return x


def _cells(path: str) -> list[str]:
    import nbformat

    nb = nbformat.read(path, as_version=4)
    out = []
    for c in nb.cells:
        if c.cell_type != "code":
            continue
        lines = [l for l in c.source.splitlines() if not l.lstrip().startswith(("%", "!"))]
        src = "\n".join(lines)
        if "otter" in src or "grader.check" in src:  # the Otter init cell and the public checks: not graded here
            src = "\n".join(l for l in lines if "grader" not in l and "otter" not in l)
        out.append(src)
    return out


def main(argv: list[str]) -> int:
    nb_path, job_path, out_path = argv
    with open(job_path) as f:
        job = json.load(f)
    import importlib
    import pkgutil

    import numpy as np  # noqa: F401  (imported before the student's code, as the templates do)

    import tabular

    tab_dir = os.path.dirname(os.path.abspath(tabular.__file__)) + os.sep
    forbidden_dirs = {"tabular": tab_dir}
    for name in sorted({p for q in job["questions"] for p in q.get("forbidden", ["tabular"])}):
        try:
            pkg = importlib.import_module(name)
        except ImportError:  # pragma: no cover - a package the student cannot reach either
            continue
        forbidden_dirs[name] = os.path.dirname(os.path.abspath(pkg.__file__)) + os.sep
        for m in pkgutil.walk_packages(pkg.__path__, name + "."):  # every submodule loaded before the hooks
            try:
                importlib.import_module(m.name)
            except Exception:  # pragma: no cover - optional extras (e.g. MuJoCo)
                pass
    state = {"q": None, "events": []}
    violations: dict[str, set] = {}
    source_reads: list[str] = []

    def audit(event, args):
        if event == "open" and args and isinstance(args[0], str) and os.path.abspath(args[0]).startswith(tab_dir):
            if args[0].endswith(".py"):
                source_reads.append(os.path.basename(args[0]))
        elif state["q"] is not None and event in WATCHED:
            violations.setdefault(state["q"], set()).add(f"{event} during the graded call")

    sys.addaudithook(audit)  # cannot be removed

    def on_alarm(signum, frame):
        raise TimeoutError(f"took more than {CALL_SECONDS} s")

    signal.signal(signal.SIGALRM, on_alarm)
    ns: dict = {"__name__": "__main__"}
    cell_errors = []
    for i, src in enumerate(_cells(nb_path)):
        signal.alarm(CELL_SECONDS)
        try:
            exec(compile(src, f"<cell {i}>", "exec"), ns)
        except BaseException as e:  # a broken or endless cell is the student's problem, not the grader's
            if isinstance(e, KeyboardInterrupt):
                raise
            cell_errors.append(f"cell {i}: {type(e).__name__}: {e}"[:300])
        finally:
            signal.alarm(0)
    results = {}
    for q in job["questions"]:
        name, allow = q["name"], set(q["allow"])
        dirs = tuple(forbidden_dirs[p] for p in q.get("forbidden", ["tabular"]) if p in forbidden_dirs)
        func = ns.get(q["function"])
        outs = []
        for enc_args in q["instances"]:
            if not callable(func):
                outs.append({"err": f"{q['function']} is not defined (did its cell run?)"})
                continue
            args = decode(enc_args)
            root = sys._getframe()

            def hook(frame, event, arg, root=root, allow=allow, name=name, dirs=dirs):
                if event != "call":
                    return
                code = frame.f_code
                if not code.co_filename.startswith(dirs) or code.co_name == "<module>":
                    return
                f = frame
                while f is not None and f is not root:  # allowed when it or a forbidden-package caller is allowed
                    c = f.f_code
                    if c.co_filename.startswith(dirs) and (c.co_qualname in allow
                                                           or c.co_qualname.split(".")[0] in allow):
                        return
                    f = f.f_back
                pkg = next(p for p, d in forbidden_dirs.items() if code.co_filename.startswith(d))
                violations.setdefault(name, set()).add(f"{pkg}.{code.co_qualname}")

            signal.alarm(CALL_SECONDS)
            try:
                threading.setprofile(hook)  # threads the student's call starts are traced too
                sys.setprofile(hook)
                state["q"] = name  # armed: from here on a trace change is the student's
                out = func(*args)
                state["q"] = None
                if sys.getprofile() is not hook:
                    violations.setdefault(name, set()).add("the trace was replaced")
                sys.setprofile(None)
                outs.append(encode(out))
            except BaseException as e:
                state["q"] = None
                sys.setprofile(None)
                if isinstance(e, KeyboardInterrupt):
                    raise
                outs.append({"err": f"{type(e).__name__}: {e}"[:300]})
            finally:
                state["q"] = None
                threading.setprofile(None)
                signal.alarm(0)
        results[name] = outs
    report = {"results": results, "violations": {k: sorted(v) for k, v in violations.items()},
              "source_reads": sorted(set(source_reads)), "cell_errors": cell_errors}
    with open(out_path, "w") as f:
        json.dump(report, f)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
